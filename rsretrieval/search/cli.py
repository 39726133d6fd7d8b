"""Search an image archive with a trained model (``rsretrieval-retrieve``, ``tools/retrieve.py``).

Subcommands::

    index  CONFIG CHECKPOINT IMAGE_DIR INDEX_DIR     embed every image under IMAGE_DIR (resumable:
                                                     Ctrl-C saves what was encoded, rerun to resume),
           [--list FILE | --split-of ANN --split S]  or only those a list file or a dataset split names;
                                                     under torchrun or srun each process encodes a block
                                                     (tools/dist_index.sh) and rank 0 merges them
    search INDEX_DIR "query" ["query" ...]           text -> images, over an index; the model loads
           [--queries FILE] [--interactive]          once for every query of the call
    search-image CONFIG CHECKPOINT IMAGE [IMAGE ...] --captions FILE    image -> captions
    serve  INDEX_DIR [--host 127.0.0.1] [--port 8000] [--max-queue N]  a search page and its JSON API over an index
                                                     (needs the serve extra: pip install -e .[serve])

A model folder written by ``tools/export_model.py`` can stand for CONFIG CHECKPOINT
(``index MODEL_DIR IMAGE_DIR INDEX_DIR``; ``--config MODEL_DIR`` for ``search``/``serve``).

This module parses and checks the arguments with nothing heavy imported: a
missing config, checkpoint, folder or index is one line at once; torch and the
model load afterwards, in :mod:`rsretrieval.search.commands`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable

from rsretrieval.cli import check_inputs, fail, model_folder_files, resolve_named_input
from rsretrieval.subcommands import SubCommand, build_subcommand_parser, chosen_subcommand

from .choices import ANN_AUTO_THRESHOLD, IVFPQ_AUTO_THRESHOLD
from .queries import QueryError, read_queries, text_problem

PROG = 'rsretrieval-retrieve'
SERVE_MODULES = ('fastapi', 'uvicorn')  # the serve extra (requirements/serve.txt)
WEIGHT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.safetensors', '.bin')  # what a CHECKPOINT argument looks like
DIST_TIMEOUT = 7 * 24 * 3600  # seconds: the ranks wait for the slowest block at the end of `index`
CONFIG_HELP = 'config file, or a model folder of tools/export_model.py (then no CHECKPOINT)'


# ------------------------------------------------------------------------ arguments
def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help=CONFIG_HELP)
    parser.add_argument('checkpoint', nargs='?')


def _add_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        'image_dir', help='searched recursively for .jpg .jpeg .png .tif .tiff (or the folder --list names images in)'
    )
    parser.add_argument('index_dir', help='index folder (created, or resumed when it exists)')
    _add_selection(parser)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument(
        '--shard-size', type=int, default=4096, help='images per saved shard (a crash loses at most one)'
    )
    parser.add_argument('--workers', type=int, default=0, help='image-loading worker processes')
    parser.add_argument(
        '--precision',
        choices=['fp32', 'bf16', 'auto'],
        default='fp32',
        help='image encoding: bf16 (autocast) is faster where the hardware has it natively; '
        'auto = bf16 there (RSRETRIEVAL_FAST_ENCODING=0 turns the compiled encoder off)',
    )
    parser.add_argument(
        '--ann',
        choices=['auto', 'none', 'hnsw', 'flat', 'ivfpq'],
        default='auto',
        help=f'faiss index: hnsw (approximate), ivfpq (compressed, re-scored exactly), flat (exact), none; '
        f'auto = none below {ANN_AUTO_THRESHOLD:,} images, hnsw below {IVFPQ_AUTO_THRESHOLD:,}, ivfpq from there',
    )
    parser.add_argument('--rebuild', action='store_true', help='drop what the index holds and start again')
    parser.add_argument(
        '--skip-unreadable',
        action='store_true',
        help='index the other images when some files cannot be read; they are listed, and recorded in meta.json',
    )
    _add_launch(parser)


def _add_launch(parser: argparse.ArgumentParser) -> None:
    """Several processes (torchrun, srun): each encodes a block of the images, rank 0 merges."""
    parser.add_argument(
        '--launcher',
        choices=['auto', 'none', 'pytorch', 'slurm'],
        default='auto',
        help="several processes: auto reads torchrun's or srun's variables (one process without them); "
        'none runs one process whatever they say',
    )
    parser.add_argument(
        '--dist-timeout',
        type=float,
        default=DIST_TIMEOUT,
        metavar='SECONDS',
        help='how long a process waits for the others (the slowest block; default 7 days)',
    )


def _add_selection(parser: argparse.ArgumentParser) -> None:
    """Which images of IMAGE_DIR ``index`` embeds: all, a list file's, or a dataset split's."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        '--list',
        metavar='FILE',
        help='index only the images this text file names, one a line, in its order: paths relative to IMAGE_DIR '
        '(or absolute, inside it); blank lines and lines starting with # are skipped, a repeated path is indexed once',
    )
    which.add_argument(
        '--split-of',
        metavar='ANNOTATION_FILE',
        help="index only the images of a dataset split (with --split): a dataset's annotation file (Karpathy JSON, "
        'ALBEF, NWPU-Captions, a precomp folder, or a plugin format); IMAGE_DIR is its image folder',
    )
    parser.add_argument('--split', help='the split of --split-of: train, val or test (or another the file holds)')
    parser.add_argument(
        '--ann-format', default='auto', help='the format of --split-of (default: auto, detected from the file)'
    )


SEARCH_EPILOG = (
    'The model loads once per call (several seconds on a CPU) and each query then takes milliseconds: '
    'give several queries to one call (as arguments, with --queries FILE, or one a line with --interactive) '
    'rather than one call per query.'
)


def _add_search(parser: argparse.ArgumentParser) -> None:
    parser.epilog = SEARCH_EPILOG
    parser.add_argument('index_dir')
    parser.add_argument('queries', nargs='*', help='query texts (each answered; the model loads once for all)')
    parser.add_argument(
        '--queries',
        dest='query_file',
        metavar='FILE',
        help='also the queries of this text file, one a line (blank lines skipped); - reads them from stdin',
    )
    parser.add_argument(
        '--interactive',
        '-i',
        action='store_true',
        help='then read queries from stdin, one a line, answering each as it comes until end of input '
        '(Ctrl-D); a prompt on a terminal',
    )
    _add_recorded_model(parser)
    parser.add_argument('--topk', type=int, default=10)
    parser.add_argument('--backend', choices=['auto', 'exact', 'faiss'], default='auto')
    parser.add_argument('--grid', help='write a PNG grid of the results')


def _add_search_image(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('images', nargs='+')
    parser.add_argument('--captions', required=True, help='one caption per line (.txt) or a JSON list of strings')
    parser.add_argument('--topk', type=int, default=5)


def _add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('index_dir')
    parser.add_argument(
        '--host',
        default='127.0.0.1',
        help='address to listen on (default: loopback, this machine only; 0.0.0.0 opens the index to the network)',
    )
    parser.add_argument('--port', type=int, default=8000, help='default 8000; 0 picks a free port (uvicorn prints it)')
    _add_recorded_model(parser)
    parser.add_argument('--backend', choices=['auto', 'exact', 'faiss'], default='auto')
    parser.add_argument(
        '--follow-symlinks',
        action='store_true',
        help='also serve indexed images that are symbolic links leading out of the image root '
        '(by default they get 404, so that a link cannot expose a file elsewhere)',
    )
    parser.add_argument(
        '--max-queue',
        type=_queue_length,
        default=16,
        metavar='N',
        help='queries that may wait while one is encoded (default 16); more get 503 with Retry-After',
    )


def _queue_length(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f'must be a whole number, 0 or more, got {text!r}')
    return int(text)


def _add_recorded_model(parser: argparse.ArgumentParser) -> None:
    """The model of an index: the one recorded in it, unless moved files are named."""
    parser.add_argument('--config', help='default: the config recorded in the index (or a model folder)')
    parser.add_argument('--checkpoint', help='default: the checkpoint recorded in the index (its hash must match)')


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--verbose', action='store_true', help='also log how the model is built and loaded')


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--html', help='write a self-contained HTML page of the results')
    parser.add_argument('--json', help='write the results as JSON')


def _add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Config overrides (``search`` and ``serve`` use the options recorded in the index)."""
    from mmengine.config import DictAction  # light: no torch

    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')


# --------------------------------------------------------------------------- checks
def query_problem(queries: list[str]) -> str | None:
    """Why the queries cannot be searched, or None: an empty or blank one (it matches every image
    equally badly), or one holding a control character or bytes that are not UTF-8."""
    for n, query in enumerate(queries, 1):
        if problem := text_problem(query):
            which = f'query {n} of {len(queries)}' if len(queries) > 1 else 'the query'
            return f'{which} {problem}'
    return None


def missing_serve_modules() -> list[str]:
    """The modules of the serve extra that are not installed (found without importing them)."""
    return [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]


def serve_problem(args: argparse.Namespace) -> str | None:
    """Why ``serve`` cannot start (the serve extra is missing, a bad port), or None."""
    if missing := missing_serve_modules():
        return (
            f'serve needs {" and ".join(missing)}, from the serve extra: pip install -e ".[serve]" '
            '(or pip install -r requirements/serve.txt)'
        )
    if not 0 <= args.port <= 65535:
        return f'--port must be from 0 to 65535 (0: a free port), got {args.port}'
    if not args.host.strip():
        return '--host is empty: give an address to listen on, e.g. 127.0.0.1'
    return None


def use_model_folder(args: argparse.Namespace, prog: str) -> None:
    """A model folder given as the config (a path or ``hf-hub:ORG/NAME``): its config.py,
    and its model.safetensors unless a checkpoint is given. Then CHECKPOINT is optional,
    so ``search-image MODEL_DIR IMAGE ...`` gives argparse's CHECKPOINT slot to the first
    image: it goes back to the images."""
    if args.config:
        args.config = resolve_named_input(args.config, prog)
    files = model_folder_files(args.config, prog)
    if files is None:
        return
    images = getattr(args, 'images', None)
    if images is not None and args.checkpoint and not args.checkpoint.endswith(WEIGHT_SUFFIXES):
        images.insert(0, args.checkpoint)
        args.checkpoint = None
    args.config = files[0]
    args.checkpoint = args.checkpoint or files[1]


def _check_topk(args: argparse.Namespace) -> None:
    if args.topk < 1:
        fail('--topk must be at least 1', PROG)


def _check_model(args: argparse.Namespace) -> None:
    """A model folder stands for CONFIG CHECKPOINT; a config file needs its checkpoint."""
    use_model_folder(args, PROG)
    if args.checkpoint is None:
        fail('CHECKPOINT is required with a config file (a model folder holds its own weights)', PROG)


def _check_recorded_model(args: argparse.Namespace) -> None:
    use_model_folder(args, PROG)


def _check_index_inputs(args: argparse.Namespace) -> None:
    if not args.dist_timeout > 0:
        fail(f'--dist-timeout must be a positive number of seconds, got {args.dist_timeout:g}', PROG)
    files = {args.list: 'list file'} if args.list else {}
    check_inputs(args.config, (args.checkpoint,), files=files, folders={args.image_dir: 'image folder'}, prog=PROG)
    if os.path.exists(args.index_dir) and not os.path.isdir(args.index_dir):
        fail(f'index folder is a file: {args.index_dir}', PROG)


def selection_problem(args: argparse.Namespace) -> str | None:
    """Why ``--split-of``, ``--split`` and ``--ann-format`` do not go together, or None."""
    if args.split_of is None:
        if args.split is not None:
            return '--split goes with --split-of ANNOTATION_FILE (the annotation file that holds the split)'
        if args.ann_format != 'auto':
            return '--ann-format goes with --split-of ANNOTATION_FILE'
        return None
    if not args.split:
        return '--split-of needs --split: the split to index, e.g. --split test'
    if not os.path.exists(args.split_of):
        return f'annotation file not found: {args.split_of}'
    return None


def _check_selection(args: argparse.Namespace) -> None:
    if problem := selection_problem(args):
        fail(problem, PROG)


def _check_queries(args: argparse.Namespace) -> None:
    """The queries given as arguments, and that some are given, before the index is looked at."""
    if problem := query_problem(args.queries):
        fail(problem, PROG)
    if not (args.queries or args.query_file or args.interactive):
        fail('give a query to search for, --queries FILE, or --interactive', PROG)
    if args.query_file == '-' and args.interactive:
        fail('--queries - and --interactive both read stdin: choose one', PROG)


def _read_query_file(args: argparse.Namespace) -> None:
    """Add the queries of ``--queries FILE`` (checked line by line) to those of the arguments."""
    if args.query_file is None:
        return
    try:
        args.queries = [*args.queries, *read_queries(args.query_file)]
    except QueryError as err:
        fail(str(err), PROG)


def _check_serve(args: argparse.Namespace) -> None:
    if problem := serve_problem(args):
        fail(problem, PROG)


def _check_index(args: argparse.Namespace) -> None:
    if not os.path.isdir(args.index_dir):
        fail(f'index not found: {args.index_dir}', PROG)
    if not os.path.isfile(os.path.join(args.index_dir, 'meta.json')):
        fail(f'{args.index_dir} is not an rsretrieval index (no meta.json): build one with `index`', PROG)
    check_inputs(args.config, (args.checkpoint,) if args.checkpoint else (), prog=PROG)


def _check_search_image_inputs(args: argparse.Namespace) -> None:
    files = dict.fromkeys(args.images, 'image')
    files[args.captions] = 'caption file'
    check_inputs(args.config, (args.checkpoint,), files=files, prog=PROG)


# ------------------------------------------------------------------------- commands
def _run(name: str) -> Callable[[argparse.Namespace], None]:
    """The command ``name`` of :mod:`rsretrieval.search.commands`, imported (with torch) when it runs."""

    def run(args: argparse.Namespace) -> None:
        from . import commands

        getattr(commands, name)(args)

    return run


COMMANDS = (
    SubCommand(
        'index',
        'embed the images of a folder (all, or those of a list file or a dataset split) into an index (resumable)',
        (_add_model, _add_index, _add_device, _add_cfg_options),
        _run('cmd_index'),
        (_check_model, _check_index_inputs, _check_selection),
    ),
    SubCommand(
        'search',
        'text -> images over an index (several queries per call, from a file, or a prompt loop)',
        (_add_search, _add_device, _add_outputs),
        _run('cmd_search'),
        (_check_topk, _check_recorded_model, _check_queries, _check_index, _read_query_file),
    ),
    SubCommand(
        'search-image',
        'image -> captions from a caption file',
        (_add_model, _add_search_image, _add_device, _add_outputs, _add_cfg_options),
        _run('cmd_search_image'),
        (_check_topk, _check_model, _check_search_image_inputs),
    ),
    SubCommand(
        'serve',
        'a search page and its JSON API over an index (the serve extra)',
        (_add_serve, _add_device),
        _run('cmd_serve'),
        (_check_recorded_model, _check_serve, _check_index),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-parser per row of :data:`COMMANDS`."""
    return build_subcommand_parser(PROG, 'Search an image archive by text', COMMANDS)


def check_args(args: argparse.Namespace) -> None:
    """Fail with one line at the first unusable input, before anything heavy loads."""
    chosen_subcommand(args, COMMANDS, PROG)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed arguments; ``search``'s query texts may also follow its options.

    ``search INDEX --topk 5 "a river"``: argparse gives the query texts, a
    positional that may be empty (``--queries`` and ``--interactive`` need none),
    the texts before the first option only and leaves the others over; they are
    queries too. Anything else left over is refused as argparse refuses it.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    searching = getattr(args, 'subcommand', None) is not None and args.subcommand.name == 'search'
    if extra and searching and not any(arg.startswith('-') for arg in extra):
        args.queries = [*args.queries, *extra]
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = chosen_subcommand(args, COMMANDS, PROG)
    from rsretrieval.utils import CheckpointError, ConfigError

    from .archive_index import ArchiveIndexError
    from .distributed_index import LaunchError
    from .image_lists import ImageListError

    try:
        command.run(args)
    except (
        LaunchError,
        ArchiveIndexError,
        ImageListError,
        ConfigError,
        CheckpointError,
        FileNotFoundError,
        NotADirectoryError,
    ) as err:
        fail(str(err), PROG, code=1)
    except KeyboardInterrupt:  # `index` handles its own: it saves what it encoded
        print('interrupted', file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == '__main__':
    main(sys.argv[1:])

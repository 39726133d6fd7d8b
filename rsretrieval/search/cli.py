"""Search an image archive with a trained model (``rsretrieval-retrieve``, ``tools/retrieve.py``).

Subcommands::

    index  CONFIG CHECKPOINT IMAGE_DIR INDEX_DIR     embed every image under IMAGE_DIR (resumable:
                                                     Ctrl-C saves what was encoded, rerun to resume)
    search INDEX_DIR "query" ["query" ...]           text -> images, over an index
    search-image CONFIG CHECKPOINT IMAGE [IMAGE ...] --captions FILE    image -> captions
    serve  INDEX_DIR [--host 127.0.0.1] [--port 8000]  a search page and its JSON API over an index
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

from .choices import ANN_AUTO_THRESHOLD

PROG = 'rsretrieval-retrieve'
SERVE_MODULES = ('fastapi', 'uvicorn')  # the serve extra (requirements/serve.txt)
WEIGHT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.safetensors', '.bin')  # what a CHECKPOINT argument looks like
CONFIG_HELP = 'config file, or a model folder of tools/export_model.py (then no CHECKPOINT)'


# ------------------------------------------------------------------------ arguments
def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help=CONFIG_HELP)
    parser.add_argument('checkpoint', nargs='?')


def _add_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('image_dir', help='searched recursively for .jpg .jpeg .png .tif .tiff')
    parser.add_argument('index_dir', help='index folder (created, or resumed when it exists)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument(
        '--shard-size', type=int, default=4096, help='images per saved shard (a crash loses at most one)'
    )
    parser.add_argument('--workers', type=int, default=0, help='image-loading worker processes')
    parser.add_argument(
        '--ann',
        choices=['auto', 'none', 'hnsw', 'flat'],
        default='auto',
        help=f'faiss index: hnsw (approximate), flat (exact), none; auto = hnsw from {ANN_AUTO_THRESHOLD:,} images',
    )
    parser.add_argument('--rebuild', action='store_true', help='drop what the index holds and start again')
    parser.add_argument(
        '--skip-unreadable',
        action='store_true',
        help='index the other images when some files cannot be read; they are listed, and recorded in meta.json',
    )


def _add_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('index_dir')
    parser.add_argument('queries', nargs='+', help='query texts')
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
    """Why the queries cannot be searched (an empty or blank one matches every image equally
    badly), or None."""
    for n, query in enumerate(queries, 1):
        if not query.strip():
            which = f'query {n} of {len(queries)}' if len(queries) > 1 else 'the query'
            return f'{which} is empty: give a text to search for, e.g. "a bridge over a river"'
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
    check_inputs(args.config, (args.checkpoint,), folders={args.image_dir: 'image folder'}, prog=PROG)
    if os.path.exists(args.index_dir) and not os.path.isdir(args.index_dir):
        fail(f'index folder is a file: {args.index_dir}', PROG)


def _check_queries(args: argparse.Namespace) -> None:
    if problem := query_problem(args.queries):
        fail(problem, PROG)


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
        'embed every image under a folder into an index (resumable)',
        (_add_model, _add_index, _add_device, _add_cfg_options),
        _run('cmd_index'),
        (_check_model, _check_index_inputs),
    ),
    SubCommand(
        'search',
        'text -> images over an index',
        (_add_search, _add_device, _add_outputs),
        _run('cmd_search'),
        (_check_topk, _check_recorded_model, _check_queries, _check_index),
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    command = chosen_subcommand(args, COMMANDS, PROG)
    from rsretrieval.utils import CheckpointError, ConfigError

    from .archive_index import ArchiveIndexError

    try:
        command.run(args)
    except (ArchiveIndexError, ConfigError, CheckpointError, FileNotFoundError, NotADirectoryError) as err:
        fail(str(err), PROG, code=1)
    except KeyboardInterrupt:  # `index` handles its own: it saves what it encoded
        print('interrupted', file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == '__main__':
    main(sys.argv[1:])

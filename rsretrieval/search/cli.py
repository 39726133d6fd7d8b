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
import ipaddress
import os
import sys

from rsretrieval.cli import check_inputs, fail, model_folder_files, resolve_named_input

ANN_AUTO_THRESHOLD = 100_000  # images from which `--ann auto` builds an HNSW index
SERVE_MODULES = ('fastapi', 'uvicorn')  # the serve extra (requirements/serve.txt)
WEIGHT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.safetensors', '.bin')  # what a CHECKPOINT argument looks like
CONFIG_HELP = 'config file, or a model folder of tools/export_model.py (then no CHECKPOINT)'


def build_parser() -> argparse.ArgumentParser:
    from mmengine.config import DictAction  # light: no torch

    parser = argparse.ArgumentParser(prog='rsretrieval-retrieve', description='Search an image archive by text')
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('index', help='embed every image under a folder into an index (resumable)')
    p.add_argument('config', help=CONFIG_HELP)
    p.add_argument('checkpoint', nargs='?')
    p.add_argument('image_dir', help='searched recursively for .jpg .jpeg .png .tif .tiff')
    p.add_argument('index_dir', help='index folder (created, or resumed when it exists)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--shard-size', type=int, default=4096, help='images per saved shard (a crash loses at most one)')
    p.add_argument('--workers', type=int, default=0, help='image-loading worker processes')
    p.add_argument(
        '--ann',
        choices=['auto', 'none', 'hnsw', 'flat'],
        default='auto',
        help=f'faiss index: hnsw (approximate), flat (exact), none; auto = hnsw from {ANN_AUTO_THRESHOLD:,} images',
    )
    p.add_argument('--rebuild', action='store_true', help='drop what the index holds and start again')
    p.add_argument(
        '--skip-unreadable',
        action='store_true',
        help='index the other images when some files cannot be read; they are listed, and recorded in meta.json',
    )

    p = sub.add_parser('search', help='text -> images over an index')
    p.add_argument('index_dir')
    p.add_argument('queries', nargs='+', help='query texts')
    p.add_argument('--config', help='default: the config recorded in the index (or a model folder)')
    p.add_argument('--checkpoint', help='default: the checkpoint recorded in the index (its hash must match)')
    p.add_argument('--topk', type=int, default=10)
    p.add_argument('--backend', choices=['auto', 'exact', 'faiss'], default='auto')
    p.add_argument('--grid', help='write a PNG grid of the results')

    p = sub.add_parser('search-image', help='image -> captions from a caption file')
    p.add_argument('config', help=CONFIG_HELP)
    p.add_argument('checkpoint', nargs='?')
    p.add_argument('images', nargs='+')
    p.add_argument('--captions', required=True, help='one caption per line (.txt) or a JSON list of strings')
    p.add_argument('--topk', type=int, default=5)

    p = sub.add_parser('serve', help='a search page and its JSON API over an index (the serve extra)')
    p.add_argument('index_dir')
    p.add_argument(
        '--host',
        default='127.0.0.1',
        help='address to listen on (default: loopback, this machine only; 0.0.0.0 opens the index to the network)',
    )
    p.add_argument('--port', type=int, default=8000, help='default 8000; 0 picks a free port (uvicorn prints it)')
    p.add_argument('--config', help='default: the config recorded in the index (or a model folder)')
    p.add_argument('--checkpoint', help='default: the checkpoint recorded in the index (its hash must match)')
    p.add_argument('--backend', choices=['auto', 'exact', 'faiss'], default='auto')

    for name, p in sub.choices.items():
        p.add_argument('--device', help='cuda or cpu (default: cuda when available)')
        p.add_argument('--verbose', action='store_true', help='also log how the model is built and loaded')
        if name in ('search', 'search-image'):
            p.add_argument('--html', help='write a self-contained HTML page of the results')
            p.add_argument('--json', help='write the results as JSON')
        if name not in ('search', 'serve'):  # these use the options recorded in the index
            p.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    return parser


def query_problem(queries: list[str]) -> str | None:
    """Why the queries cannot be searched (an empty or blank one matches every image equally
    badly), or None."""
    for n, query in enumerate(queries, 1):
        if not query.strip():
            which = f'query {n} of {len(queries)}' if len(queries) > 1 else 'the query'
            return f'{which} is empty: give a text to search for, e.g. "a bridge over a river"'
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only."""
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False


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


def _check_index(args: argparse.Namespace, prog: str) -> None:
    if not os.path.isdir(args.index_dir):
        fail(f'index not found: {args.index_dir}', prog)
    if not os.path.isfile(os.path.join(args.index_dir, 'meta.json')):
        fail(f'{args.index_dir} is not an rsretrieval index (no meta.json): build one with `index`', prog)
    check_inputs(args.config, (args.checkpoint,) if args.checkpoint else (), prog=prog)


def check_args(args: argparse.Namespace) -> None:
    """Fail with one line at the first unusable input, before anything heavy loads."""
    prog = 'rsretrieval-retrieve'
    if getattr(args, 'topk', 1) < 1:
        fail('--topk must be at least 1', prog)
    use_model_folder(args, prog)
    if args.command in ('index', 'search-image') and args.checkpoint is None:
        fail('CHECKPOINT is required with a config file (a model folder holds its own weights)', prog)
    if args.command == 'index':
        check_inputs(args.config, (args.checkpoint,), folders={args.image_dir: 'image folder'}, prog=prog)
        if os.path.exists(args.index_dir) and not os.path.isdir(args.index_dir):
            fail(f'index folder is a file: {args.index_dir}', prog)
    elif args.command == 'search':
        if problem := query_problem(args.queries):
            fail(problem, prog)
        _check_index(args, prog)
    elif args.command == 'serve':
        if problem := serve_problem(args):
            fail(problem, prog)
        _check_index(args, prog)
    else:
        files = dict.fromkeys(args.images, 'image')
        files[args.captions] = 'caption file'
        check_inputs(args.config, (args.checkpoint,), files=files, prog=prog)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_args(args)
    from rsretrieval.utils import CheckpointError, ConfigError

    from . import commands
    from .archive_index import ArchiveIndexError

    run = {
        'index': commands.cmd_index,
        'search': commands.cmd_search,
        'search-image': commands.cmd_search_image,
        'serve': commands.cmd_serve,
    }
    try:
        run[args.command](args)
    except (ArchiveIndexError, ConfigError, CheckpointError, FileNotFoundError, NotADirectoryError) as err:
        fail(str(err), 'rsretrieval-retrieve', code=1)
    except KeyboardInterrupt:  # `index` handles its own: it saves what it encoded
        print('interrupted', file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == '__main__':
    main(sys.argv[1:])

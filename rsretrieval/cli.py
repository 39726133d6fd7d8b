"""Command-line helpers that import nothing heavy.

The tools parse and check their arguments with these before torch, mmengine's
runner and the models load (several seconds), so that a missing config,
checkpoint or folder is reported at once, in one line that names it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

#: The end-of-central-directory signature that closes every zip file (torch's format).
_ZIP_END = b'PK\x05\x06'


def fail(message: str, prog: str | None = None, code: int = 2) -> NoReturn:
    """Print ``prog: error: message`` on one line to stderr and exit with ``code``."""
    prog = prog or os.path.basename(sys.argv[0]) or 'rsretrieval'
    print(f'{prog}: error: {" ".join(str(message).split())}', file=sys.stderr)
    raise SystemExit(code)


def file_problem(path: str, what: str) -> str | None:
    """What is wrong with ``path`` as an input file, or None when it can be read."""
    if not os.path.exists(path):
        return f'{what} not found: {path}'
    if os.path.isdir(path):
        return f'{what} is a folder, not a file: {path}'
    if not os.access(path, os.R_OK):
        return f'{what} is not readable (permissions): {path}'
    return None


def checkpoint_problem(path: str) -> str | None:
    """What is wrong with a checkpoint file, or None.

    Beyond existence, a torch checkpoint (a zip archive) must end with the zip
    end-of-central-directory record: a file cut short by a crash during its
    save does not, and is reported as incomplete without loading it.
    """
    problem = file_problem(path, 'checkpoint')
    if problem or not path.endswith(('.pth', '.pt', '.ckpt')):
        return problem
    size = os.path.getsize(path)
    if size == 0:
        return f'checkpoint is empty (0 bytes): {path}'
    with open(path, 'rb') as f:
        head = f.read(4)
        if head != b'PK\x03\x04':  # not a zip: a legacy pickle checkpoint; torch.load decides
            return None
        f.seek(max(0, size - 65_557))  # the record sits in the last 22 bytes + a comment of up to 64 KiB
        tail = f.read()
    if _ZIP_END not in tail:
        return f'checkpoint is incomplete (cut short, e.g. by a crash while it was saved): {path} ({size:,} bytes)'
    return None


def check_inputs(
    config: str | None = None,
    checkpoints: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
    folders: dict[str, str] | None = None,
    prog: str | None = None,
) -> None:
    """Fail with one line at the first unusable input.

    Args:
        config: Config file path.
        checkpoints: Checkpoint paths.
        files: Other input files, ``{path: what}``.
        folders: Input folders, ``{path: what}``.
        prog: Program name for the message.
    """
    if config is not None:
        problem = file_problem(config, 'config')
        if problem is None and not config.endswith(('.py', '.json', '.yaml', '.yml')):
            problem = f'config must be a .py, .json or .yaml file: {config}'
        if problem:
            fail(problem, prog)
    for path in checkpoints:
        if problem := checkpoint_problem(path):
            fail(problem, prog)
    for path, what in (files or {}).items():
        if problem := file_problem(path, what):
            fail(problem, prog)
    for path, what in (folders or {}).items():
        if not os.path.isdir(path):
            fail(f'{what} not found: {path}' if not os.path.exists(path) else f'{what} is not a folder: {path}', prog)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``tools/train.py`` and ``tools/test.py``."""
    from mmengine.config import DictAction  # light: no torch

    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. data_root=PATH train_cfg.max_epochs=2',
    )
    parser.add_argument(
        '--compile', action='store_true', help='torch.compile the encoders (CompileModulesHook; first steps are slow)'
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def model_folder_files(folder: str, prog: str | None = None) -> tuple[str, str] | None:
    """``(config.py, model.safetensors)`` of a model folder written by
    ``tools/export_model.py``; None when ``folder`` is not a folder; a one-line
    failure for a folder that holds no ``config.py``."""
    if not folder or not os.path.isdir(folder):
        return None
    config = os.path.join(folder, 'config.py')
    if not os.path.isfile(config):
        fail(
            f'config is a folder, not a file: {folder} (nor a model folder of tools/export_model.py: no config.py)',
            prog,
        )
    return config, os.path.join(folder, 'model.safetensors')


def resolve_named_input(value: str | None, prog: str | None = None) -> str | None:
    """A config, model folder or checkpoint given by name rather than path, as a local path.

    An existing path is returned as it is; ``hf-hub:ORG/NAME[:FILE]``, an
    ``https://`` URL or a model-zoo name (``rsretrieval-weights list``) is fetched
    once into the cache (or found there) and its local path returned; anything
    else is returned unchanged for the usual file checks. A name that cannot be
    had fails in one line.
    """
    if value is None or os.path.exists(value):
        return value
    from rsretrieval.weights.sources import parse_spec
    from rsretrieval.weights.zoo import load_zoo

    try:
        kind = parse_spec(value, load_zoo()).kind
    except ValueError as err:
        fail(str(err), prog)
    if kind not in ('hf-hub', 'url', 'zoo'):
        return value
    from rsretrieval.weights.resolver import WeightsUnavailableError, resolve_weights

    try:
        return str(resolve_weights(value).path)
    except WeightsUnavailableError as err:
        fail(str(err), prog, code=1)


def prepare_config_weights(config: str, cfg_options: dict | None, prog: str | None = None) -> None:
    """Fetch (once, into the cache) every pretrained weight the config's model names,
    before torch and the model load: a missing one stops the tool in seconds, in one
    line that says how to fetch it. Problems of the config itself are left to the
    full read that follows, which reports them."""
    from rsretrieval.utils.config import ConfigError, apply_cfg_options, read_config
    from rsretrieval.weights.prepare import prepare_weights
    from rsretrieval.weights.resolver import WeightsUnavailableError

    try:
        cfg = apply_cfg_options(read_config(config), cfg_options)
    except (ConfigError, KeyError, TypeError, ValueError):
        return
    try:
        prepare_weights(cfg)
    except (WeightsUnavailableError, ValueError) as err:
        fail(str(err), prog, code=1)

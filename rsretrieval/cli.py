"""Command-line helpers that import nothing heavy.

The tools parse and check their arguments with these before torch, mmengine's
runner and the models load (several seconds), so that a missing config,
checkpoint or folder is reported at once, in one line that names it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

# the checks and the shared options live in utils (torch-free); the tools import them from here
from rsretrieval.utils.checkpoint_checks import checkpoint_problem, file_problem
from rsretrieval.utils.command_args import add_common_args  # noqa: F401  (re-exported for the tools)

#: Short ``--rerank`` names of rerankers whose registered name they are not (in any case).
RERANKER_ALIASES = {'none': 'NoRerank', 'itm': 'ITMRerank'}


if TYPE_CHECKING:
    from mmengine.config import Config


def fail(message: str, prog: str | None = None, code: int = 2) -> NoReturn:
    """Print ``prog: error: message`` on one line to stderr and exit with ``code``."""
    prog = prog or os.path.basename(sys.argv[0]) or 'rsretrieval'
    print(f'{prog}: error: {" ".join(str(message).split())}', file=sys.stderr)
    raise SystemExit(code)


def fail_together(message: str, prog: str | None = None, code: int = 2) -> NoReturn:
    """:func:`fail` for a problem that every process of the run has found: the
    processes leave their group together and only the first prints the line."""
    import torch.distributed as dist

    from rsretrieval.utils import finish_distributed

    first = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    finish_distributed()
    if first:
        fail(message, prog, code)
    raise SystemExit(code)


def check_data(cfg: Config, loaders: list[str], prog: str | None = None) -> None:
    """Read the datasets of ``loaders`` before the model is built
    (:func:`rsretrieval.apis.preflight.check_run_data`): a wrong ``data_root``, a missing
    annotation file or image folder stops every process in seconds, in one line, with
    nothing written."""
    from rsretrieval.apis.preflight import DataCheckError, check_run_data

    try:
        check_run_data(cfg, loaders)
    except DataCheckError as err:
        fail_together(str(err), prog)


@contextlib.contextmanager
def evaluation_stops(prog: str | None = None) -> Iterator[None]:
    """An evaluation inside the block stops in one line: SIGTERM or Ctrl-C (to the process or
    its group) exits with status 128 + signal, a killed loader worker with status 1 naming
    the file it was reading. Give the loaders' workers
    :func:`~rsretrieval.engine.stop_signals.leave_stop_signals_to_main_process` first."""
    from rsretrieval.engine.loops import LoaderWorkerError
    from rsretrieval.engine.stop_signals import StopRequested, stop_on_signals

    prog = prog or os.path.basename(sys.argv[0]) or 'rsretrieval'
    try:
        with stop_on_signals():
            yield
    except LoaderWorkerError as err:
        fail(str(err), prog, code=1)
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, StopRequested) else signal.SIGINT
        print(f'{prog}: {signal.Signals(signum).name} received: evaluation stopped, nothing written', file=sys.stderr)
        raise SystemExit(128 + signum) from None


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
    from rsretrieval.weights.zoo import load_zoo, parse_spec

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
    from rsretrieval.utils import ConfigError, apply_cfg_options, read_config
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


def reranker_type(name: str, prog: str | None = None) -> str:
    """The ``RERANKERS`` type that ``--rerank NAME`` chooses, or a one-line failure
    listing the registered rerankers (the library's and the installed plugins').

    ``name`` is a registered name in any case (``SMR``, ``smr``) or a short name of
    :data:`RERANKER_ALIASES`; a registered name spelled exactly wins over both.
    Importing the registry loads torch: call this after the fast input checks.
    """
    from rsretrieval.plugins import PluginError
    from rsretrieval.registry import RERANKERS

    try:
        registered = RERANKERS.registered_names()
    except PluginError as err:
        fail(str(err), prog)
    if name in registered:
        return name
    by_lower = {registered_name.lower(): registered_name for registered_name in registered}
    wanted = RERANKER_ALIASES.get(name.lower(), name).lower()
    if wanted not in by_lower:
        aliases = ', '.join(f'{alias} ({target})' for alias, target in RERANKER_ALIASES.items())
        fail(f'unknown reranker {name!r}: registered rerankers: {", ".join(registered)}; short names: {aliases}', prog)
    return by_lower[wanted]

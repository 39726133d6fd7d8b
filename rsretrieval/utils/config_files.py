"""Reading a config file, and the config of a training or test command."""

from __future__ import annotations

import argparse
import os.path as osp

from mmengine.config import Config

from rsretrieval.plugins import missing_module_hint

from .cfg_options import merge_cfg_options
from .config_errors import ConfigError
from .config_variables import propagate_variables
from .distributed import setup_distributed
from .loader_workers import limit_loader_workers
from .pin_memory import pin_memory_where_useful


def read_config(path: str) -> Config:
    """``Config.fromfile``, with the variables a child config changes moved into their copies.

    A file with ``_base_`` that sets ``data_root``, ``text_weights`` or ``image_weights``
    moves every nested key that its bases derived from the variable
    (:func:`~rsretrieval.utils.config_variables.propagate_variables`).

    Raises:
        ConfigError: The file cannot be read, or sets such a variable to no effect (one line
            naming the file).
    """
    return propagate_variables(_read_file(path))


def _read_file(path: str) -> Config:
    """``Config.fromfile`` with a one-line :class:`ConfigError` naming the file."""
    try:
        return Config.fromfile(path)
    except FileNotFoundError as err:
        raise ConfigError(f'config not found: {err.filename or path}') from err
    except Exception as err:  # syntax errors, bad _base_ paths, errors raised by the config's code
        first = str(err).strip().splitlines()[0] if str(err).strip() else ''
        reason = missing_module_hint(err) or f'{type(err).__name__}: {first}'
        raise ConfigError(f'config {path} cannot be read: {reason}') from err


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the options of :func:`add_common_args`.

    Raises:
        ConfigError: The config cannot be read, or an option does not fit it (one line).
    """
    cfg = merge_cfg_options(read_config(args.config), args.cfg_options)
    pin_memory_where_useful(cfg)
    limit_loader_workers(cfg)
    cfg.launcher = args.launcher
    if getattr(args, 'compile', False):
        cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), dict(type='CompileModulesHook')]
    setup_distributed(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg

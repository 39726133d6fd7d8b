"""Config helpers shared by the command-line tools."""

from __future__ import annotations

import argparse
import os.path as osp
from typing import Any

from mmengine.config import Config, DictAction


def _replace_data_root(node: Any, old: str, new: str) -> int:
    """Set ``data_root`` to ``new`` wherever it equals ``old``; return the count."""
    count = 0
    if isinstance(node, dict):
        if node.get('data_root') == old:
            node['data_root'] = new
            count += 1
        for value in node.values():
            count += _replace_data_root(value, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_data_root(value, old, new)
    return count


def merge_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg``; a top-level ``data_root`` propagates.

    A Python config resolves ``data_root`` into every dataset when it is read,
    so overriding the top-level key alone would change nothing. Here, when
    ``data_root`` is overridden, every ``data_root`` that held the config's
    value is set to the new one, so ``--cfg-options data_root=PATH`` moves the
    whole dataset.
    """
    if not options:
        return cfg
    options = dict(options)
    old_root = cfg.get('data_root')
    new_root = options.pop('data_root', None)
    cfg.merge_from_dict(options)
    if new_root is not None:
        as_dict = cfg.to_dict()
        if old_root is not None:
            _replace_data_root(as_dict, old_root, new_root)
        as_dict['data_root'] = new_root
        cfg = Config(as_dict, filename=cfg.filename)
    return cfg


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``tools/train.py`` and ``tools/test.py``."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. data_root=PATH train_cfg.max_epochs=2',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the options of :func:`add_common_args`."""
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg

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


def setup_distributed(cfg: Config, cuda_available: bool | None = None) -> Config:
    """Make a distributed config runnable on the machine at hand.

    Without CUDA, the NCCL backend becomes gloo (an explicit ``gloo`` or
    ``mpi`` is kept), the process group is initialised here for the
    ``pytorch`` launcher (mmengine's ``init_dist`` always selects a CUDA
    device; the Runner skips it when a group exists), and the model is
    wrapped by DDP without ``device_ids`` (mmengine passes the local rank as
    a CUDA device id, which DDP rejects for a CPU module). ``find_unused_parameters`` (a top-level config key,
    default False) reaches DDP either way: set it for ablations that leave a
    module without gradients.
    """
    if cfg.get('launcher', 'none') == 'none':
        return cfg
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if not cuda_available:
        env = cfg.setdefault('env_cfg', {})
        dist_cfg = env.setdefault('dist_cfg', {})
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
        if cfg.launcher == 'pytorch':
            import torch.distributed as dist

            if not dist.is_initialized():  # torchrun's env:// variables
                dist.init_process_group(backend=dist_cfg['backend'])
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # a CPU module: mmengine would pass [LOCAL_RANK]
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            **(cfg.get('model_wrapper_cfg') or {}),
        )
    return cfg


def finish_distributed() -> None:
    """Destroy the process group while the interpreter is fully alive.

    Left to the interpreter's shutdown, gloo's worker threads can still hold
    tensors whose release needs the GIL, and the process aborts ("terminate
    called without an active exception") after the work is done. Callers
    drop their references to the runner (whose DDP wrapper holds the group)
    first; the garbage collector then frees what remains.
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the options of :func:`add_common_args`."""
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options)
    cfg.launcher = args.launcher
    setup_distributed(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg

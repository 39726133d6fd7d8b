"""Config helpers shared by the command-line tools."""

from __future__ import annotations

import argparse
import os.path as osp
from typing import Any

from mmengine.config import Config, DictAction

# Top-level variables that a config copies into nested keys when it is read:
# overriding the variable with --cfg-options moves every nested copy with it.
PROPAGATED_VARIABLES = {'data_root': 'data_root', 'text_weights': 'pretrained'}


def _replace_values(node: Any, key: str, old: Any, new: Any) -> int:
    """Set ``key`` to ``new`` wherever it equals ``old``; return the count."""
    count = 0
    if isinstance(node, dict):
        if key in node and node[key] == old:
            node[key] = new
            count += 1
        for value in node.values():
            count += _replace_values(value, key, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_values(value, key, old, new)
    return count


def merge_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg``; some top-level variables propagate.

    A Python config resolves its variables when it is read, so overriding the
    top-level ``data_root`` alone would change nothing. For each variable of
    :data:`PROPAGATED_VARIABLES` that is overridden, every nested key that held
    the config's value is set to the new one: ``--cfg-options data_root=PATH``
    moves the whole dataset, ``text_weights=PATH`` the text encoder and the
    fusion encoder together.
    """
    if not options:
        return cfg
    options = dict(options)
    moved = {name: options.pop(name) for name in PROPAGATED_VARIABLES if name in options}
    cfg.merge_from_dict(options)
    if moved:
        as_dict = cfg.to_dict()
        for name, new in moved.items():
            old = cfg.get(name)
            if old is not None:
                _replace_values(as_dict, PROPAGATED_VARIABLES[name], old, new)
            as_dict[name] = new
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
    parser.add_argument(
        '--compile', action='store_true', help='torch.compile the encoders (CompileModulesHook; first steps are slow)'
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
    if getattr(args, 'compile', False):
        cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), dict(type='CompileModulesHook')]
    setup_distributed(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg

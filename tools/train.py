"""Train a retrieval model: ``python tools/train.py CONFIG [options]``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rsretrieval.cli import (  # light: no torch
    add_common_args,
    check_data,
    check_inputs,
    fail,
    prepare_config_weights,
)

if TYPE_CHECKING:
    from mmengine.config import Config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a cross-modal retrieval model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CHECKPOINT, or from the latest checkpoint in the work dir when no path is given',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision where the hardware runs it natively: bf16 autocast on GPUs of compute capability '
        '>= 8.0 and CPUs with AVX-512 BF16 or AMX, fp32 elsewhere (optim_wrapper.dtype=bfloat16 forces bf16)',
    )
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help="also write TensorBoard logs (mmengine's TensorboardVisBackend; "
        'needs the extra: pip install -e .[tensorboard])',
    )
    parser.add_argument(
        '--quiet',
        action='store_true',
        help="leave mmengine's environment, config and hook table out of the console (the log file in the work "
        'dir keeps them): training progress, warnings and results only',
    )
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    check_inputs(config=args.config, checkpoints=(args.resume,) if args.resume not in (None, 'auto') else ())
    if args.tensorboard:
        import importlib.util

        if importlib.util.find_spec('tensorboard') is None:
            fail('--tensorboard needs the tensorboard package: pip install -e .[tensorboard]')
    return args


def restarts() -> tuple[int, str]:
    """How often the launcher has started this run again, and the launcher: torchrun's
    elastic restarts (``TORCHELASTIC_RESTART_COUNT``) or a requeued Slurm job."""
    for variable, launcher in (('TORCHELASTIC_RESTART_COUNT', 'torchrun'), ('SLURM_RESTART_COUNT', 'Slurm')):
        count = os.environ.get(variable, '0')
        if count.isdigit() and int(count) > 0:
            return int(count), launcher
    return 0, ''


def choose_resume(cfg: Config, resume: str | None) -> None:
    """Set ``cfg.resume`` and ``cfg.load_from`` from ``--resume`` and the launcher's restarts.

    ``--resume`` without a path, and every restart of the run by its launcher (no
    flag needed), resume from the newest checkpoint of the work dir that can be
    read: one torn by a crash while it was saved is passed over. A restart that
    finds none falls back on ``--resume PATH``, or starts from the beginning.
    The processes decide together (the process group exists by now): torchrun
    counts restarts per node, and a node restarted for another node's failure
    may count none. The choice is said in one line, by the first process.
    """
    count, launcher = agreed(restarts(), max)
    if not count and resume != 'auto':
        if resume is not None:
            cfg.resume, cfg.load_from = True, resume
        return
    first = rank() == 0
    latest = agreed(newest_checkpoint(cfg.work_dir) if first else None, lambda values: values[0])
    what, why = 'the newest readable checkpoint', '--resume'
    if count:
        if latest is None and resume not in (None, 'auto'):
            latest, what = resume, 'the checkpoint --resume names'
        limit = os.environ.get('TORCHELASTIC_MAX_RESTARTS')
        why = f'{launcher} restarted the run (restart {count}{f" of {limit}" if limit else ""})'
    if first:
        start = f'no readable checkpoint in {cfg.work_dir}, starting from the beginning'
        print(f'train.py: {why}: ' + (f'resuming from {latest}, {what}' if latest else start), flush=True)
    if latest:
        cfg.resume, cfg.load_from = True, latest


def rank() -> int:
    """This process's rank (0 without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def agreed(value: Any, reduce: Callable[[list], Any]) -> Any:
    """``reduce`` of the list of every process's ``value`` (``value`` itself without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return reduce(values)


def newest_checkpoint(work_dir: str) -> str | None:
    """The newest readable checkpoint of ``work_dir``, saying what was passed over."""
    from rsretrieval.utils import find_resumable_checkpoint, remove_stale_temporaries

    for path in remove_stale_temporaries(work_dir):
        print(f'train.py: removed {path}, left by a save that was killed', flush=True)
    latest, skipped = find_resumable_checkpoint(work_dir)
    for problem in skipped:
        print(f'train.py: warning: passed over {problem}', flush=True)
    return latest


def main() -> None:
    args = parse_args()
    prepare_config_weights(args.config, args.cfg_options)  # before torch: a missing weight fails in seconds
    # the slow imports (torch, the models), after the arguments are known to be usable
    from rsretrieval.utils import ConfigError, add_tensorboard, load_config, register_all_modules

    register_all_modules(init_default_scope=False)
    try:
        cfg = load_config(args)
    except ConfigError as err:
        fail(str(err))
    from rsretrieval.apis.preflight import loaders_of_training

    check_data(cfg, loaders_of_training(cfg))
    if args.amp:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'auto'
    if args.tensorboard:
        add_tensorboard(cfg)
    choose_resume(cfg, args.resume)
    train(cfg, quiet=args.quiet)


def train(cfg: Config, quiet: bool) -> None:
    """Build the Runner and train; a run that fails before its first iteration leaves no work dir."""
    from rsretrieval.apis.preflight import tidy_unstarted_run
    from rsretrieval.engine.collective_faults import collective_failure
    from rsretrieval.engine.loops import LoaderWorkerError
    from rsretrieval.utils import CheckpointWriteError, finish_distributed
    from rsretrieval.utils.quiet_logging import build_runner

    config_name = os.path.basename(cfg.filename) if cfg.filename else None
    with tidy_unstarted_run(cfg.work_dir, config_name, enabled=rank() == 0) as start:
        runner = build_runner(cfg, quiet_console=quiet)
        runner.register_hook(start)
        try:
            runner.train()
        except (CheckpointWriteError, LoaderWorkerError) as err:  # before RuntimeError, LoaderWorkerError's base
            fail(str(err), code=1)
        except RuntimeError as err:  # a collective that timed out or lost a process: one line, then torchrun restarts
            problem = collective_failure(err, iteration=runner.iter + 1)
            if problem is None:
                raise
            fail(problem, code=1)
    del runner  # the DDP wrapper holds the process group: release it before destroying the group
    finish_distributed()


if __name__ == '__main__':
    main()

"""Train a retrieval model: ``python tools/train.py CONFIG [options]``."""

from __future__ import annotations

import argparse
import os

from rsretrieval.cli import add_common_args, check_inputs, fail, prepare_config_weights  # light: no torch


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
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    check_inputs(config=args.config, checkpoints=(args.resume,) if args.resume not in (None, 'auto') else ())
    if args.tensorboard:
        import importlib.util

        if importlib.util.find_spec('tensorboard') is None:
            fail('--tensorboard needs the tensorboard package: pip install -e .[tensorboard]')
    return args


def main() -> None:
    args = parse_args()
    prepare_config_weights(args.config, args.cfg_options)  # before torch: a missing weight fails in seconds
    # the slow imports (torch, the models), after the arguments are known to be usable
    from mmengine.runner import Runner

    from rsretrieval.utils import (
        CheckpointWriteError,
        ConfigError,
        add_tensorboard,
        find_resumable_checkpoint,
        finish_distributed,
        load_config,
        register_all_modules,
        remove_stale_temporaries,
    )

    register_all_modules(init_default_scope=False)
    try:
        cfg = load_config(args)
    except ConfigError as err:
        fail(str(err))
    if args.amp:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'auto'
    if args.tensorboard:
        add_tensorboard(cfg)
    if args.resume == 'auto':
        # the newest checkpoint that can be read: one torn by a crash while it was saved is passed over
        for path in remove_stale_temporaries(cfg.work_dir):
            print(f'train.py: removed {path}, left by a save that was killed', flush=True)
        latest, skipped = find_resumable_checkpoint(cfg.work_dir)
        for problem in skipped:
            print(f'train.py: warning: passed over {problem}', flush=True)
        if latest and skipped:
            print(f'train.py: resuming from {latest}, the newest readable checkpoint', flush=True)
        cfg.resume, cfg.load_from = True, latest
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except CheckpointWriteError as err:
        fail(str(err), code=1)
    del runner  # the DDP wrapper holds the process group: release it before destroying the group
    finish_distributed()


if __name__ == '__main__':
    main()

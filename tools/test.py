"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``."""

from __future__ import annotations

import argparse
import os
import os.path as osp

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # nothing is downloaded at run time

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from rsretrieval.utils import merge_cfg_options, register_all_modules  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a cross-modal retrieval model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--out', help='save the similarity matrix and ground truth to this .npz file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. data_root=PATH test_dataloader.batch_size=32',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out:
        if not args.out.endswith('.npz'):
            raise SystemExit(f'--out must name a .npz file, got {args.out}')
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, out_file=args.out)
    return cfg


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'Checkpoint not found: {args.checkpoint}')
    register_all_modules(init_default_scope=False)
    runner = Runner.from_cfg(build_config(args))
    runner.test()


if __name__ == '__main__':
    main()

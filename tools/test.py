"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``."""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # nothing is downloaded at run time

from mmengine.config import DictAction  # noqa: E402  (light: torch loads after the checks)

from rsretrieval.cli import add_common_args, check_inputs, fail  # noqa: E402

RERANK_TYPES = {'none': 'NoRerank', 'mr': 'MR', 'smr': 'SMR', 'itm': 'ITMRerank'}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a cross-modal retrieval model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='save the similarity matrix and ground truth to this .npz file')
    parser.add_argument('--dump-metrics', metavar='JSON', help='write the returned metrics to this JSON file')
    parser.add_argument(
        '--rerank',
        choices=sorted(RERANK_TYPES),
        help='rerank the similarity matrix before ranking; raw and reranked metrics are printed side by side',
    )
    parser.add_argument(
        '--rerank-options',
        nargs='+',
        action=DictAction,
        default={},
        help='reranker arguments, e.g. topk=30 gamma1=0.9 gamma2=1.9 (SMR) or topk=30 wp1=1.0 wp2=0.7 (MR)',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='encode under bf16 autocast where the hardware runs it natively (scores and ranking stay fp32)',
    )
    parser.add_argument(
        '--verbose',
        action='store_true',
        help="also log mmengine's environment, config and hook table (left out by default: results first)",
    )
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out and not args.out.endswith('.npz'):
        parser.error(f'--out must name a .npz file, got {args.out}')
    if args.rerank_options and not args.rerank:
        parser.error('--rerank-options needs --rerank')
    check_inputs(config=args.config, checkpoints=(args.checkpoint,))
    return args


def main() -> None:
    args = parse_args()
    # the slow imports (torch, the models), after the arguments are known to be usable
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from rsretrieval.utils import (
        CheckpointError,
        ConfigError,
        finish_distributed,
        load_checkpoint_into_runner,
        load_config,
        quiet_runner,
        register_all_modules,
    )

    register_all_modules(init_default_scope=False)
    try:
        cfg = load_config(args)
    except ConfigError as err:
        fail(str(err))
    cfg.load_from, cfg.resume = None, False
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, autocast='auto')
    if args.out:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, out_file=args.out)
    if args.rerank:
        reranker = dict(type=RERANK_TYPES[args.rerank], **args.rerank_options)
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, reranker=reranker)
    with quiet_runner(cfg, enabled=not args.verbose):
        runner = Runner.from_cfg(cfg)
    # strict: a checkpoint that does not fit the config's model is an error (one line that
    # says which architecture it holds), not a partly random model
    try:
        load_checkpoint_into_runner(runner, args.checkpoint)
    except CheckpointError as err:
        fail(str(err))
    metrics = runner.test()
    if args.dump_metrics and is_main_process():
        os.makedirs(osp.dirname(osp.abspath(args.dump_metrics)), exist_ok=True)
        with open(args.dump_metrics, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=1)
    del runner  # the DDP wrapper holds the process group: release it before destroying the group
    finish_distributed()


if __name__ == '__main__':
    main()

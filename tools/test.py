"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

``python tools/test.py MODEL_DIR [options]`` evaluates a model folder written by
``tools/export_model.py`` (its ``config.py`` and ``model.safetensors``); give the data
with ``--cfg-options data_root=PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
from typing import TYPE_CHECKING

from mmengine.config import DictAction  # light: torch loads after the checks

from rsretrieval.cli import (
    add_common_args,
    check_data,
    check_inputs,
    evaluation_stops,
    fail,
    model_folder_files,
    prepare_config_weights,
    reranker_type,
    resolve_named_input,
)

if TYPE_CHECKING:
    from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a cross-modal retrieval model')
    parser.add_argument('config', help='config file path, or a model folder written by tools/export_model.py')
    parser.add_argument('checkpoint', nargs='?', help="checkpoint file (a model folder's default: its weights)")
    parser.add_argument('--out', help='save the similarity matrix and ground truth to this .npz file')
    parser.add_argument('--dump-metrics', metavar='JSON', help='write the returned metrics to this JSON file')
    parser.add_argument(
        '--rerank',
        metavar='NAME',
        help='rerank the similarity matrix before ranking with a registered reranker (RERANKERS, plugins included; '
        'any case: none, mr, smr, itm, ...); raw and reranked metrics are printed side by side',
    )
    parser.add_argument(
        '--rerank-options',
        nargs='+',
        action=DictAction,
        default={},
        help="the reranker's arguments, e.g. topk=30 gamma1=0.9 gamma2=1.9 (SMR) or topk=30 wp1=1.0 wp2=0.7 (MR)",
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
    args = parser.parse_intermixed_args()  # CHECKPOINT is optional: it may follow options, as before
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out and not args.out.endswith('.npz'):
        parser.error(f'--out must name a .npz file, got {args.out}')
    if args.rerank_options and not args.rerank:
        parser.error('--rerank-options needs --rerank')
    # a model folder or checkpoint may be named (hf-hub:ORG/NAME, a zoo name such as
    # remoteclip-vit-b-32, a URL): fetched once into the cache
    args.config = resolve_named_input(args.config)
    args.checkpoint = resolve_named_input(args.checkpoint)
    use_model_folder(args, parser)
    check_inputs(config=args.config, checkpoints=(args.checkpoint,))
    if args.rerank:
        args.rerank = reranker_type(args.rerank)
    prepare_config_weights(args.config, args.cfg_options)
    return args


def use_model_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """A model folder given as CONFIG: its config.py, its model.safetensors unless a
    checkpoint is given, and ``work_dirs/<folder name>`` for the logs."""
    files = model_folder_files(args.config)
    if files is None:
        if args.checkpoint is None:
            parser.error('CHECKPOINT is required with a config file (a model folder holds its own weights)')
        return
    folder = osp.normpath(args.config)
    args.config = files[0]
    args.checkpoint = args.checkpoint or files[1]
    if args.work_dir is None:  # not work_dirs/config, after the file's name
        args.work_dir = osp.join('work_dirs', osp.basename(osp.abspath(folder)))


def evaluate(runner: Runner) -> dict:
    """``runner.test()``; SIGTERM or Ctrl-C, to the process or its group, stop it in one line
    with status 128 + signal (the loader workers leave the signal to the main process)."""
    from rsretrieval.engine.stop_signals import leave_stop_signals_to_main_process

    leave_stop_signals_to_main_process(runner.test_dataloader)
    with evaluation_stops():
        return runner.test()


def main() -> None:
    args = parse_args()
    # the slow imports (torch, the models), after the arguments are known to be usable
    import torch
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from rsretrieval.utils import (
        CheckpointError,
        ConfigError,
        finish_distributed,
        keep_freed_cpu_memory,
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
    check_data(cfg, ['test_dataloader'])  # before the model: a wrong data_root fails in seconds, in one line
    cfg.load_from, cfg.resume = None, False
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, autocast='auto')
    if args.out:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, out_file=args.out)
    if args.rerank:
        reranker = dict(type=args.rerank, **args.rerank_options)
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, reranker=reranker)
    if not torch.cuda.is_available():
        keep_freed_cpu_memory()  # the test batches reuse the pages of the one before (docs/retrieval.md)
    with quiet_runner(cfg, enabled=not args.verbose):
        runner = Runner.from_cfg(cfg)
    # strict: a checkpoint that does not fit the config's model is an error (one line that
    # says which architecture it holds), not a partly random model
    try:
        load_checkpoint_into_runner(runner, args.checkpoint)
    except CheckpointError as err:
        fail(str(err))
    metrics = evaluate(runner)
    if args.dump_metrics and is_main_process():
        os.makedirs(osp.dirname(osp.abspath(args.dump_metrics)), exist_ok=True)
        with open(args.dump_metrics, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=1)
    del runner  # the DDP wrapper holds the process group: release it before destroying the group
    finish_distributed()


if __name__ == '__main__':
    main()

"""Metrics that must not move when the code is restructured: a recorder and its figures.

``measure(work_dir)`` trains the demo CMPAGL shrunk by ``TINY_DEMO_OPTIONS`` for one epoch
on a small generated demo dataset (64 training and 24 test scenes; fp32, one thread, seed 0),
then evaluates the checkpoint in every scoring mode the test loop has (block-wise, dense, SMR/MR candidates, SMR on the
dense matrices with the similarities saved, the ITM reranker, match-head scores), and a
seeded tiny CLIP with SMR. ``golden_metrics.json`` holds the figures recorded by the code
before a restructuring, keyed by torch's CPU kernel level (``AVX512``, ``AVX2``: their
floating-point sums differ in the last bits, which can flip a rank);
``tests/test_engine/test_metrics_unchanged.py`` compares a fresh measurement with them, to
the last digit.

Record (from a commit whose figures are the reference)::

    OMP_NUM_THREADS=1 python tests/golden_metrics.py --record
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        OMP_NUM_THREADS=1 python tests/golden_metrics.py --record
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN_FILE = HERE / 'golden_metrics.json'

#: Evaluation modes: name -> test-loop settings and model overrides.
MODES: dict[str, dict] = {
    'raw_blockwise': dict(test_cfg=dict()),
    'raw_dense': dict(test_cfg=dict(full_matrix=True)),
    'smr_candidates': dict(test_cfg=dict(reranker=dict(type='SMR'))),
    'smr_dense_saved': dict(test_cfg=dict(reranker=dict(type='SMR'), out_file='sims.npz')),
    'mr_candidates': dict(test_cfg=dict(reranker=dict(type='MR'))),
    'itm_rerank': dict(test_cfg=dict(reranker=dict(type='ITMRerank', topk=4))),
    'match_head_scores': dict(test_cfg=dict(), model=dict(retrieval_scores='match_head', pair_batch_size=64)),
}

TINY_CLIP = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, head_width=16, layers=2),
    text_cfg=dict(width=32, heads=2, layers=2),
)


def kernel_level() -> str:
    """torch's CPU kernel level (``'AVX512'``, ``'AVX2'``, ...)."""
    return torch.backends.cpu.get_cpu_capability()


def _demo_config(data_root: Path, work_dir: Path):
    from helpers import TINY_DEMO_OPTIONS
    from mmengine.config import Config, DictAction

    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    options = parser.parse_args(['--o', f'data_root={data_root}', *TINY_DEMO_OPTIONS]).o
    cfg = Config.fromfile(REPO / 'configs' / 'cmpagl_demo.py')
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    cfg.optim_wrapper.dtype = 'float32'
    cfg.val_cfg.autocast = None
    cfg.test_cfg.autocast = None
    cfg.test_cfg.progress_bar = False
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(data_root)
        loader.dataset.generator = dict(num_train=64, num_val=8, num_test=24, image_size=32, seed=1)
    cfg.visualizer = None
    return cfg


def _fresh(cfg, name: str):
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)
    cfg.experiment_name = f'golden_{name}'
    return Runner.from_cfg(cfg)


#: Keys added after the reference was recorded (caption-equivalent recall and its counts): not compared.
_ADDED_KEYS = ('equiv/', 'raw/equiv/', 'shared/')


def _rounded(metrics: dict) -> dict:
    return {k: round(float(v), 6) for k, v in sorted(metrics.items()) if not k.startswith(_ADDED_KEYS)}


def _evaluate(cfg, checkpoint: str, name: str, mode: dict, work_dir: Path) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    cfg.train_cfg = cfg.train_dataloader = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    test_cfg = dict(mode['test_cfg'])
    if 'out_file' in test_cfg:
        test_cfg['out_file'] = str(work_dir / test_cfg['out_file'])
    cfg.test_cfg.update(test_cfg)
    cfg.model.update(mode.get('model', {}))
    metrics = _fresh(cfg, name).test()
    if 'out_file' in test_cfg:
        import numpy as np

        saved = np.load(test_cfg['out_file'])
        metrics = dict(metrics, saved_sims_sum=float(saved['sims'].astype('float64').sum()))
    return _rounded(metrics)


def _clip_metrics(cfg, work_dir: Path) -> dict:
    torch.manual_seed(0)
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg = cfg.train_dataloader = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    arch = dict(arch='ViT-B-32', model_cfg=TINY_CLIP)
    cfg.model = dict(
        type='CLIPRetriever',
        backbone=dict(type='OpenCLIPVision', **arch),
        text_encoder=dict(type='OpenCLIPText', **arch),
    )
    cfg.test_cfg.reranker = dict(type='SMR')
    return _rounded(_fresh(cfg, 'clip').test())


def measure(work_dir: Path) -> dict:
    """Train the tiny demo CMPAGL and evaluate it in every mode (see the module docstring)."""
    sys.path.insert(0, str(HERE))
    from rsretrieval.utils import register_all_modules

    register_all_modules()
    torch.set_num_threads(1)
    cfg = _demo_config(work_dir / 'scenes', work_dir / 'train')
    runner = _fresh(cfg, 'train')
    runner.train()
    checkpoint = str(work_dir / 'train' / 'epoch_1.pth')
    results = {name: _evaluate(cfg, checkpoint, name, mode, work_dir) for name, mode in MODES.items()}
    results['clip_smr'] = _clip_metrics(cfg, work_dir)
    return results


def load_golden() -> dict:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--record', action='store_true', help=f'write the figures into {GOLDEN_FILE.name}')
    parser.add_argument('--out', help='also write the figures to this JSON file')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(Path(tmp))
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results))
    if args.record:
        golden = load_golden()
        golden[kernel_level()] = results
        GOLDEN_FILE.write_text(json.dumps(golden, indent=1, sort_keys=True) + '\n')
        print(f'recorded under {kernel_level()!r} in {GOLDEN_FILE}')


if __name__ == '__main__':
    main()

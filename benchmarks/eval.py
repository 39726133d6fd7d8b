"""End-to-end evaluation time of an RSICD-sized test set: decode, encode, similarity, SMR.

python benchmarks/eval.py [--config configs/cmpagl_rsicd_minilm-l6.py] [--images 1093] [--amp] [--compile]
                          [--rerank smr|none] [--workers 8] [--batch-size 128] [--device cuda]

Writes (once) an RSICD-like test split: ``--images`` JPEG images of 224x224
(synthetic aerial scenes; about the size and entropy of RSICD's) with 5
captions each in RSICD's Karpathy JSON format, under ``--data-root``. Then
builds the config's runner on it (random weights: the time does not depend on
them) and runs its test loop twice in one process, exactly as
``tools/test.py`` does:

- cold: building the dataset (annotation parsing and the full decode check of
  every image), starting the loader workers, first kernels;
- warm: the same loop again (dataset built, kernels ready).

Each run reports the loop's phases: images (decode, resize, encode), captions
(tokenise, encode), scores (similarity matrix and the reranker), metrics. The
paper reports 191 s for its method on RSICD's test set on its GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from paper_size import use_random_bert_base  # noqa: E402


def write_test_set(root: Path, n_images: int, size: int = 224, seed: int = 0) -> Path:
    """An RSICD-format test split of synthetic scenes (kept when present)."""
    from rsretrieval.datasets.synthetic.aerial_scenes import render_scene, sample_scene, scene_captions

    ann = root / 'annotations' / 'dataset_rsicd.json'
    if ann.is_file() and json.loads(ann.read_text())['num_images'] == n_images:
        return root
    (root / 'images').mkdir(parents=True, exist_ok=True)
    ann.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    images = []
    for idx in range(n_images):
        rng = np.random.default_rng([seed, idx])
        scene = sample_scene(rng)
        name = f'{idx:05d}.jpg'
        render_scene(scene, size, rng).save(root / 'images' / name, quality=90)
        captions = (scene_captions(scene, rng) * 5)[:5]
        images.append(dict(filename=name, imgid=idx, split='test', sentences=[{'raw': c} for c in captions]))
    ann.write_text(json.dumps(dict(dataset='rsicd_sized_synthetic', num_images=n_images, images=images)))
    print(f'wrote {n_images} test images to {root} in {time.perf_counter() - start:.1f} s (one-time)')
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/cmpagl_rsicd_minilm-l6.py')
    parser.add_argument('--data-root', default='data/bench_rsicd_sized')
    parser.add_argument('--images', type=int, default=1093, help="RSICD's test split: 1,093 images, 5,465 captions")
    parser.add_argument(
        '--text',
        choices=['config', 'bert-base'],
        default='config',
        help="the config's text encoders, or the paper's BERT-base 6 + 6 (random weights)",
    )
    parser.add_argument('--tokenizer', help='local tokenizer folder for --text bert-base')
    parser.add_argument('--device', default=None, help='default: cuda when available')
    parser.add_argument('--amp', action='store_true', help='encode under bf16 autocast')
    parser.add_argument('--compile', action='store_true', help='torch.compile the encoders')
    parser.add_argument('--rerank', choices=['smr', 'none'], default='smr')
    parser.add_argument('--workers', type=int, default=None, help='loader workers (default: the config)')
    parser.add_argument('--batch-size', type=int, default=None, help='images per batch (default: the config)')
    parser.add_argument('--text-batch-size', type=int, default=None, help='captions per batch (default 256)')
    parser.add_argument('--runs', type=int, default=2, help='test loops in the process (the first is cold)')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    args = parser.parse_args()

    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from rsretrieval.utils import merge_cfg_options, register_all_modules

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    root = write_test_set(Path(args.data_root), args.images)
    register_all_modules(init_default_scope=False)
    cfg = merge_cfg_options(Config.fromfile(args.config), {'data_root': str(root)})
    if args.text == 'bert-base':
        cfg.model = use_random_bert_base(cfg.model.to_dict(), args.tokenizer)
    cfg.test_dataloader.dataset = dict(  # the config's test pipeline on the RSICD-format split
        type='RSCaptionDataset',
        data_root=str(root),
        ann_file='annotations/dataset_rsicd.json',
        data_prefix=dict(img_path='images'),
        split='test',
        test_mode=True,
        pipeline=cfg.test_dataloader.dataset.pipeline,
    )
    if args.workers is not None:
        cfg.test_dataloader.num_workers = args.workers
        cfg.test_dataloader.persistent_workers = args.workers > 0 and args.runs > 1
    if args.batch_size is not None:
        cfg.test_dataloader.batch_size = args.batch_size
    test_cfg = dict(cfg.get('test_cfg') or {}, type='RetrievalTestLoop', progress_bar=False)
    test_cfg['reranker'] = dict(type='SMR', topk=30, gamma1=0.9, gamma2=1.9) if args.rerank == 'smr' else None
    if args.amp:
        test_cfg['autocast'] = 'bfloat16'
    if args.text_batch_size:
        test_cfg['text_batch_size'] = args.text_batch_size
    cfg.test_cfg = test_cfg
    if args.compile:
        cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), dict(type='CompileModulesHook')]
    cfg.work_dir = tempfile.mkdtemp(prefix='bench_eval_')
    cfg.experiment_name = f'bench_eval_{os.getpid()}'
    if device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.model.to(device)
    build_s = time.perf_counter() - start
    what = torch.cuda.get_device_name() if device.startswith('cuda') else f'CPU, {torch.get_num_threads()} threads'
    print(
        f'# {args.config}, {args.images} images x {5 * args.images} captions, {what}, text {args.text}, '
        f'amp={args.amp}, compile={args.compile}, rerank={args.rerank}; runner built in {build_s:.1f} s'
    )
    rows = []
    for run in range(args.runs):
        start = time.perf_counter()
        metrics = runner.test()
        total = time.perf_counter() - start
        t = dict(runner.test_loop.timings)
        row = dict(run='cold' if run == 0 else 'warm', end_to_end=total, setup=total - t['total'], **t)
        rows.append(row)
        print(f'{row["run"]}: {total:.2f} s end to end, mR {metrics["mR"]:.2f} (random weights)', flush=True)
    print()
    print('| run | end to end (s) | dataset + loader setup | images | captions | scores (+SMR) | metrics |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["run"]} | {r["end_to_end"]:.2f} | {r["setup"]:.2f} | {r["images"]:.2f} | {r["captions"]:.2f} | '
              f'{r["scores"]:.2f} | {r["metrics"]:.2f} |')  # fmt: skip
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(device=what, args=vars(args), runner_build_s=build_s, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()

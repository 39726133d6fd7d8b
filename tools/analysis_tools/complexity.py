"""A config's cost as the paper's Table VIII reports it.

``python tools/analysis_tools/complexity.py CONFIG [--checkpoint CKPT] [--device cuda]``

- parameters: total, and on the inference path (image encoder, text encoder, projections);
- FLOPs of embedding one image and one caption (mmengine's FlopAnalyzer);
- evaluation time: embedding every image and caption of a test set of RSICD's, RSITMD's
  and UCM-Captions' sizes (``--sets``) and computing all similarities, images already
  decoded in memory;
- inference time: one image and one caption embedded from scratch and compared (median).

Weights do not change the cost: without ``--checkpoint`` the model keeps its
initialisation (local pretrained text weights still load, so shapes are the real ones).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmengine.config import DictAction  # noqa: E402  (light: torch loads after the checks)

from rsretrieval.cli import check_inputs, fail  # noqa: E402

TEST_SETS = {'rsicd': (1093, 5465), 'rsitmd': (452, 2260), 'ucm': (210, 1050), 'sydney': (58, 290)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A config's parameters, FLOPs, evaluation and inference time")
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights to load (the cost does not depend on them)')
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--sets', nargs='*', default=['rsicd', 'rsitmd', 'ucm'], choices=sorted(TEST_SETS))
    parser.add_argument('--image-batch', type=int, default=64)
    parser.add_argument('--text-batch', type=int, default=256)
    parser.add_argument('--repeats', type=int, default=20, help='timed repeats of the per-pair inference')
    parser.add_argument('--no-flops', action='store_true', help='skip the FLOP count')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    parser.add_argument('--verbose', action='store_true', help='also log how the model is built and loaded')
    args = parser.parse_args()
    check_inputs(config=args.config, checkpoints=(args.checkpoint,) if args.checkpoint else ())
    return args


def _image_size(cfg) -> tuple[int, int]:
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            w, h = step['scale']
            return int(h), int(w)
    raise SystemExit('the test pipeline has no Resize step: cannot tell the input size')


def main() -> None:
    args = parse_args()
    import torch

    from rsretrieval.analysis import count_parameters, flops_per_item, time_evaluation, time_pair
    from rsretrieval.apis import init_model
    from rsretrieval.utils import CheckpointError, ConfigError

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        model = init_model(
            args.config, args.checkpoint, device=device, cfg_options=args.cfg_options, quiet=not args.verbose
        )
    except (ConfigError, CheckpointError) as err:
        fail(str(err))
    size = _image_size(model.cfg)
    params = count_parameters(model)
    report = dict(config=args.config, device=device, image_size=list(size), parameters=params)
    print(f'{args.config} on {device}, images {size[0]}x{size[1]}')
    print(f'parameters: {params["total"] / 1e6:.2f} M total, {params["inference"] / 1e6:.2f} M at inference')
    if not args.no_flops:
        flops = flops_per_item(model, size)
        report['flops'] = flops
        print(f'FLOPs: {flops["image"] / 1e9:.2f} G per image, {flops["text"] / 1e9:.3f} G per caption')
    report['evaluation_s'] = {}
    for name in args.sets:
        n_img, n_txt = TEST_SETS[name]
        t = time_evaluation(model, n_img, n_txt, size, args.image_batch, args.text_batch)
        report['evaluation_s'][name] = t
        print(
            f'evaluation, {name} test size ({n_img} images x {n_txt} captions): {t["total"]:.2f} s '
            f'(images {t["images"]:.2f}, captions {t["captions"]:.2f}, similarity {t["similarity"]:.3f})'
        )
    report['inference_s_per_pair'] = time_pair(model, size, args.repeats)
    print(f'inference: {report["inference_s_per_pair"] * 1e3:.1f} ms per image-caption pair (batch 1, median)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()

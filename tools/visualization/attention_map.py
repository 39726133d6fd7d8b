"""Gswin's last-block attention over images (the paper's Fig. 7).

``python tools/visualization/attention_map.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out-dir DIR``

For each image, writes ``DIR/<image name>_attention.png``: the source image at its own
resolution, then one overlay per attention branch of the last block (``--branches``;
default every branch the model has), each titled with the branch, side by side, and a
colour bar (share of attention received) under them. The model sees the image through the
config's test pipeline; the heat maps are upsampled from its last stage to the source
image's size, which assumes the pipeline resizes the whole image (no crop), as every
config's test pipeline does.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # nothing is downloaded at run time

from mmengine.config import DictAction  # noqa: E402  (light: torch loads after the checks)

from rsretrieval.cli import check_inputs, fail  # noqa: E402

BRANCHES = ('local', 'shifted', 'cross', 'cross_shifted')  # as rsretrieval.visualization.BRANCHES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Overlay Gswin's last-block attention on images")
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--out-dir', default='work_dirs/attention_maps')
    parser.add_argument('--branches', nargs='+', choices=BRANCHES, help='default: every branch of the last block')
    parser.add_argument('--alpha', type=float, default=0.5, help='weight of the heat map in the blend')
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    parser.add_argument('--verbose', action='store_true', help='also log how the model is built and loaded')
    args = parser.parse_args()
    check_inputs(args.config, (args.checkpoint,), files=dict.fromkeys(args.images, 'image'))
    return args


def main() -> None:
    args = parse_args()
    import torch
    from mmengine.dataset import pseudo_collate

    from rsretrieval.apis import build_test_pipeline, init_model
    from rsretrieval.datasets.transforms import read_rgb
    from rsretrieval.models.backbones import Gswin
    from rsretrieval.utils import CheckpointError, ConfigError
    from rsretrieval.visualization import attention_figure, attention_heatmaps

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        model = init_model(
            args.config, args.checkpoint, device=device, cfg_options=args.cfg_options, quiet=not args.verbose
        )
    except (ConfigError, CheckpointError) as err:
        fail(str(err))
    if not isinstance(model.backbone, Gswin):
        raise SystemExit(f'attention maps need a Gswin image encoder; this config has {type(model.backbone).__name__}')
    pipeline = build_test_pipeline(model.cfg)
    os.makedirs(args.out_dir, exist_ok=True)
    for path in args.images:
        batch = pseudo_collate([pipeline(dict(img_path=path, sample_idx=0, image_id=0))])
        data = model.data_preprocessor(batch, False)
        with torch.no_grad():
            model.backbone(data['inputs'])
        heat = attention_heatmaps(model.backbone, tuple(data['inputs'].shape[-2:]))
        branches = args.branches or [b for b in BRANCHES if b in heat]
        missing = [b for b in branches if b not in heat]
        if missing:
            raise SystemExit(f'the last Gswin block has no {missing} branch (it has {sorted(heat)})')
        source = read_rgb(path)  # (H, W, 3) at the file's own resolution
        fig = attention_figure(source, {b: heat[b][0] for b in branches}, args.alpha)
        out = osp.join(args.out_dir, f'{osp.splitext(osp.basename(path))[0]}_attention.png')
        fig.savefig(out, dpi=fig.dpi)
        h, w = source.shape[:2]
        print(f'{out}: image | {" | ".join(branches)} ({w} x {h} px)')


if __name__ == '__main__':
    main()

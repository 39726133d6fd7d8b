"""Swin Transformer backbone: :class:`TimmBackbone` over timm's ``SwinTransformer``."""

from __future__ import annotations

import os
import re

import torch

from rsretrieval.registry import BACKBONES

from .timm_backbone import TimmBackbone


def swin_release_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original Swin release's keys onto timm's; timm's pass unchanged.

    The release merges patches at the end of stage ``i`` (``layers.{i}.downsample``),
    timm at the start of stage ``i + 1``; its classifier is ``head``, timm's
    ``head.fc``. The renaming is that of timm's ``checkpoint_filter_fn``, without
    its resizing: the loader resizes and reports.
    """
    if 'layers.0.downsample.reduction.weight' not in state:  # timm's layout: stage 0 has no merging
        return state
    out = {}
    for key, value in state.items():
        key = re.sub(r'^layers\.(\d+)\.downsample', lambda m: f'layers.{int(m[1]) + 1}.downsample', key)
        out[re.sub(r'^head\.', 'head.fc.', key)] = value
    return out


#: Swin-T with window 8 at 256x256 (the ImageNet Swin-T has window 7 at 224).
SWIN_T_256 = dict(
    img_size=256, window_size=8, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.1
)


@BACKBONES.register_module()
class Swin(TimmBackbone):
    """timm ``SwinTransformer`` (``layout='nhwc'``); defaults are Swin-T with window 8 at 256x256.

    Output ``(B, 1 + (H/32)(W/32), 8C)``: the mean token, then the last stage's
    tokens (after the final norm).

    Args:
        pretrained: Weights (see :class:`TimmBackbone`): timm's layout or the
            original release's (:func:`swin_release_to_timm`); relative-position
            tables are resized to ``window_size``.
        init_cfg: mmengine initialisation config.
        **kwargs: ``SwinTransformer`` arguments over :data:`SWIN_T_256`:
            ``img_size`` (a multiple of ``4 * window_size * 8``), ``window_size``,
            ``embed_dim`` ``C``, ``depths``, ``num_heads``, ``drop_path_rate`` and
            any other.
    """

    convert = staticmethod(swin_release_to_timm)

    def __init__(self, pretrained: str | os.PathLike | None = None, init_cfg: dict | None = None, **kwargs) -> None:
        super().__init__('swin_tiny_patch4_window7_224', 'nhwc', pretrained, init_cfg, **{**SWIN_T_256, **kwargs})

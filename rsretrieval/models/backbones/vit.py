"""Vision Transformer backbone: :class:`TimmBackbone` over timm's ``VisionTransformer``."""

from __future__ import annotations

import os

from rsretrieval.registry import BACKBONES

from .timm_backbone import TimmBackbone

#: ViT-B/16 at 256x256 (the position embedding of 224 checkpoints is resized on loading).
VIT_B16_256 = dict(
    img_size=256,
    patch_size=16,
    embed_dim=768,
    depth=12,
    num_heads=12,
    mlp_ratio=4.0,
    drop_path_rate=0.1,
    use_naflex=False,  # timm may swap in NaFlexVit when TIMM_USE_NAFLEXVIT is set; its keys differ
)


@BACKBONES.register_module()
class ViT(TimmBackbone):
    """timm ``VisionTransformer`` (``layout='tokens'``); defaults are ViT-B/16 at 256x256.

    Output ``(B, 1 + (H/p)(W/p), D)``: the class token, then the patch tokens,
    after the final norm.

    Args:
        pretrained: Weights (see :class:`TimmBackbone`).
        init_cfg: mmengine initialisation config.
        **kwargs: ``VisionTransformer`` arguments over :data:`VIT_B16_256`:
            ``img_size`` (the size the position embedding is built for),
            ``patch_size`` ``p``, ``embed_dim`` ``D``, ``depth``, ``num_heads``,
            ``mlp_ratio``, ``drop_path_rate`` and any other.
    """

    def __init__(self, pretrained: str | os.PathLike | None = None, init_cfg: dict | None = None, **kwargs) -> None:
        super().__init__('vit_base_patch16_224', 'tokens', pretrained, init_cfg, **{**VIT_B16_256, **kwargs})

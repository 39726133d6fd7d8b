"""Vision Transformer backbone (timm)."""

from __future__ import annotations

import os

from timm.models.vision_transformer import VisionTransformer

from rsretrieval.registry import BACKBONES

from .timm_backbone import TimmBackbone


@BACKBONES.register_module()
class ViT(TimmBackbone):
    """timm ``VisionTransformer``; defaults are ViT-B/16 at 256x256.

    Output ``(B, 1 + (H/p)(W/p), D)``: the class token, then the patch tokens,
    after the final norm.

    Args:
        img_size: Input size the position embedding is built for.
        patch_size: Patch size ``p``.
        embed_dim: Token width ``D``.
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        drop_path_rate: Stochastic depth rate.
        pretrained: Local checkpoint (see :class:`TimmBackbone`).
        init_cfg: mmengine initialisation config.
        **kwargs: Further ``VisionTransformer`` arguments.
    """

    def __init__(
        self,
        img_size: int = 256,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        pretrained: str | os.PathLike | None = None,
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        model = VisionTransformer(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
            num_classes=0,
            **kwargs,
        )
        super().__init__(model, 'tokens', pretrained, init_cfg)

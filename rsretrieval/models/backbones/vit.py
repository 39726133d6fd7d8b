"""Vision Transformer backbone (timm), returning tokens with the class token first."""

from __future__ import annotations

import os

import torch
from mmengine.model import BaseModule
from timm.models.vision_transformer import VisionTransformer

from rsretrieval.registry import BACKBONES
from rsretrieval.utils import load_weights


@BACKBONES.register_module()
class ViT(BaseModule):
    """timm ``VisionTransformer`` with the backbone contract of rsretrieval.

    ``forward(images)`` returns ``(B, 1 + N, D)``: the class token, then the
    ``N = (H / patch) * (W / patch)`` patch tokens, after the final norm.

    Args:
        img_size: Input size the position embedding is built for.
        patch_size: Patch size.
        embed_dim: Token width ``D``.
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        drop_path_rate: Stochastic depth rate.
        pretrained: Local checkpoint (timm or mmengine layout, ``.pth`` or
            ``.safetensors``); loaded in :meth:`init_weights`, missing and
            unexpected keys reported.
        init_cfg: mmengine initialisation config.
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
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.vit = VisionTransformer(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
            num_classes=0,
        )
        self.vit.is_init = True  # timm initialised it; mmengine must not re-run its init_weights
        self.pretrained = pretrained

    @property
    def out_channels(self) -> int:
        """Token width ``D``."""
        return self.vit.embed_dim

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None:
            load_weights(self.vit, self.pretrained)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> tokens (B, 1 + H/p * W/p, D)
        return self.vit.forward_features(images)

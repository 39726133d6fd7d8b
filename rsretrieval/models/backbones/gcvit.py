"""Global Context ViT backbone (timm)."""

from __future__ import annotations

import os

from timm.models.gcvit import GlobalContextVit

from rsretrieval.registry import BACKBONES

from .timm_backbone import TimmBackbone


@BACKBONES.register_module()
class GCViT(TimmBackbone):
    """timm ``GlobalContextVit``; defaults are GCViT-T at 256x256.

    Output ``(B, 1 + (H/32)(W/32), D)``: the mean token, then the last stage's
    positions.

    Args:
        img_size: Input size (timm must build GCViT for it: 256 inputs need
            ``img_size=256``).
        embed_dim: First-stage width.
        depths: Blocks per stage.
        num_heads: Heads per stage.
        drop_path_rate: Stochastic depth rate.
        pretrained: Local checkpoint (see :class:`TimmBackbone`).
        init_cfg: mmengine initialisation config.
        **kwargs: Further ``GlobalContextVit`` arguments.
    """

    def __init__(
        self,
        img_size: int = 256,
        embed_dim: int = 64,
        depths: tuple[int, ...] = (3, 4, 19, 5),
        num_heads: tuple[int, ...] = (2, 4, 8, 16),
        drop_path_rate: float = 0.1,
        pretrained: str | os.PathLike | None = None,
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        model = GlobalContextVit(
            img_size=img_size,
            embed_dim=embed_dim,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            drop_path_rate=drop_path_rate,
            num_classes=0,
            **kwargs,
        )
        super().__init__(model, 'nchw', pretrained, init_cfg)

"""A timm ConvNeXt as an rsretrieval image encoder."""

from __future__ import annotations

import os

import torch
from mmengine.model import BaseModule
from timm.models.convnext import ConvNeXt

from rsretrieval.registry import BACKBONES
from rsretrieval.utils import load_weights


@BACKBONES.register_module()
class ConvNeXtBackbone(BaseModule):
    """ConvNeXt (Liu et al., 2022) honouring the backbone contract of rsretrieval.

    The contract: ``forward(images)`` maps ``(B, 3, H, W)`` to tokens
    ``(B, 1 + N, D)`` with a global token first, and ``out_channels`` is ``D``.
    Here the ``N = (H / 32) * (W / 32)`` tokens are the positions of the last
    stage's feature map and the global token is their mean.

    Args:
        depths: Blocks per stage.
        dims: Channels per stage; ``D = dims[-1]``.
        drop_path_rate: Stochastic depth rate.
        pretrained: Local timm ConvNeXt checkpoint (``.pth`` or ``.safetensors``),
            loaded in :meth:`init_weights` with missing and unexpected keys
            reported; nothing is downloaded.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        depths: tuple[int, ...] = (3, 3, 9, 3),
        dims: tuple[int, ...] = (96, 192, 384, 768),
        drop_path_rate: float = 0.1,
        pretrained: str | os.PathLike | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(depths) != len(dims):
            raise ValueError(f'depths and dims need one entry per stage, got {depths} and {dims}')
        self.model = ConvNeXt(depths=tuple(depths), dims=tuple(dims), drop_path_rate=drop_path_rate, num_classes=0)
        self.model.is_init = True  # timm initialised it: mmengine's init_weights leaves it alone
        self.pretrained = pretrained

    @property
    def out_channels(self) -> int:
        """Token width ``D``."""
        return self.model.num_features

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None:
            load_weights(self.model, self.pretrained)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(images)  # (B, D, H/32, W/32)
        tokens = feats.flatten(2).transpose(1, 2)  # (B, N, D)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)  # (B, 1 + N, D)

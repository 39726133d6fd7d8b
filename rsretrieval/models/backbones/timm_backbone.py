"""Shared wrapper turning a timm model into an rsretrieval backbone."""

from __future__ import annotations

import os

import torch
from mmengine.model import BaseModule
from torch import nn

from rsretrieval.utils import load_weights

LAYOUTS = ('tokens', 'nhwc', 'nchw')


class TimmBackbone(BaseModule):
    """Base of the timm backbones: same output contract as :class:`Gswin`.

    ``forward(images)`` returns ``(B, 1 + N, D)`` with a global token first:
    the model's class token when it has one (``layout='tokens'``), otherwise the
    mean of the final feature map's ``N`` positions.

    Args:
        model: The timm model (built without downloading anything).
        layout: What ``model.forward_features`` returns: ``'tokens'``
            ``(B, 1 + N, D)``, ``'nhwc'`` or ``'nchw'`` feature maps.
        pretrained: Local checkpoint (timm or mmengine layout, ``.pth`` or
            ``.safetensors``) loaded into ``model`` by :meth:`init_weights`,
            with missing and unexpected keys reported.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self, model: nn.Module, layout: str, pretrained: str | os.PathLike | None = None, init_cfg=None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if layout not in LAYOUTS:
            raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
        self.model, self.layout, self.pretrained = model, layout, pretrained
        self.model.is_init = True  # timm initialised it; mmengine must not re-run its init_weights

    @property
    def out_channels(self) -> int:
        """Token width ``D``."""
        return self.model.num_features

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None:
            load_weights(self.model, self.pretrained)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(images)
        if self.layout == 'tokens':
            return feats  # (B, 1 + N, D), class token first
        if self.layout == 'nchw':
            feats = feats.permute(0, 2, 3, 1)
        tokens = feats.flatten(1, 2)  # (B, N, D)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)

"""Shared wrapper turning a timm model into an rsretrieval backbone."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from mmengine.model import BaseModule
from torch import nn

from rsretrieval.utils import resolve_pretrained
from rsretrieval.weights.loading import ConciseInitInfo, LoadReport, load_pretrained

LAYOUTS = ('tokens', 'nhwc', 'nchw')


class TimmBackbone(ConciseInitInfo, BaseModule):
    """Base of the timm backbones: same output contract as :class:`Gswin`.

    ``forward(images)`` returns ``(B, 1 + N, D)`` with a global token first:
    the model's class token when it has one (``layout='tokens'``), otherwise the
    mean of the final feature map's ``N`` positions.

    Args:
        model: The timm model (built without downloading anything).
        layout: What ``model.forward_features`` returns: ``'tokens'``
            ``(B, 1 + N, D)``, ``'nhwc'`` or ``'nchw'`` feature maps.
        pretrained: Weights loaded into ``model`` by :meth:`init_weights`: a
            name known to :func:`~rsretrieval.utils.resolve_pretrained` or a local
            file (timm or mmengine layout, ``.pth`` or ``.safetensors``). Tensors
            that depend on the input or window size are resized (see
            :mod:`rsretrieval.weights.resize`), the classifier head is dropped, and
            a tensor the file does not fill is an error.
        init_cfg: mmengine initialisation config.

    Attributes:
        convert: Maps another layout of the same model's weights onto timm's
            (e.g. the original Swin release); None when timm's is the only one.
        load_report: What the latest :meth:`init_weights` loaded, or None.
    """

    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    load_report: LoadReport | None = None

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

    def new_in_architecture(self) -> dict[str, tuple[str, ...]]:
        """Parameters of ``model`` a checkpoint of the same timm model lacks: none."""
        return {}

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None:
            path = resolve_pretrained(self.pretrained)
            name = None if Path(str(self.pretrained)).expanduser().resolve() == path else str(self.pretrained)
            convert = type(self).convert  # read off the class: a plain function stored there must not bind
            self.load_report = load_pretrained(
                self.model, path, convert=convert, new_in_architecture=self.new_in_architecture(), source_name=name
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(images)
        if self.layout == 'tokens':
            return feats  # (B, 1 + N, D), class token first
        if self.layout == 'nchw':
            feats = feats.permute(0, 2, 3, 1)
        tokens = feats.flatten(1, 2)  # (B, N, D)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)

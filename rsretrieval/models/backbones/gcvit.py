"""Global Context ViT backbone: :class:`TimmBackbone` over timm's ``GlobalContextVit``."""

from __future__ import annotations

import os

from timm.models import build_model_with_cfg
from timm.models.gcvit import GlobalContextVit
from torch import nn

from rsretrieval.registry import BACKBONES

from .timm_backbone import TimmBackbone

#: GCViT-T at 256x256: timm must build GCViT for the input size it will see.
GCVIT_T_256 = dict(img_size=256, embed_dim=64, depths=(3, 4, 19, 5), num_heads=(2, 4, 8, 16), drop_path_rate=0.1)


@BACKBONES.register_module()
class GCViT(TimmBackbone):
    """timm ``GlobalContextVit`` (``layout='nchw'``); defaults are GCViT-T at 256x256.

    Output ``(B, 1 + (H/32)(W/32), D)``: the mean token, then the last stage's
    positions.

    Args:
        pretrained: Weights (see :class:`TimmBackbone`).
        init_cfg: mmengine initialisation config.
        **kwargs: ``GlobalContextVit`` arguments over :data:`GCVIT_T_256`:
            ``img_size`` (256 inputs need ``img_size=256``), ``embed_dim`` (the
            first stage's width), ``depths``, ``num_heads``, ``drop_path_rate``
            and any other.
    """

    def __init__(self, pretrained: str | os.PathLike | None = None, init_cfg: dict | None = None, **kwargs) -> None:
        super().__init__('gcvit_tiny', 'nchw', pretrained, init_cfg, **{**GCVIT_T_256, **kwargs})

    @staticmethod
    def create_model(model_name: str, **kwargs) -> nn.Module:
        """The GCViT class under ``model_name``'s configuration: timm's GCViT
        entrypoints fix ``depths`` and ``num_heads``, which configs set."""
        return build_model_with_cfg(GlobalContextVit, model_name, pretrained=False, num_classes=0, **kwargs)

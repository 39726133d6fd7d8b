"""A timm ConvNeXt as an rsretrieval image encoder: a configuration of :class:`TimmBackbone`."""

from __future__ import annotations

import os

from rsretrieval.models.backbones import TimmBackbone
from rsretrieval.registry import BACKBONES


@BACKBONES.register_module()
class ConvNeXtBackbone(TimmBackbone):
    """ConvNeXt (Liu et al., 2022) honouring the backbone contract of rsretrieval.

    The contract: ``forward(images)`` maps ``(B, 3, H, W)`` to tokens
    ``(B, 1 + N, D)`` with a global token first, and ``out_channels`` is ``D``.
    :class:`TimmBackbone` keeps it for any timm model once told what
    ``forward_features`` returns: ConvNeXt returns a ``(B, D, H/32, W/32)`` map
    (``layout='nchw'``), so the ``N = (H / 32) * (W / 32)`` tokens are its
    positions and the global token is their mean. This class only names the
    model and checks its arguments; the same backbone is
    ``dict(type='TimmBackbone', model_name='convnext_tiny', layout='nchw', ...)``.

    Args:
        depths: Blocks per stage.
        dims: Channels per stage; ``D = dims[-1]``.
        drop_path_rate: Stochastic depth rate.
        pretrained: Weights loaded by :meth:`init_weights`: a name known to
            rsretrieval's weight zoo or a local timm ConvNeXt checkpoint
            (``.pth`` or ``.safetensors``); a tensor it does not fill is an
            error, and nothing is downloaded.
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
        if len(depths) != len(dims):
            raise ValueError(f'depths and dims need one entry per stage, got {depths} and {dims}')
        super().__init__(
            'convnext_tiny', 'nchw', pretrained, init_cfg, depths=depths, dims=dims, drop_path_rate=drop_path_rate
        )

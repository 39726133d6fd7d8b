"""Any timm model as an rsretrieval backbone: ``(B, 1 + N, D)``, global token first."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import timm
import torch
from mmengine.model import BaseModule
from torch import nn

from rsretrieval.registry import BACKBONES
from rsretrieval.weights.loading import ConciseInitInfo, LoadReport, load_pretrained
from rsretrieval.weights.pretrained import resolve_pretrained


def _with_mean_token(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, N, D) -> (B, 1 + N, D)``: the mean of the ``N`` tokens first."""
    return torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)


def tokens_to_contract(feats: torch.Tensor, num_prefix_tokens: int, has_class_token: bool) -> torch.Tensor:
    """A token sequence ``(B, P + N, D)`` of ``P`` prefix tokens -> ``(B, 1 + N, D)``.

    The class token (the first prefix token) is the global token; other prefix
    tokens (registers, distillation) are dropped. Without a class token the
    global token is the mean of the ``N`` patch tokens.
    """
    if has_class_token and num_prefix_tokens == 1:
        return feats  # already the contract
    patches = feats[:, num_prefix_tokens:]  # (B, N, D)
    if has_class_token:
        return torch.cat([feats[:, :1], patches], dim=1)
    return _with_mean_token(patches)


def nhwc_to_contract(feats: torch.Tensor) -> torch.Tensor:
    """A feature map ``(B, H, W, D) -> (B, 1 + HW, D)``, row-major positions."""
    return _with_mean_token(feats.flatten(1, 2))


def nchw_to_contract(feats: torch.Tensor) -> torch.Tensor:
    """A feature map ``(B, D, H, W) -> (B, 1 + HW, D)``, row-major positions."""
    return nhwc_to_contract(feats.permute(0, 2, 3, 1))


#: What ``forward_features`` returns -> ``(B, 1 + N, D)``; ``'tokens'`` is handled
#: by :func:`tokens_to_contract`, which needs the model's prefix-token counts.
LAYOUTS = ('tokens', 'nhwc', 'nchw')
_MAP_TO_CONTRACT = {'nhwc': nhwc_to_contract, 'nchw': nchw_to_contract}


def _as_tuples(kwargs: dict) -> dict:
    """Lists -> tuples: configs and ``--cfg-options`` give lists where timm's signatures ask for tuples."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}


@BACKBONES.register_module()
class TimmBackbone(ConciseInitInfo, BaseModule):
    """A timm model honouring the backbone contract of rsretrieval (as :class:`Gswin`).

    ``forward(images)`` returns ``(B, 1 + N, D)`` with a global token first and
    ``out_channels`` is ``D``. ``layout`` says what timm's ``forward_features``
    returns and so how the contract is made:

    - ``'tokens'``: ``(B, P + N, D)`` with ``P`` prefix tokens (ViT, DeiT): the
      class token, then the ``N`` patch tokens (see :func:`tokens_to_contract`).
    - ``'nhwc'``: ``(B, H, W, D)`` (Swin): the mean of the ``HW`` positions, then
      the positions in row-major order.
    - ``'nchw'``: ``(B, D, H, W)`` (ConvNeXt, GCViT): as ``'nhwc'``.

    Example:
        ``dict(type='TimmBackbone', model_name='convnext_tiny', layout='nchw',
        drop_path_rate=0.1)``

    Args:
        model_name: timm model name (``timm.list_models()``); built without its
            classifier and without downloading anything.
        layout: What ``model.forward_features`` returns: one of :data:`LAYOUTS`.
        pretrained: Weights loaded into ``model`` by :meth:`init_weights`: a
            name known to :func:`~rsretrieval.utils.resolve_pretrained` or a local
            file (timm or mmengine layout, ``.pth`` or ``.safetensors``). Tensors
            that depend on the input or window size are resized (see
            :mod:`rsretrieval.weights.resize`), the classifier head is dropped, and
            a tensor the file does not fill is an error.
        init_cfg: mmengine initialisation config.
        **model_kwargs: Arguments of the timm model, over those ``model_name``
            sets (e.g. ``img_size``, ``depths``, ``drop_path_rate``).

    Attributes:
        model: The timm model.
        convert: Maps another layout of the same model's weights onto timm's
            (e.g. the original Swin release); None when timm's is the only one.
        load_report: What the latest :meth:`init_weights` loaded, or None.
    """

    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    load_report: LoadReport | None = None

    def __init__(
        self,
        model_name: str,
        layout: str,
        pretrained: str | os.PathLike | None = None,
        init_cfg: dict | None = None,
        **model_kwargs,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if layout not in LAYOUTS:
            raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
        self.model = self.create_model(model_name, **_as_tuples(model_kwargs))
        self.model_name, self.layout, self.pretrained = model_name, layout, pretrained
        self.model.is_init = True  # timm initialised it; mmengine must not re-run its init_weights

    @staticmethod
    def create_model(model_name: str, **model_kwargs) -> nn.Module:
        """timm's ``model_name`` without its classifier; nothing is downloaded.

        A subclass overrides it where timm's entrypoint fixes arguments a config
        sets (see :class:`GCViT`).
        """
        return timm.create_model(model_name, pretrained=False, num_classes=0, **model_kwargs)

    @property
    def out_channels(self) -> int:
        """Token width ``D``."""
        return self.model.num_features

    def new_in_architecture(self) -> dict[str, tuple[str, ...]]:
        """Parameters of ``model`` a checkpoint of the same timm model lacks: none."""
        return {}

    def init_weights(self) -> None:
        """mmengine's initialisation, then the ``pretrained`` weights (see the class)."""
        super().init_weights()
        if self.pretrained is not None:
            path = resolve_pretrained(self.pretrained)
            name = None if Path(str(self.pretrained)).expanduser().resolve() == path else str(self.pretrained)
            convert = type(self).convert  # read off the class: a plain function stored there must not bind
            self.load_report = load_pretrained(
                self.model, path, convert=convert, new_in_architecture=self.new_in_architecture(), source_name=name
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, 1 + N, D)``, global token first."""
        feats = self.model.forward_features(images)
        if self.layout == 'tokens':
            prefix = getattr(self.model, 'num_prefix_tokens', 1)
            return tokens_to_contract(feats, prefix, getattr(self.model, 'has_class_token', True))
        return _MAP_TO_CONTRACT[self.layout](feats)

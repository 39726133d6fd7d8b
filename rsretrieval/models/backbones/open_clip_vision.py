"""The image tower of an open_clip model (CLIP, RemoteCLIP, GeoRSCLIP, ...) as a backbone."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from rsretrieval.registry import BACKBONES

from ..utils.open_clip_tower import OpenCLIPTowerMixin
from ..utils.open_clip_weights import build_open_clip, normalisation_255


@BACKBONES.register_module()
class OpenCLIPVision(OpenCLIPTowerMixin, BaseModule):
    """open_clip's image tower; ``forward(images)`` returns ``(B, 1 + N, E)`` tokens.

    ``E`` is the CLIP embedding width (``out_channels``), and every token is in
    CLIP's joint space:

    - index 0 is CLIP's image embedding itself (``model.encode_image``: pooled
      and projected, not normalised), so a retriever's global token is CLIP's;
    - ViT (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ...): then the ``N`` patch
      tokens of the last block, after the final LayerNorm and **projected** by
      CLIP's ``proj`` (``(H/p)(W/p)`` of them, row-major);
    - ResNet (``RN50``, ``RN101``, ``RN50x4``, ...): the attention pool computes
      an output for the mean token and each of the ``h*w`` positions of the last
      feature map (``h = H/32``); CLIP keeps the first. The tokens are all
      ``1 + h*w`` outputs: the embedding, then one per position, projected by the
      pool's output projection (already in the joint space).

    The architecture is built with ``open_clip.create_model(arch, pretrained=None)``
    (random weights, nothing downloaded); ``pretrained`` loads a local open_clip
    checkpoint (RemoteCLIP's, GeoRSCLIP's, open_clip's own; see
    :mod:`rsretrieval.models.utils.open_clip_weights`) in :meth:`init_weights`,
    exactly: a checkpoint of another architecture fails in one line naming both.

    Images must have the size the architecture was trained at
    (``image_size``; 224 for ViT-B-32) and CLIP's normalisation
    (``preprocess_cfg``, see ``mean_255``/``std_255`` for the data preprocessor).

    Args:
        arch: open_clip architecture name (``open_clip.list_models()``) or
            ``'local-dir:PATH'``. The activation is part of the name (OpenAI's
            weights use QuickGELU: ``'ViT-B-32-quickgelu'``); a checkpoint does
            not record it.
        pretrained: Local open_clip checkpoint; only its ``visual.*`` tensors are used.
        model_cfg: Overrides merged into open_clip's config of ``arch`` (e.g.
            ``dict(vision_cfg=dict(width=64))``; tests use small widths).
        preprocess_cfg: Overrides of open_clip's preprocessing (``mean``,
            ``std``) for checkpoints trained with another normalisation.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        arch: str = 'ViT-B-32',
        pretrained: str | os.PathLike | None = None,
        model_cfg: dict | None = None,
        preprocess_cfg: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch, self.pretrained = arch, pretrained
        self.tower = 'image'
        visual = build_open_clip(arch, model_cfg, keep='image', preprocess_cfg=preprocess_cfg).visual
        from open_clip.modified_resnet import ModifiedResNet
        from open_clip.transformer import VisionTransformer

        if isinstance(visual, VisionTransformer):
            if visual.attn_pool is not None or visual.pool_type not in ('tok', 'avg'):
                raise ValueError(f'{arch}: ViT towers with attentional pooling are not supported')
            visual.output_tokens = True  # forward returns (pooled and projected, tokens)
            self.kind = 'vit'
        elif isinstance(visual, ModifiedResNet):
            self.kind = 'resnet'
        else:
            raise ValueError(
                f'{arch}: OpenCLIPVision supports open_clip ViT and ResNet towers; this one is {type(visual).__name__}'
            )
        self.visual = visual
        self.visual.is_init = True  # open_clip initialised it; mmengine must not re-run an init on it
        size = visual.image_size
        self.image_size: tuple[int, int] = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        #: open_clip's preprocessing of the architecture: ``size``, ``mean``, ``std``, ``interpolation``...
        self.preprocess_cfg: dict = dict(getattr(visual, 'preprocess_cfg', {}))
        self.mean_255, self.std_255 = normalisation_255(self.preprocess_cfg)

    @property
    def out_channels(self) -> int:
        """Token width ``E`` (the CLIP embedding width)."""
        return self.visual.output_dim

    def tower_module(self) -> nn.Module:
        return self.visual

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> (B, 1 + N, E), CLIP's image embedding first
        if tuple(images.shape[-2:]) != self.image_size:
            h, w = self.image_size
            raise ValueError(
                f'OpenCLIPVision({self.arch}) takes {h}x{w} images (its open_clip image_size), got '
                f"{images.shape[-2]}x{images.shape[-1]}: set the pipelines' size to {h}"
            )
        if self.kind == 'vit':
            return self._vit_tokens(images)
        v = self.visual
        feats = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(images)))))  # (B, C, H/32, W/32)
        return attention_pool_tokens(v.attnpool, feats)

    def _vit_tokens(self, images: torch.Tensor) -> torch.Tensor:
        v = self.visual
        pooled, tokens = v(images)  # (B, E) CLIP's embedding; (B, N, W) patch tokens
        if v.final_ln_after_pool:  # the final norm went to the pooled token only
            tokens = v.ln_post(tokens)
        if v.proj is not None:
            tokens = tokens @ v.proj  # (B, N, E)
        return torch.cat([pooled.unsqueeze(1), tokens.to(pooled.dtype)], dim=1)


def attention_pool_tokens(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every output of open_clip's ``AttentionPool2d`` (CLIP keeps the first).

    The same computation as ``pool(x)``, which returns ``out[:, 0]``.

    Args:
        pool: The ``AttentionPool2d`` of a ``ModifiedResNet``.
        x: ``(B, C, h, w)`` last feature map.

    Returns:
        ``(B, 1 + h*w, E)``: the pooled embedding, then one output per position.
    """
    x = x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3]).permute(2, 0, 1)  # (hw, B, C)
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (1 + hw, B, C)
    x = x + pool.positional_embedding[:, None, :].to(x.dtype)
    x, _ = F.multi_head_attention_forward(
        query=x,
        key=x,
        value=x,
        embed_dim_to_check=x.shape[-1],
        num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        training=pool.training,
        need_weights=False,
    )  # (1 + hw, B, E)
    return x.permute(1, 0, 2)

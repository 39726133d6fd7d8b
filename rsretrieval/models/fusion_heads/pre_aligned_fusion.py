"""PA-MI: the fusion encoder after pre-alignment (paper §III-D, Table V/VI)."""

from __future__ import annotations

import torch
from torch import nn

from rsretrieval.registry import FUSION_HEADS

from .base_fusion_head import BertFusionHead
from .bert_fusion_layers import BertFusionLayers


@FUSION_HEADS.register_module()
class PreAlignedFusion(BertFusionHead):
    """Fusion encoder over pre-aligned features, with ITM and MLM heads.

    The text tokens of the text encoder pass ``num_layers`` BERT layers that
    cross-attend to the image tokens (projected to the text width); the fused
    ``[CLS]`` feeds a 2-way match head (ITM), every fused token an MLM head.
    Retrieval never runs it (inference uses the two encoders); the ITM
    reranker may.

    Args:
        image_width: Width of the image tokens (the model passes the
            backbone's ``out_channels``).
        num_layers: Fusion layers (paper: 6, the second half of BERT-base),
            initialised from the last ``num_layers`` layers of ``pretrained``
            (or from ``layer_start``) when it is given.
        layer_start: First pretrained layer copied (``None``: the last ones).
        itm_pooling: What the match head reads: ``'cls'`` (the fused
            ``[CLS]``; the paper, ALBEF) or ``'mean'`` (the masked mean of the
            fused text tokens). With a single fusion layer the ``[CLS]`` query
            cannot look for caption-specific image content (its query is
            fixed, the per-token matches are computed in the same layer), and
            ITM learned much slower on the demo than with ``'mean'`` or with
            two layers: use ``'mean'`` for one-layer fusion stacks.
        **head_args: ``pretrained``, ``config``, ``with_match_head``,
            ``with_mlm_head`` and ``init_cfg`` of :class:`BertFusionHead`.
    """

    def __init__(
        self,
        image_width: int,
        num_layers: int = 6,
        layer_start: int | None = None,
        itm_pooling: str = 'cls',
        **head_args,
    ) -> None:
        super().__init__(image_width, **head_args)
        if itm_pooling not in ('cls', 'mean'):
            raise ValueError(f"itm_pooling must be 'cls' or 'mean', got {itm_pooling!r}")
        self.itm_pooling = itm_pooling
        self.layers = BertFusionLayers(self.bert_config, num_layers, self.pretrained, layer_start)
        self.itm_head = nn.Linear(self.bert_config.hidden_size, 2) if self.with_match_head else None

    def fuse(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Fused text tokens: ``(B, L, D), (B, L), (B, N, Di) -> (B, L, D)``."""
        return self.layers(text, text_mask, self.image_proj(image))

    def itm_logits(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Match logits of each (image, text) pair: ``(B, 2)``, class 1 = matched."""
        head = self._require('itm_head')
        fused = self.fuse(text, text_mask, image)  # (B, L, D)
        if self.itm_pooling == 'cls':
            return head(fused[:, 0])
        weights = text_mask.unsqueeze(-1).to(fused.dtype)  # (B, L, 1)
        return head((fused * weights).sum(1) / weights.sum(1))

    def mlm_logits(
        self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        head = self._require('mlm_head')
        fused = self.fuse(text, text_mask, image)
        return head(self.select_positions(fused, positions))

"""Std-MI: a two-stream fusion encoder without pre-alignment (paper Table V/VI)."""

from __future__ import annotations

import torch
from torch import nn

from rsretrieval.registry import FUSION_HEADS

from .base_fusion_head import BertFusionHead
from .bert_fusion_layers import BertFusionLayers


@FUSION_HEADS.register_module()
class StandardFusion(BertFusionHead):
    """Two cross-attending stacks and a match head over both outputs.

    The ``num_layers`` fusion layers are split in two stacks: image tokens
    attending to the text, and text tokens attending to the image. The match
    head reads the first token of each stream; retrieval scores come from it
    over every (image, caption) pair, so nothing is pre-aligned and inference
    costs one fusion pass per pair.

    Args:
        image_width: Width of the image tokens (set by the model).
        num_layers: Layers in the two stacks together (even); with
            ``pretrained``, each stack starts from its last layers.
        **head_args: ``pretrained``, ``config``, ``with_match_head``,
            ``with_mlm_head`` and ``init_cfg`` of :class:`BertFusionHead`.
    """

    def __init__(self, image_width: int, num_layers: int = 6, **head_args) -> None:
        if num_layers < 2 or num_layers % 2:
            raise ValueError(
                f'StandardFusion splits its layers in two stacks: num_layers must be even, got {num_layers}'
            )
        super().__init__(image_width, **head_args)
        self.image_stream = BertFusionLayers(self.bert_config, num_layers // 2, self.pretrained)
        self.text_stream = BertFusionLayers(self.bert_config, num_layers // 2, self.pretrained)
        self.itm_head = nn.Linear(2 * self.bert_config.hidden_size, 2) if self.with_match_head else None

    def itm_logits(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        head = self._require('itm_head')
        image = self.image_proj(image)  # (B, N, D)
        image_mask = torch.ones(image.shape[:2], dtype=text_mask.dtype, device=image.device)
        fused_text = self.text_stream(text, text_mask, image)  # (B, L, D)
        fused_image = self.image_stream(image, image_mask, text, text_mask)  # (B, N, D)
        return head(torch.cat([fused_text[:, 0], fused_image[:, 0]], dim=-1))

    def mlm_logits(
        self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        head = self._require('mlm_head')
        fused = self.text_stream(text, text_mask, self.image_proj(image))
        return head(self.select_positions(fused, positions))

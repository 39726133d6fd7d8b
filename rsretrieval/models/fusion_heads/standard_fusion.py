"""Std-MI: a two-stream fusion encoder without pre-alignment (paper Table V/VI)."""

from __future__ import annotations

import os

import torch
from mmengine.model import BaseModule
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertOnlyMLMHead

from rsretrieval.registry import FUSION_HEADS
from rsretrieval.utils import resolve_pretrained

from .bert_fusion_layers import BertFusionLayers


@FUSION_HEADS.register_module()
class StandardFusion(BaseModule):
    """Two cross-attending stacks and a match head over both outputs.

    The ``num_layers`` fusion layers are split in two stacks: image tokens
    attending to the text, and text tokens attending to the image. The match
    head reads the first token of each stream; retrieval scores come from it
    over every (image, caption) pair, so nothing is pre-aligned and inference
    costs one fusion pass per pair.

    Args:
        image_width: Width of the image tokens (set by the model).
        num_layers: Layers in the two stacks together (even).
        pretrained: Local BERT folder or packaged name: configuration and the
            initial weights of both stacks (each from the last layers).
        config: ``BertConfig`` arguments when ``pretrained`` is None.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        image_width: int,
        num_layers: int = 6,
        pretrained: str | os.PathLike | None = None,
        config: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 2 or num_layers % 2:
            raise ValueError(
                f'StandardFusion splits its layers in two stacks: num_layers must be even, got {num_layers}'
            )
        bert_config = (
            BertConfig.from_pretrained(resolve_pretrained(pretrained)) if pretrained else BertConfig(**(config or {}))
        )
        width = bert_config.hidden_size
        self.image_proj = nn.Linear(image_width, width) if image_width != width else nn.Identity()
        self.image_stream = BertFusionLayers(bert_config, num_layers // 2, pretrained)
        self.text_stream = BertFusionLayers(bert_config, num_layers // 2, pretrained)
        self.itm_head = nn.Linear(2 * width, 2)
        self.mlm_head = BertOnlyMLMHead(bert_config)

    def itm_logits(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Match logits of each (image, text) pair: ``(B, 2)``, class 1 = matched."""
        image = self.image_proj(image)  # (B, N, D)
        image_mask = torch.ones(image.shape[:2], dtype=text_mask.dtype, device=image.device)
        fused_text = self.text_stream(text, text_mask, image)  # (B, L, D)
        fused_image = self.image_stream(image, image_mask, text, text_mask)  # (B, N, D)
        return self.itm_head(torch.cat([fused_text[:, 0], fused_image[:, 0]], dim=-1))

    def mlm_logits(
        self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Vocabulary logits from the text stream: ``(B, L, V)`` or ``(M, V)`` at ``positions``."""
        fused = self.text_stream(text, text_mask, self.image_proj(image))
        return self.mlm_head(fused if positions is None else fused[positions])

    def tie_word_embeddings(self, embeddings: nn.Embedding) -> None:
        """Share the MLM decoder weights with the text encoder's word embeddings."""
        self.mlm_head.predictions.decoder.weight = embeddings.weight

"""The two encoders and projections that every embedding retriever shares."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import BACKBONES, TEXT_ENCODERS

from .base import BaseRetriever


class TwoTowerRetriever(BaseRetriever):
    """Image backbone + text encoder, each projected into a joint space.

    The image embedding is the projected global token (index 0 of the
    backbone output), the text embedding the projected ``[CLS]`` token (or
    the masked mean of the text tokens). Subclasses add their losses.

    Args:
        backbone: ``BACKBONES`` config.
        text_encoder: ``TEXT_ENCODERS`` config.
        embed_dim: Width of the joint embedding space.
        text_pooling: ``'cls'`` (the paper, ALBEF) or ``'mean'`` (masked mean
            of the text tokens; better for encoders pretrained with mean
            pooling, such as MiniLM sentence embeddings).
        data_preprocessor: Data preprocessor config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        backbone: dict,
        text_encoder: dict,
        embed_dim: int = 256,
        text_pooling: str = 'cls',
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(type='RetrievalDataPreprocessor'), init_cfg=init_cfg
        )
        if text_pooling not in ('cls', 'mean'):
            raise ValueError(f"text_pooling must be 'cls' or 'mean', got {text_pooling!r}")
        self.text_pooling = text_pooling
        self.backbone = BACKBONES.build(backbone)
        self.text_encoder = TEXT_ENCODERS.build(text_encoder)
        self.image_proj = nn.Linear(self.backbone.out_channels, embed_dim)
        self.text_proj = nn.Linear(self.text_encoder.out_channels, embed_dim)

    def image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone tokens ``(B, 1 + N, Di)`` and the image embedding ``(B, E)``."""
        tokens = self.backbone(images)
        return tokens, F.normalize(self.image_proj(tokens[:, 0]), dim=-1)

    def text_tokens(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-encoder tokens ``(B, L, D)`` and the text embedding ``(B, E)``."""
        tokens = self.text_encoder(input_ids, mask)
        return tokens, F.normalize(self.text_proj(self.pool_text(tokens, mask)), dim=-1)

    def pool_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` tokens -> ``(B, D)``: the ``[CLS]`` token or the masked mean."""
        if self.text_pooling == 'cls':
            return tokens[:, 0]
        weights = mask.unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
        return (tokens * weights).sum(1) / weights.sum(1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_tokens(images)[1]

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        batch = self.text_encoder.tokenize(captions, device=self.image_proj.weight.device)
        return self.text_tokens(batch['input_ids'], batch['attention_mask'])[1]

"""Two-tower retrieval: image backbone and text encoder aligned by ITC."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import BACKBONES, LOSSES, MODELS, TEXT_ENCODERS

from .base import BaseRetriever


@MODELS.register_module()
class DualEncoderRetriever(BaseRetriever):
    """Image backbone + text encoder + linear projections, trained with ITC.

    The image embedding is the projected global token (index 0 of the
    backbone output), the text embedding the projected ``[CLS]`` token.

    Args:
        backbone: ``BACKBONES`` config.
        text_encoder: ``TEXT_ENCODERS`` config.
        embed_dim: Width of the joint embedding space.
        text_pooling: ``'cls'`` (the paper, ALBEF) or ``'mean'`` (masked mean
            of the text tokens; better for encoders pretrained with mean
            pooling, such as MiniLM sentence embeddings).
        loss: ``LOSSES`` config of the contrastive loss.
        data_preprocessor: Data preprocessor config.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        backbone: dict,
        text_encoder: dict,
        embed_dim: int = 256,
        text_pooling: str = 'cls',
        loss: dict | None = None,
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
        self.itc_loss = LOSSES.build(loss or dict(type='ITCLoss'))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(images)  # (B, 1 + N, D)
        return F.normalize(self.image_proj(tokens[:, 0]), dim=-1)  # (B, E)

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        batch = self.text_encoder.tokenize(captions, device=self.image_proj.weight.device)
        tokens = self.text_encoder(**batch)  # (B, L, D)
        if self.text_pooling == 'cls':
            pooled = tokens[:, 0]
        else:
            mask = batch['attention_mask'].unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
            pooled = (tokens * mask).sum(1) / mask.sum(1)
        return F.normalize(self.text_proj(pooled), dim=-1)  # (B, E)

    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        img_emb = self.encode_image(inputs)
        txt_emb = self.encode_text(data_samples['caption'])
        return dict(loss_itc=self.itc_loss(img_emb, txt_emb, data_samples['image_id']))

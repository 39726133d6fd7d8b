"""Two-tower retrieval: image backbone and text encoder aligned by ITC."""

from __future__ import annotations

import torch

from rsretrieval.registry import LOSSES, MODELS

from .two_tower import TwoTowerRetriever


@MODELS.register_module()
class DualEncoderRetriever(TwoTowerRetriever):
    """Image backbone + text encoder + linear projections, trained with ITC.

    Args:
        backbone: ``BACKBONES`` config.
        text_encoder: ``TEXT_ENCODERS`` config.
        embed_dim: Width of the joint embedding space.
        text_pooling: ``'cls'`` or ``'mean'`` (see :class:`TwoTowerRetriever`).
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
        super().__init__(backbone, text_encoder, embed_dim, text_pooling, data_preprocessor, init_cfg)
        self.itc_loss = LOSSES.build(loss or dict(type='ITCLoss'))

    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict[str, torch.Tensor]:
        img_emb = self.encode_image(inputs)
        txt_emb = self.encode_text(data_samples['caption'])
        return dict(loss_itc=self.itc_loss(img_emb, txt_emb, data_samples['image_id']))

"""The ITC-only baseline: two towers trained with the in-batch contrastive loss alone."""

from __future__ import annotations

import torch

from rsretrieval.registry import LOSSES, MODELS

from .joint_embedding import JointEmbeddingRetriever


@MODELS.register_module()
class DualEncoderRetriever(JointEmbeddingRetriever):
    """The ITC-only baseline: image backbone + text encoder + linear projections,
    trained with in-batch ITC and nothing else (no queue, no momentum encoders,
    no triplet, ITM or MLM; for those see :class:`~.cmpagl.CMPAGL`).

    Args:
        loss: ``LOSSES`` config of the contrastive loss (default ``ITCLoss``).
        **others: ``backbone``, ``text_encoder``, ``embed_dim``, ``text_pooling``,
            ``data_preprocessor`` and ``init_cfg``, as :class:`JointEmbeddingRetriever`.
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

"""Optimized triplet loss (paper Eq. 19)."""

from __future__ import annotations

import torch
from torch import nn

from rsretrieval.registry import LOSSES

from .fp32 import fp32_forward


@LOSSES.register_module()
class OptimizedTripletLoss(nn.Module):
    """Bidirectional hinge triplet loss plus an intra-class term.

    With ``S`` the in-batch cosine similarity of images (rows) and texts
    (columns) and ``pos`` the pairs that share an image::

        L = sum_i sum_j [a - S_ii + S_ij]+  +  sum_i sum_j [a - S_ii + S_ji]+  +  w * sum_i (1 - S_ii)

    where ``j`` runs over the negatives of ``i`` (pairs of another image). The
    last term pulls matching pairs towards similarity 1 (the paper's
    "optimized" part); ``intra_weight=0`` gives the classic triplet loss.

    Args:
        margin: The margin ``a``.
        intra_weight: Weight ``w`` of the intra-class term (paper: 1).
        hardest: Use only the hardest negative of each anchor (VSE++) instead
            of the sum over all negatives.
        reduction: ``'sum'`` is Eq. 19 as written (and GaLR's code, which
            returns ``cost_s.sum() + cost_im.sum()``); ``'mean'`` divides it by
            the batch size, keeping the loss on the scale of the others
            whatever the batch.
        loss_weight: Multiplier of the returned loss.
    """

    def __init__(
        self,
        margin: float = 0.2,
        intra_weight: float = 1.0,
        hardest: bool = False,
        reduction: str = 'sum',
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.margin, self.intra_weight, self.hardest = margin, intra_weight, hardest
        self.reduction, self.loss_weight = reduction, loss_weight

    @fp32_forward
    def forward(self, img_emb: torch.Tensor, txt_emb: torch.Tensor, image_ids: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            img_emb: ``(B, E)`` L2-normalised image embeddings (pair ``i``).
            txt_emb: ``(B, E)`` L2-normalised text embeddings (pair ``i``).
            image_ids: ``(B,)`` image id of each pair; same-image pairs are
                never negatives.
        """
        sims = img_emb.float() @ txt_emb.float().T  # (B, B)
        pos_sim = sims.diag()  # (B,)
        negative = image_ids[:, None] != image_ids[None, :]  # (B, B)
        cost_i2t = (self.margin - pos_sim[:, None] + sims).clamp(min=0) * negative  # anchor image i
        cost_t2i = (self.margin - pos_sim[None, :] + sims).clamp(min=0) * negative  # anchor text j
        if self.hardest:
            hinge = cost_i2t.max(dim=1).values.sum() + cost_t2i.max(dim=0).values.sum()
        else:
            hinge = cost_i2t.sum() + cost_t2i.sum()
        loss = hinge + self.intra_weight * (1 - pos_sim).sum()
        if self.reduction == 'mean':
            loss = loss / sims.shape[0]
        return self.loss_weight * loss

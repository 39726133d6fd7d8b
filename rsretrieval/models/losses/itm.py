"""Image-text matching loss with in-batch hard negatives (paper Eq. 21, ALBEF)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import LOSSES


@LOSSES.register_module()
class ITMLoss(nn.Module):
    """Cross-entropy of a 2-way match head over positives and hard negatives.

    :meth:`sample_negatives` draws, for every image, one negative caption and,
    for every caption, one negative image from the softmaxed in-batch
    similarities, with every pair of the same image excluded (weight 0), so a
    positive is never sampled as a negative.

    Args:
        loss_weight: Multiplier of the returned loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @staticmethod
    def sample_negatives(
        sims: torch.Tensor, image_ids: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard negatives from the batch.

        Args:
            sims: ``(B, B)`` image-to-text similarity logits of the batch (rows
                images, columns captions), detached.
            image_ids: ``(B,)`` image id of each pair.
            generator: Optional RNG for reproducible sampling.

        Returns:
            ``(neg_txt_for_img, neg_img_for_txt)``: ``(B,)`` indices into the
            batch. A batch in which some pair has no negative (all pairs share
            one image) raises ValueError.
        """
        same = image_ids[:, None] == image_ids[None, :]
        if bool(same.all(dim=1).any()):
            raise ValueError('ITM needs a negative for every pair: the batch holds pairs of a single image')
        weights_i2t = F.softmax(sims.float(), dim=1).masked_fill(same, 0)
        weights_t2i = F.softmax(sims.float().T, dim=1).masked_fill(same, 0)
        neg_txt = torch.multinomial(weights_i2t, 1, generator=generator).squeeze(1)
        neg_img = torch.multinomial(weights_t2i, 1, generator=generator).squeeze(1)
        return neg_txt, neg_img

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(M, 2)`` from the match head; ``labels`` ``(M,)``, 1 = matched."""
        return self.loss_weight * F.cross_entropy(logits.float(), labels)

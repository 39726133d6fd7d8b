"""Image-text matching loss with in-batch hard negatives (paper Eq. 21, ALBEF)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import LOSSES

from .fp32 import fp32_forward


@LOSSES.register_module()
class ITMLoss(nn.Module):
    """Cross-entropy of a 2-way match head over positives and hard negatives.

    :meth:`sample_negatives` draws, for every image, one negative caption and,
    for every caption, one negative image from the softmaxed in-batch
    similarities (ALBEF). Every pair of the same image, and every pair whose
    caption is identical to the anchor's, gets weight 0: a positive, or a pair
    that the text cannot tell apart from one, is never sampled as a negative
    (UCM-Captions repeats captions verbatim across images of a class).

    Args:
        hard_fraction: Probability that a negative is drawn from the
            similarity distribution (hard); otherwise it is drawn uniformly
            from the valid negatives. 1.0 is the paper's and ALBEF's sampling.
            Lower values help a fusion encoder trained from scratch on small
            data, where the hardest in-batch negatives differ from the
            positive only in details it cannot see yet and the match head
            otherwise stays at the prior (measured on the demo: loss 0.637 =
            the prior of 1 positive in 3 after 4 epochs with 1.0).
        loss_weight: Multiplier of the returned loss.
    """

    def __init__(self, hard_fraction: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= hard_fraction <= 1.0:
            raise ValueError(f'hard_fraction must be in [0, 1], got {hard_fraction}')
        self.hard_fraction = hard_fraction
        self.loss_weight = loss_weight

    def sample_negatives(
        self,
        sims: torch.Tensor,
        image_ids: torch.Tensor,
        generator: torch.Generator | None = None,
        same_text: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negatives from the batch.

        Args:
            sims: ``(B, B)`` image-to-text similarity logits of the batch (rows
                images, columns captions), detached.
            image_ids: ``(B,)`` image id of each pair.
            generator: Optional RNG for reproducible sampling.
            same_text: Optional ``(B, B)`` bool, True where captions ``i`` and
                ``j`` are identical; such pairs are excluded like same-image ones.

        Returns:
            ``(neg_txt_for_img, neg_img_for_txt)``: ``(B,)`` indices into the
            batch. A batch in which some pair has no valid negative (all pairs
            share one image or one caption) raises ValueError.
        """
        invalid = image_ids[:, None] == image_ids[None, :]  # (B, B)
        if same_text is not None:
            invalid = invalid | same_text
        neg_txt = self.draw(sims, invalid, generator)
        neg_img = self.draw(sims.T, invalid.T, generator)
        return neg_txt, neg_img

    @staticmethod
    def check_negatives(invalid: torch.Tensor) -> None:
        """Raise ValueError when a row of the ``(B, M)`` bool ``invalid`` has no valid
        negative. On a GPU tensor this waits for the device: callers that know the
        ids on the host check a host copy instead."""
        if bool(invalid.all(dim=1).any()):
            raise ValueError(
                f'ITM needs a negative for every pair: the batch of {invalid.shape[0]} pairs holds a pair whose '
                'every other pair shows the same image or has the same caption (a last batch of one pair? set '
                'drop_last=True in the train_dataloader)'
            )

    def draw(
        self,
        logits: torch.Tensor,
        invalid: torch.Tensor,
        generator: torch.Generator | None = None,
        check: bool = True,
    ) -> torch.Tensor:
        """One negative per row: ``(B, M)`` similarity logits of each query to ``M``
        candidates and ``(B, M)`` bool ``invalid`` (True: never a negative) -> ``(B,)``
        candidate indices (the distributed model passes candidates of every rank).

        ``check=False`` skips :meth:`check_negatives` (the caller has checked a
        host copy); drawing itself never synchronises with the device."""
        if check:
            self.check_negatives(invalid)
        valid = (~invalid).float()
        uniform = valid / valid.sum(1, keepdim=True)
        # softmax, then renormalised over the valid negatives; a floor keeps a
        # row whose valid entries all underflow to 0 samplable (uniform then)
        hard = F.softmax(logits.float(), dim=1) * valid + 1e-12 * valid
        hard = hard / hard.sum(1, keepdim=True)
        p = self.hard_fraction
        return torch.multinomial(p * hard + (1 - p) * uniform, 1, generator=generator).squeeze(1)

    @fp32_forward
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(M, 2)`` from the match head; ``labels`` ``(M,)``, 1 = matched."""
        return self.loss_weight * F.cross_entropy(logits.float(), labels)

"""Masked language modelling conditioned on the image (paper Eq. 20)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import LOSSES

from .fp32 import fp32_forward


@LOSSES.register_module()
class MLMLoss(nn.Module):
    """BERT masking (15 %, then 80 % [MASK] / 10 % random token / 10 % kept) and CE.

    Special tokens ([CLS], [SEP]) and padding are never masked; the loss is
    taken over masked positions only.

    Args:
        mask_prob: Fraction of eligible tokens chosen for prediction.
        loss_weight: Multiplier of the returned loss.
    """

    def __init__(self, mask_prob: float = 0.15, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0 < mask_prob < 1:
            raise ValueError(f'mask_prob must be in (0, 1), got {mask_prob}')
        self.mask_prob, self.loss_weight = mask_prob, loss_weight

    def mask_tokens(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask_token_id: int,
        vocab_size: int,
        special_ids: tuple[int, ...],
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask a batch of token ids.

        Args:
            input_ids: ``(B, L)`` token ids.
            attention_mask: ``(B, L)``, 0 on padding.
            mask_token_id: Id of ``[MASK]``.
            vocab_size: Random replacements are drawn from ``[0, vocab_size)``.
            special_ids: Ids never masked (``[CLS]``, ``[SEP]``, ``[PAD]``).
            generator: Optional RNG.

        Returns:
            ``(masked_ids, labels)``: labels hold the original id at masked
            positions and -100 elsewhere.
        """
        device = input_ids.device
        draw_on = 'cpu' if generator is not None else device  # a CPU generator draws on the CPU

        def rand(shape):
            return torch.rand(shape, generator=generator, device=draw_on).to(device)

        eligible = attention_mask.bool()
        for sid in special_ids:
            eligible &= input_ids != sid
        chosen = (rand(input_ids.shape) < self.mask_prob) & eligible
        labels = input_ids.masked_fill(~chosen, -100)
        roll = rand(input_ids.shape)
        to_mask = chosen & (roll < 0.8)
        to_random = chosen & (roll >= 0.8) & (roll < 0.9)
        random_ids = torch.randint(
            vocab_size, input_ids.shape, generator=generator, device='cpu' if generator else device
        )
        masked = input_ids.masked_fill(to_mask, mask_token_id)
        masked = torch.where(to_random, random_ids.to(device), masked)
        return masked, labels

    @fp32_forward
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(..., V)``; ``labels`` ``(...)`` with -100 where not predicted.

        Either every position (``(B, L, V)`` and ``(B, L)``) or only the masked
        ones (``(M, V)`` and ``(M,)``).
        """
        logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        # mean over the predicted tokens without asking the device how many there are
        # (no host synchronisation); a batch with nothing masked gives a zero that keeps the graph
        total = F.cross_entropy(logits.float(), labels, ignore_index=-100, reduction='sum')
        count = (labels != -100).sum().clamp(min=1)
        return self.loss_weight * total / count

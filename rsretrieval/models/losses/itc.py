"""Image-text contrastive loss (paper Eq. 18), in-batch form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import LOSSES


@LOSSES.register_module()
class ITCLoss(nn.Module):
    """Symmetric InfoNCE between image and text embeddings of a batch.

    Captions of the same image are all positives: the target of a row is
    spread uniformly over the columns that share its ``image_id``. The
    temperature is learnable (ALBEF), clamped to ``temp_range``.

    Args:
        temperature: Initial temperature.
        learnable_temperature: Optimise the temperature.
        temp_range: Clamp range of the temperature.
        loss_weight: Multiplier of the returned loss.
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learnable_temperature: bool = True,
        temp_range: tuple[float, float] = (0.001, 0.5),
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        temp = torch.tensor(float(temperature))
        if learnable_temperature:
            self.temp = nn.Parameter(temp)
        else:
            self.register_buffer('temp', temp)
        self.temp_range = temp_range
        self.loss_weight = loss_weight

    def forward(self, img_emb: torch.Tensor, txt_emb: torch.Tensor, image_ids: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            img_emb: ``(B, E)`` L2-normalised image embeddings.
            txt_emb: ``(B, E)`` L2-normalised text embeddings.
            image_ids: ``(B,)`` image id of each pair.

        Returns:
            Scalar loss (fp32).
        """
        temp = self.temp.clamp(*self.temp_range)
        logits = img_emb.float() @ txt_emb.float().T / temp  # (B, B)
        positives = (image_ids[:, None] == image_ids[None, :]).float()
        targets = positives / positives.sum(1, keepdim=True)
        loss_i2t = -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()
        loss_t2i = -(F.log_softmax(logits.T, dim=1) * targets).sum(1).mean()
        return self.loss_weight * (loss_i2t + loss_t2i) / 2

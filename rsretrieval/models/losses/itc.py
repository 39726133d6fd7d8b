"""Image-text contrastive loss (paper Eq. 18), in-batch form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsretrieval.registry import LOSSES

from .fp32 import fp32_forward


@LOSSES.register_module()
class ITCLoss(nn.Module):
    """Symmetric InfoNCE between image and text embeddings (paper Eq. 18).

    Queries are the batch's embeddings; keys are the batch itself or, with
    momentum encoders, the momentum batch followed by the feature queue
    (MoCo/ALBEF). Every key of the query's image is a positive: the target is
    spread uniformly over them (captions of one image are not negatives of
    each other). Optional momentum distillation mixes in the momentum model's
    softmaxed similarities. The temperature is learnable, clamped to
    ``temp_range``.

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
        if not temp_range[0] <= temperature <= temp_range[1]:
            raise ValueError(f'temperature {temperature} is outside temp_range {temp_range}')
        temp = torch.tensor(float(temperature))
        if learnable_temperature:
            self.temp = nn.Parameter(temp)
        else:
            self.register_buffer('temp', temp)
        self.temp_range = temp_range
        self.loss_weight = loss_weight

    @fp32_forward
    def forward(
        self,
        img_emb: torch.Tensor,
        txt_emb: torch.Tensor,
        image_ids: torch.Tensor,
        img_keys: torch.Tensor | None = None,
        txt_keys: torch.Tensor | None = None,
        key_ids: torch.Tensor | None = None,
        img_emb_m: torch.Tensor | None = None,
        txt_emb_m: torch.Tensor | None = None,
        alpha: float = 0.0,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            img_emb: ``(B, E)`` L2-normalised image embeddings (queries).
            txt_emb: ``(B, E)`` L2-normalised text embeddings (queries).
            image_ids: ``(B,)`` image id of each pair.
            img_keys: ``(K, E)`` image embeddings the text queries are ranked
                against (momentum batch + queue); default: ``img_emb``.
            txt_keys: ``(K, E)`` text keys; default: ``txt_emb``.
            key_ids: ``(K,)`` image ids of the keys; every key of the query's
                image is a positive. Default: ``image_ids``.
            img_emb_m: ``(B, E)`` momentum image embeddings, for distillation.
            txt_emb_m: ``(B, E)`` momentum text embeddings, for distillation.
            alpha: Weight of the momentum model's soft targets (ALBEF: 0.4);
                0 disables distillation.

        Returns:
            Scalar loss (fp32).
        """
        img_keys = img_emb if img_keys is None else img_keys
        txt_keys = txt_emb if txt_keys is None else txt_keys
        key_ids = image_ids if key_ids is None else key_ids
        temp = self.temp.clamp(*self.temp_range)
        positives = (image_ids[:, None] == key_ids[None, :]).float()  # (B, K)
        targets = positives / positives.sum(1, keepdim=True)
        targets_i2t = targets_t2i = targets
        if alpha > 0:
            if img_emb_m is None or txt_emb_m is None:
                raise ValueError('distillation (alpha > 0) needs the momentum embeddings')
            with torch.no_grad():
                soft_i2t = F.softmax(img_emb_m.float() @ txt_keys.float().T / temp, dim=1)
                soft_t2i = F.softmax(txt_emb_m.float() @ img_keys.float().T / temp, dim=1)
            targets_i2t = alpha * soft_i2t + (1 - alpha) * targets
            targets_t2i = alpha * soft_t2i + (1 - alpha) * targets
        logits_i2t = img_emb.float() @ txt_keys.float().T / temp  # (B, K)
        logits_t2i = txt_emb.float() @ img_keys.float().T / temp  # (B, K)
        loss_i2t = -(F.log_softmax(logits_i2t, dim=1) * targets_i2t).sum(1).mean()
        loss_t2i = -(F.log_softmax(logits_t2i, dim=1) * targets_t2i).sum(1).mean()
        return self.loss_weight * (loss_i2t + loss_t2i) / 2

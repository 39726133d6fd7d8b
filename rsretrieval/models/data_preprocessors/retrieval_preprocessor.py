"""Batch preparation: image normalisation on the device, ids as tensors."""

from __future__ import annotations

import torch
from mmengine.model import ImgDataPreprocessor

from rsretrieval.registry import MODELS


@MODELS.register_module()
class RetrievalDataPreprocessor(ImgDataPreprocessor):
    """Stack and normalise images; turn the integer sample fields into tensors.

    Input (from ``pseudo_collate``): ``inputs`` = list of ``(3, H, W)`` uint8
    RGB tensors, ``data_samples`` = dict of lists (``caption``, ``image_id``,
    ``caption_id``, ``sample_idx``). Output: ``inputs`` ``(B, 3, H, W)`` float,
    ``data_samples`` with the integer lists as ``(B,)`` int64 tensors on the
    model's device, and the same tensors on the CPU under ``ids_on_cpu`` (for
    checks that must not wait for the device); captions stay strings (the model
    tokenises them). Copies to a GPU do not wait for it (``non_blocking``; the
    loaders pin their batches).

    Args:
        mean: Per-channel mean (RGB, 0-255 scale); ImageNet by default.
        std: Per-channel std (RGB, 0-255 scale).
        **kwargs: As for mmengine's ``ImgDataPreprocessor``.
    """

    INT_KEYS = ('image_id', 'caption_id', 'sample_idx')

    def __init__(
        self,
        mean: tuple[float, float, float] = (123.675, 116.28, 103.53),
        std: tuple[float, float, float] = (58.395, 57.12, 57.375),
        **kwargs,
    ) -> None:
        kwargs.setdefault('non_blocking', True)
        super().__init__(mean=mean, std=std, **kwargs)

    def forward(self, data: dict, training: bool = False) -> dict:
        out = super().forward(data, training)
        samples = dict(out.get('data_samples') or {})
        ids_on_cpu = {}
        for key in self.INT_KEYS:
            if key in samples:
                values = samples[key]
                on_cpu = values.cpu() if isinstance(values, torch.Tensor) else torch.tensor(values, dtype=torch.long)
                ids_on_cpu[key] = on_cpu
                samples[key] = on_cpu.to(self.device, non_blocking=True)
        samples['ids_on_cpu'] = ids_on_cpu
        out['data_samples'] = samples
        return out

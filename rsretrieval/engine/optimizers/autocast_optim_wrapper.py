"""Mixed precision by autocast on any device (bf16 needs no loss scaling)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from rsretrieval.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward pass under ``torch.autocast``.

    mmengine's ``AmpOptimWrapper`` requires CUDA and targets fp16 with a loss
    scaler. bf16 has fp32's exponent range, so no scaler is needed, and autocast
    works on CPU and GPU alike: this wrapper serves ``tools/train.py --amp``.
    Parameters, gradients and optimizer state stay fp32; losses are computed
    in fp32 by the loss modules.

    Args:
        dtype: ``'bfloat16'`` (default) or ``'float16'`` (CUDA only; prefer
            mmengine's ``AmpOptimWrapper`` there for its loss scaler).
        **kwargs: As for ``OptimWrapper``.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        self.cast_dtype = getattr(torch, dtype)

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        device_type = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device_type, dtype=self.cast_dtype):
            yield

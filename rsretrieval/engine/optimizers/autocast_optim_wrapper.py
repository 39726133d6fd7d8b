"""Mixed precision by autocast on any device, chosen by the hardware unless told otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from rsretrieval.registry import OPTIM_WRAPPERS
from rsretrieval.utils.precision import PRECISIONS, PrecisionChoice, log_precision, resolve_precision


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward pass under ``torch.autocast``.

    mmengine's ``AmpOptimWrapper`` requires CUDA and targets fp16 with a loss
    scaler. bf16 has fp32's exponent range, so no scaler is needed, and autocast
    works on CPU and GPU alike: this wrapper serves ``tools/train.py --amp``.
    Parameters, gradients and optimizer state stay fp32; losses are computed
    in fp32 by the loss modules.

    The precision is decided at the first step, on the model's device, by
    :func:`~rsretrieval.utils.precision.resolve_precision`, and logged with
    its reason.

    Args:
        dtype: ``'auto'`` (default: bf16 where the device runs it natively, a
            CUDA GPU of compute capability >= 8.0 or a CPU with AVX-512 BF16
            or AMX; fp32 elsewhere), ``'bfloat16'`` (always; a warning where it
            is emulated, which is many times slower), ``'float16'`` (CUDA; prefer
            mmengine's ``AmpOptimWrapper`` there for its loss scaler) or
            ``'float32'`` (no autocast).
        **kwargs: As for ``OptimWrapper``.
    """

    def __init__(self, dtype: str = 'auto', **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in PRECISIONS:
            raise ValueError(f'dtype must be one of {PRECISIONS}, got {dtype!r}')
        self.requested_dtype = dtype
        self.precision: PrecisionChoice | None = None

    def resolve(self, device: torch.device) -> PrecisionChoice:
        """The precision on ``device`` (decided and logged once)."""
        if self.precision is None:
            self.precision = resolve_precision(self.requested_dtype, device)
            log_precision(self.precision, device, 'training')
        return self.precision

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        device = next(model.parameters()).device
        choice = self.resolve(device)
        cast = (
            torch.autocast(device_type=device.type, dtype=choice.dtype)
            if choice.dtype is not None
            else contextlib.nullcontext()
        )
        with super().optim_context(model), cast:
            yield

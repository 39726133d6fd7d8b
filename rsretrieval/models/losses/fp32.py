"""Losses computed in float32 whatever the surrounding autocast."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import torch


def _to_fp32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def fp32_forward(forward: Callable) -> Callable:
    """Run a loss's ``forward`` with autocast off and its floating inputs in float32.

    Under ``torch.autocast`` a matmul or softmax runs in bf16/fp16 even on
    float32 inputs; a loss's logits, log-softmax and reductions need float32
    (bf16 keeps 8 bits of mantissa: the logits of a contrastive loss at
    temperature 0.07 would be rounded by ~0.5 %). Gradients still flow to the
    low-precision inputs through the casts.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        args = tuple(_to_fp32(a) for a in args)
        kwargs = {k: _to_fp32(v) for k, v in kwargs.items()}
        with contextlib.ExitStack() as stack:
            for device_type in ('cpu', 'cuda'):
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            return forward(self, *args, **kwargs)

    return wrapper

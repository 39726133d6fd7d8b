"""Checkpoint content that ``torch.load(weights_only=True)`` accepts.

mmengine 0.10.7 saves its ``MessageHub`` history as ``HistoryBuffer`` objects
holding numpy arrays (and, through ``__getstate__``, references to the class's
statistic functions). Under ``weights_only=True`` (torch's default since 2.6)
those need numpy reconstruction functions and ``builtins.getattr`` on the
allow-list, which would defeat the protection. Instead, :func:`to_safe_types`
turns that content into tensors, numbers and plain dicts before a checkpoint
is written (see ``SafeCheckpointHook``) and :func:`restore_history_buffers`
rebuilds the objects after loading: torch's default allow-list suffices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Marks a ``HistoryBuffer`` stored as a plain dict.
HISTORY_BUFFER_TAG = '__mmengine_history_buffer__'


def to_safe_types(obj: Any) -> Any:
    """Return ``obj`` rebuilt from tensors, numbers, strings and containers only.

    numpy arrays become tensors, numpy scalars Python numbers, and
    ``HistoryBuffer`` objects tagged dicts (see :func:`restore_history_buffers`).
    """
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {
            HISTORY_BUFFER_TAG: True,
            'log_history': torch.from_numpy(np.asarray(log)),
            'count_history': torch.from_numpy(np.asarray(count)),
            'max_length': int(obj.max_length),
        }
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return type(obj)((k, to_safe_types(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(to_safe_types(v) for v in obj)
    return obj


def restore_history_buffers(obj: Any) -> Any:
    """Inverse of :func:`to_safe_types` for ``HistoryBuffer``: rebuild the objects."""
    if isinstance(obj, Mapping):
        if obj.get(HISTORY_BUFFER_TAG):
            return HistoryBuffer(
                obj['log_history'].numpy().tolist(), obj['count_history'].numpy().tolist(), obj['max_length']
            )
        return type(obj)((k, restore_history_buffers(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(restore_history_buffers(v) for v in obj)
    return obj

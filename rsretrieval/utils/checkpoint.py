"""Checkpoint I/O that keeps ``torch.load(weights_only=True)``.

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

import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, MMLogger

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


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """Load a checkpoint safely: ``.safetensors`` or ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: The file does not exist.
        pickle.UnpicklingError: The file holds objects outside the allow-list;
            the message names the file and the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f'{path}: refused to load objects outside the allow-list (tensors, Python '
            'containers, numbers and strings). Loading stays weights_only=True; convert '
            f'the file to plain tensors. Detail: {err}'
        ) from err


def extract_state_dict(checkpoint: Mapping, prefix: str = '') -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint, optionally the sub-tree under ``prefix``.

    Accepts a raw state dict or one nested under ``state_dict`` / ``model`` /
    ``module`` (mmengine, timm and plain PyTorch conventions).
    """
    state = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def load_weights(
    module: torch.nn.Module,
    path: str | os.PathLike,
    prefix: str = '',
    strict: bool = False,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> tuple[list[str], list[str]]:
    """Load local weights into ``module`` and log the missing/unexpected keys.

    Args:
        module: Target module.
        path: ``.pth``/``.pt``/``.bin`` (loaded with ``weights_only=True``) or
            ``.safetensors`` file.
        prefix: Only keys starting with it are used, with it removed.
        strict: Raise if any key is missing or unexpected.
        convert: Maps the checkpoint's keys onto the module's (e.g. timm Swin
            onto Gswin); applied after ``prefix``.

    Returns:
        ``(missing_keys, unexpected_keys)``.
    """
    state = extract_state_dict(load_checkpoint_file(path), prefix)
    if convert is not None:
        state = convert(state)
    own = module.state_dict()
    shape_mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in shape_mismatch:
        state.pop(key)
    result = module.load_state_dict(state, strict=False)
    missing = list(result.missing_keys) + shape_mismatch
    unexpected = list(result.unexpected_keys)
    logger = MMLogger.get_current_instance()
    logger.info(
        f'Loaded {len(state) - len(unexpected)} tensors from {path} into '
        f'{type(module).__name__}; missing {len(missing)}, unexpected {len(unexpected)}'
        + (f', shape mismatch {shape_mismatch}' if shape_mismatch else '')
    )
    if missing:
        logger.info(f'Missing keys: {missing}')
    if unexpected:
        logger.info(f'Unexpected keys: {unexpected}')
    if strict and (missing or unexpected):
        raise RuntimeError(f'{path}: missing keys {missing}, unexpected keys {unexpected}')
    return missing, unexpected

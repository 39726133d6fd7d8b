"""Reading a checkpoint file safely: ``.safetensors`` or ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from .checkpoint_errors import CheckpointError, UnsafeCheckpointError

_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def load_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """Load a checkpoint safely: ``.safetensors`` or ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file holds objects outside the allow-list
            (a ``pickle.UnpicklingError``); the message names the file, the
            object, and what to do instead of widening the allow-list.
        CheckpointError: The file is cut short or not a checkpoint.
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
        raise _unsafe_error(path, err) from err
    except RuntimeError as err:
        text = str(err)
        if 'central directory' in text or 'zip archive' in text:
            raise CheckpointError(
                f'{path}: the checkpoint is incomplete (its zip archive is cut short, e.g. by a crash while it was '
                'saved); use an earlier checkpoint'
            ) from err
        raise


def _unsafe_error(path: Path, err: pickle.UnpicklingError) -> UnsafeCheckpointError:
    """One line naming the file, the refused object, and what to do instead of widening the allow-list."""
    detail = _ANSI.sub('', str(err))
    found = re.search(r'GLOBAL ([\w.]+)', detail) or re.search(r'Unsupported global: ([\w.]+)', detail)
    what = f' ({found.group(1)})' if found else ''
    return UnsafeCheckpointError(
        f'{path}: refused to load objects outside the allow-list{what}: loading stays weights_only=True, '
        'which only reads tensors, Python containers, numbers and strings. If you trust the file, re-save '
        'its weights as plain tensors in a separate process '
        "(torch.save({'state_dict': sd}, 'clean.pth'), see docs/reliability.md); do not widen the "
        'allow-list with add_safe_globals.'
    )


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

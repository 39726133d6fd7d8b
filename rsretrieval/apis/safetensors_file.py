"""Writing a state dict as a safetensors file, tied (shared) tensors included."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch


def save_safetensors(state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Save every key of ``state``, tied tensors included.

    safetensors refuses shared storage: tied tensors are cloned, so that a
    strict load finds each name.

    Args:
        state: The tensors by name.
        path: The file to write.
        metadata: The file's string metadata (e.g. ``{'format': 'pt'}``).
    """
    from safetensors.torch import save_file

    tensors, storages = {}, set()
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in storages or tensor.numel() == 0:
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    save_file(tensors, str(path), metadata=metadata)

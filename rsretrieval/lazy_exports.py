"""Package names that import their module on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable[[str], object]]:
    """``(__all__, __getattr__)`` for ``package``, whose names load from their module when first asked for.

    Importing the package stays cheap: ``from package import name`` imports
    ``package.module`` only then.

    Args:
        package: The package's ``__name__``.
        modules: ``{submodule: names it exports}``.

    Raises:
        ValueError: A name is listed under two submodules.
    """
    home: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if home.setdefault(name, module) != module:
                raise ValueError(f'{package}: {name!r} is exported by both .{home[name]} and .{module}')

    def __getattr__(name: str) -> object:
        if name not in home:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(f'.{home[name]}', package), name)

    return sorted(home), __getattr__

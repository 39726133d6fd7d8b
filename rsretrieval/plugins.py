"""Discovery of installed plugins through the ``rsretrieval.plugins`` entry points.

A package that adds components declares, in its ``pyproject.toml``::

    [project.entry-points."rsretrieval.plugins"]
    my_plugin = "my_plugin"              # a module whose import registers its classes

or ``"my_plugin:register"`` (a function called without arguments). The registries
load every plugin the first time a lookup misses, so ``pip install my-plugin`` is
all a config that names ``type='MyBackbone'`` needs; plugins that are never
needed are never imported.
"""

from __future__ import annotations

import importlib.metadata
import threading
from types import ModuleType

ENTRY_POINT_GROUP = 'rsretrieval.plugins'

_lock = threading.RLock()
_loaded: dict[str, str] | None = None  # entry-point name -> distribution, once loaded


class PluginError(ImportError):
    """An installed plugin could not be loaded."""


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, 'dist', None)
    return f'{dist.name} {dist.version}' if dist is not None else 'unknown distribution'


def load_plugins(reload: bool = False) -> dict[str, str]:
    """Import every installed ``rsretrieval.plugins`` entry point (once per process).

    Args:
        reload: Look for entry points again (after installing a plugin in a
            running process, or in tests); already imported modules are not
            imported twice.

    Returns:
        The loaded plugins: entry-point name -> ``'distribution version'``.

    Raises:
        PluginError: A plugin fails to import or its registration function
            fails; the message names the entry point and its distribution.
            Nothing is skipped silently.
    """
    global _loaded
    with _lock:
        if _loaded is not None and not reload:
            return dict(_loaded)
        loaded: dict[str, str] = {}
        _loaded = loaded  # set first: a plugin that looks a name up while loading does not recurse
        for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            where = f'{entry_point.name} = {entry_point.value} ({_distribution(entry_point)})'
            try:
                target = entry_point.load()
                if callable(target) and not isinstance(target, ModuleType):
                    target()
            except Exception as err:
                _loaded = None  # the next lookup tries (and reports) again
                hint = missing_module_hint(err)
                message = f'rsretrieval plugin {where} failed to load: {err!r}'
                raise PluginError(f'{message}; {hint}' if hint else message) from err
            loaded[entry_point.name] = _distribution(entry_point)
        return dict(loaded)


def plugins_loaded() -> bool:
    """Whether :func:`load_plugins` has run in this process."""
    return _loaded is not None


def missing_module(err: BaseException) -> str | None:
    """The module whose absence raised ``err``: the name of the first
    ``ModuleNotFoundError`` among ``err`` and its causes, or None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ModuleNotFoundError) and current.name:
            return current.name
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def missing_module_hint(err: BaseException) -> str | None:
    """One line for an import that failed because a module is missing, or None.

    mmengine's ``custom_imports`` failure lists ``sys.path`` over many lines
    without naming the module; this names it and says the two ways to make it
    importable. ``err`` is what ``Config.fromfile`` or an entry point raised.
    """
    name = missing_module(err)
    if name is None:
        return None
    where = 'custom_imports: ' if str(err).startswith('Failed to import custom modules') else ''
    return (
        f'{where}no module named {name!r}: install the plugin that provides it '
        '(pip install -e PATH/TO/PLUGIN) or add the folder that holds it to PYTHONPATH'
    )

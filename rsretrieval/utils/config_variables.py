"""Top-level variables whose nested copies move when an inheriting config changes them.

mmengine runs each file of a Python config on its own, with the merged dict of its bases as
``_base_``: ``_dataset = dict(data_root=data_root)`` in a base copies that base's value, and a
child that sets ``data_root = '/data/ucm'`` changes the top-level key only. For each variable
of :data:`PROPAGATED_VARIABLES`, :func:`propagate_variables` finds the files of the ``_base_``
tree that set it, the value each of them gave it, and moves every nested key that still holds
an earlier value to the final one, as ``--cfg-options`` does for an override.
"""

from __future__ import annotations

import ast
import os.path as osp
import re
import tempfile
from collections.abc import Iterator
from typing import Any

from mmengine import load
from mmengine.config import Config

from .config_errors import ConfigError

#: Top-level variable -> the nested key that a config copies its value into.
# The combined-data configs (configs/_base_/datasets/ret3_combined.py) keep one root per dataset:
# each moves the nested data_root keys that hold its value, as data_root does for one dataset.
PROPAGATED_VARIABLES = {
    'data_root': 'data_root',
    'text_weights': 'pretrained',
    'image_weights': 'pretrained',
    'rsicd_root': 'data_root',
    'rsitmd_root': 'data_root',
    'ucm_root': 'data_root',
}

#: Where to set a value that has no nested copy to move.
_NESTED_KEYS = {
    'data_root': "each dataset's data_root (train_dataloader.dataset.data_root, ...)",
    'text_weights': 'model.text_encoder.pretrained and model.fusion_head.pretrained',
    'image_weights': 'model.backbone.pretrained',
    'rsicd_root': "the RSICD part's data_root (train_dataloader.dataset.datasets.N.data_root, ...)",
    'rsitmd_root': "the RSITMD part's data_root (train_dataloader.dataset.datasets.N.data_root, ...)",
    'ucm_root': "the UCM part's data_root (train_dataloader.dataset.datasets.N.data_root, ...)",
}

# mmengine's {{_base_.key}} placeholders are not Python until mmengine substitutes them; an
# expression in their place keeps the file parseable.
_PLACEHOLDER = re.compile(r'\{\{.*?\}\}')


def replace_values(node: Any, key: str, old: Any, new: Any) -> int:
    """Set ``key`` to ``new`` wherever it equals ``old`` in ``node``; return the count."""
    count = 0
    if isinstance(node, dict):
        if key in node and node[key] == old:
            node[key] = new
            count += 1
        for value in node.values():
            count += replace_values(value, key, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += replace_values(value, key, old, new)
    return count


def _count_values(node: Any, key: str, value: Any) -> int:
    """How many times ``key`` equals ``value`` in ``node``."""
    count = 0
    if isinstance(node, dict):
        count += int(key in node and node[key] == value)
        count += sum(_count_values(child, key, value) for child in node.values())
    elif isinstance(node, (list, tuple)):
        count += sum(_count_values(child, key, value) for child in node)
    return count


def _module_level_names(module: ast.Module) -> set[str]:
    """The names a Python file binds at module level (functions and comprehensions have their own scope)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(module.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _python_base_list(module: ast.Module, path: str) -> Any:
    """The value of the file's ``_base_ = ...``, evaluated as mmengine's ``_get_base_files`` does."""
    for node in module.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == '_base_':
            return eval(compile(ast.Expression(body=node.value), path, mode='eval'), {})
    return []


def _python_source(path: str) -> str:
    """The text of a Python config file, with mmengine's placeholders substituted or masked."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if '{{' not in text:
        return text
    # mmengine fills in {{ fileDirname }} and {{$ENV:default}} before it reads `_base_`: so must we
    with tempfile.TemporaryDirectory() as folder:
        substituted = osp.join(folder, osp.basename(path))
        Config._substitute_predefined_vars(path, substituted)
        Config._substitute_env_variables(substituted, substituted)
        with open(substituted, encoding='utf-8') as f:
            text = f.read()
    return _PLACEHOLDER.sub('None', text)  # what is left: {{_base_.key}}


def _parse_file(path: str) -> tuple[list[str], set[str]]:
    """The resolved ``_base_`` files of one config file and the top-level names it sets."""
    if path.endswith('.py'):
        text = _python_source(path)
        try:
            module = ast.parse(text, filename=path)
        except SyntaxError as err:
            raise ConfigError(f'config {path} cannot be read: SyntaxError: {err.msg} (line {err.lineno})') from err
        bases, names = _python_base_list(module, path), _module_level_names(module)
    else:  # .json / .yaml: the file is the dict
        content = load(path)
        bases, names = content.get('_base_', []), set(content)
    bases = bases if isinstance(bases, list) else [bases]
    # _get_cfg_path resolves a base as mmengine does: next to the file, or 'package::path'
    resolved = [osp.abspath(Config._get_cfg_path(base, path)[0]) for base in bases]
    return resolved, names - {'_base_'}


class _BaseTree:
    """The files of one config's ``_base_`` tree: each parsed once, and read once when needed."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[list[str], set[str]]] = {}
        self._read: dict[str, Config] = {}

    def bases(self, path: str) -> list[str]:
        """The files ``path`` inherits, in its ``_base_`` order."""
        return self._parse(path)[0]

    def setters(self, path: str, name: str) -> list[str]:
        """The files that set ``name`` on the way from ``path`` to where it is first defined, last setter first."""
        own = [path] if name in self._parse(path)[1] else []
        # mmengine refuses a key that two bases define: at most one base holds the name
        base = next((base for base in self.bases(path) if self._defines(base, name)), None)
        return own + (self.setters(base, name) if base is not None else [])

    def value(self, path: str, name: str) -> Any:
        """The value of ``name`` in the config ``path`` read on its own (with its bases)."""
        if path not in self._read:
            self._read[path] = Config.fromfile(path, import_custom_modules=False)
        return self._read[path].get(name)

    def _defines(self, path: str, name: str) -> bool:
        """Whether ``path`` or one of the files it inherits sets ``name``."""
        return name in self._parse(path)[1] or any(self._defines(base, name) for base in self.bases(path))

    def _parse(self, path: str) -> tuple[list[str], set[str]]:
        if path not in self._parsed:
            self._parsed[path] = _parse_file(path)
        return self._parsed[path]


def _nested_values(cfg: Config) -> Iterator[Any]:
    """The dicts and lists under the top-level keys: where the copies of a variable live."""
    for top in cfg:
        value = cfg[top]
        if isinstance(value, (dict, list, tuple)):
            yield value


def _value_changes(cfg: Config, name: str, tree: _BaseTree, top: str) -> list[tuple[str, Any]]:
    """``(file, value)`` for each file that gave ``name`` a new value, from where it is first defined up.

    Empty when no file of the tree sets ``name`` at module level.
    """
    setters = tree.setters(top, name)
    # the last setter's value is the config's; each file below it is read for its own
    values = [cfg.get(name)] + [tree.value(path, name) for path in setters[1:]]
    steps = list(zip(reversed(setters), reversed(values)))
    return steps[:1] + [step for below, step in zip(steps, steps[1:]) if step[1] != below[1]]


def _refusal(setter: str, name: str, changes: list[tuple[str, Any]]) -> ConfigError:
    """The one-line error of a file that sets a variable to no effect."""
    key, final = PROPAGATED_VARIABLES[name], changes[-1][1]
    if len(changes) == 1:
        why = f'its bases define no {name} and no nested {key!r} holds {final!r}'
    elif changes[-2][1] is None:
        why = f'its bases leave {name} None, which marks no nested {key!r} as a copy'
    else:
        why = f'no nested {key!r} held its base value {changes[-2][1]!r}'
    return ConfigError(f'config {setter}: {name} = {final!r} changes nothing ({why}); set {_NESTED_KEYS[name]} instead')


def _move_copies(cfg: Config, name: str, tree: _BaseTree, top: str) -> None:
    """Move the nested copies of ``name`` through each of its changes; refuse a last change with no effect."""
    changes = _value_changes(cfg, name, tree, top)
    if not changes:
        return  # no file binds it at module level (globals(), exec): nothing to follow
    key = PROPAGATED_VARIABLES[name]
    # in file order, as if each file had moved the copies of the value its bases gave it
    for (_, old), (_, new) in zip(changes, changes[1:]):
        if old is not None:  # None is every unset 'pretrained': it cannot tell a copy from the others
            for node in _nested_values(cfg):
                replace_values(node, key, old, new)
    setter, final = changes[-1]
    if not tree.bases(setter):
        return  # a file without bases sets the variable and its copies together
    if not any(_count_values(node, key, final) for node in _nested_values(cfg)):
        raise _refusal(setter, name, changes)


def propagate_variables(cfg: Config) -> Config:
    """Make the :data:`PROPAGATED_VARIABLES` that a config inherits and changes move their copies.

    For each variable the config has, the files of its ``_base_`` tree that set it give the
    values it held before its final one (the files below the last setter are each read once).
    Every nested key (``data_root`` of a dataset, ``pretrained`` of a component) that holds
    one of those values is set to the final value, so that ``data_root = '/data/ucm'`` in a
    child of ``configs/cmpagl_ucm_cpu.py`` moves all three datasets. A config whose variables
    are set once, or set again with their copies, reads unchanged.

    Args:
        cfg: The config as ``Config.fromfile`` read it; changed in place.

    Returns:
        ``cfg``.

    Raises:
        ConfigError: A file with ``_base_`` sets a variable that no nested key follows (one
            line naming the file, the variable and the keys to set instead).
    """
    if not cfg.filename:
        return cfg
    top = osp.abspath(osp.expanduser(cfg.filename))
    tree = _BaseTree()
    if not tree.bases(top):
        return cfg
    for name in PROPAGATED_VARIABLES:
        if name in cfg:
            _move_copies(cfg, name, tree, top)
    return cfg

"""The package's layers (docs/architecture.md): no import runs up a layer or across one.

Every ``import`` and ``from ... import`` of every rsretrieval module is read with
``ast``, at module level and inside functions alike, relative imports resolved.
A module belongs to the part with the longest matching prefix; it may import its
own part and every part of a lower layer, never a part of its own layer or above.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'rsretrieval'

# Bottom first: (layer, {part: module prefixes}). The same table is drawn in docs/architecture.md.
LAYERS = (
    ('foundation', {'foundation': ('rsretrieval.version', 'rsretrieval.lazy_exports', 'rsretrieval.plugins')}),
    ('registries', {'registries': ('rsretrieval', 'rsretrieval.registry')}),
    ('utils', {'utils': ('rsretrieval.utils',)}),
    ('weights', {'weights': ('rsretrieval.weights',)}),
    (
        'components',
        {
            'datasets': ('rsretrieval.datasets',),
            'evaluation': ('rsretrieval.evaluation',),
            'models': ('rsretrieval.models',),
            'rerankers': ('rsretrieval.rerankers',),
        },
    ),
    ('engine', {'engine': ('rsretrieval.engine',)}),
    (
        'uses of a model',
        {
            'analysis': ('rsretrieval.analysis',),
            'apis': ('rsretrieval.apis',),
            'visualization': ('rsretrieval.visualization',),
        },
    ),
    ('search', {'search': ('rsretrieval.search',)}),
    (
        'entry points',
        {
            'entry points': (
                'rsretrieval.cli',
                'rsretrieval.subcommands',
                'rsretrieval.search.cli',
                'rsretrieval.weights.cli',
                'rsretrieval.utils.setup_env',
            )
        },
    ),
)

# The arrows the issue names, checked on their own so that each reads as a rule.
NEVER = (
    ('models', 'datasets'),
    ('models', 'evaluation'),
    ('models', 'engine'),
    ('models', 'search'),
    ('models', 'apis'),
    ('models', 'entry points'),
    ('rerankers', 'models'),
    ('evaluation', 'models'),
)


class Import(NamedTuple):
    """One import statement's target, where it stands."""

    file: str
    line: int
    module: str

    def __str__(self) -> str:
        return f'{self.file}:{self.line} imports {self.module}'


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a module file below ``root`` (the folder holding the package)."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split('.'))
    return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file()


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every module ``path`` imports, relative imports resolved against its package.

    ``from a import b`` counts as importing ``a.b`` where that is a module of ``root``,
    else as importing ``a``.
    """
    name, file = module_name(path, root), path.relative_to(root).as_posix()
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(file, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f'{base}.{alias.name}'
                found.append(Import(file, node.lineno, submodule if _is_module(submodule, root) else base))
    return list(dict.fromkeys(found))  # `from a import b, c` of one module: one import


def part_of(module: str) -> str | None:
    """The part whose longest prefix matches ``module``; None outside rsretrieval."""
    best, best_len = None, -1
    for _, parts in LAYERS:
        for part, prefixes in parts.items():
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + '.')) and len(prefix) > best_len:
                    best, best_len = part, len(prefix)
    return best


def layer_index(part: str) -> int:
    return next(i for i, (_, parts) in enumerate(LAYERS) if part in parts)


def forbidden(importer: str, imported: str) -> bool:
    """Whether part ``importer`` may not import part ``imported``: up, or across its layer."""
    return importer != imported and layer_index(imported) >= layer_index(importer)


def package_imports(root: Path = REPO) -> list[tuple[str, str, Import]]:
    """``(importer part, imported part, import)`` for every import between rsretrieval modules."""
    edges = []
    for path in sorted((root / 'rsretrieval').rglob('*.py')):
        importer = part_of(module_name(path, root))
        for imp in imports_of(path, root):
            imported = part_of(imp.module)
            if imported is not None:
                edges.append((importer, imported, imp))
    return edges


def test_every_module_belongs_to_a_part():
    homeless = [module_name(p, REPO) for p in PACKAGE.rglob('*.py') if part_of(module_name(p, REPO)) is None]
    assert not homeless, f'place these modules in a part of LAYERS (and docs/architecture.md): {homeless}'


def test_no_import_runs_up_or_across_a_layer():
    wrong = [f'{imp} ({a} -> {b})' for a, b, imp in package_imports() if forbidden(a, b)]
    assert not wrong, 'imports against the layers of docs/architecture.md:\n' + '\n'.join(wrong)


@pytest.mark.parametrize(('importer', 'imported'), NEVER, ids=[f'{a}-never-{b}' for a, b in NEVER])
def test_the_never_arrows(importer, imported):
    assert forbidden(importer, imported)
    wrong = [str(imp) for a, b, imp in package_imports() if (a, b) == (importer, imported)]
    assert not wrong, f'{importer} must never import {imported}:\n' + '\n'.join(wrong)


def test_utils_never_imports_the_command_line():
    wrong = [
        str(imp)
        for a, _, imp in package_imports()
        if a == 'utils' and (imp.module == 'rsretrieval.cli' or imp.module.startswith('rsretrieval.cli.'))
    ]
    assert not wrong, 'utils must never import rsretrieval.cli:\n' + '\n'.join(wrong)


def test_the_reader_sees_function_level_and_relative_imports(tmp_path):
    models = tmp_path / 'rsretrieval' / 'models'
    (models / 'heads').mkdir(parents=True)
    for folder in (tmp_path / 'rsretrieval', models, models / 'heads'):
        (folder / '__init__.py').write_text('')
    (tmp_path / 'rsretrieval' / 'datasets.py').write_text('')
    (models / 'heads' / 'head.py').write_text(
        'from ..utils import x\nfrom ... import datasets\n\ndef f():\n    import rsretrieval.engine.loops\n'
    )
    found = [(imp.line, imp.module) for imp in imports_of(models / 'heads' / 'head.py', tmp_path)]
    assert found == [(1, 'rsretrieval.models.utils'), (2, 'rsretrieval.datasets'), (5, 'rsretrieval.engine.loops')]
    wrong = [str(imp) for a, b, imp in package_imports(tmp_path) if forbidden(a, b)]
    assert wrong == [
        'rsretrieval/models/heads/head.py:2 imports rsretrieval.datasets',
        'rsretrieval/models/heads/head.py:5 imports rsretrieval.engine.loops',
    ]


def _drawn_layers() -> list[tuple[str, str, tuple[str, ...]]]:
    """The rows of the layer table of docs/architecture.md: ``(layer, part, prefixes)``."""
    rows = []
    for line in (REPO / 'docs' / 'architecture.md').read_text(encoding='utf-8').splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 4 and cells[0].isdigit():
            rows.append((cells[1], cells[2], tuple(re.findall(r'`([\w.]+)`', cells[3]))))
    return rows


def test_the_documented_layers_are_the_enforced_ones():
    enforced = [(layer, part, prefixes) for layer, parts in reversed(LAYERS) for part, prefixes in parts.items()]
    assert sorted(_drawn_layers()) == sorted(enforced)

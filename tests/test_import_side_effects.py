"""Importing any rsretrieval module changes no global state: the environment, mmengine's file
backends and checkpoint schemes, and mmengine's root registries stay as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

# Runs in a fresh interpreter: imports every rsretrieval module one after the other and prints,
# as JSON, the modules that failed to import and each change of global state, with the module
# whose import (or one it imported first) made it.
IMPORT_EVERY_MODULE = r"""
import importlib, json, os, pkgutil

# what other packages change when they are imported, before the first snapshot: mmengine's and
# mmcv's transforms register their own classes, torch._inductor sets TORCHINDUCTOR_CACHE_DIR
import mmengine.dataset, mmengine.evaluator, mmengine.hooks, mmengine.model  # noqa: E401
import mmengine.optim, mmengine.runner, mmengine.visualization  # noqa: E401
import mmcv.transforms, torch._inductor  # noqa: E401
from mmengine import registry
from mmengine.fileio import io as fileio
from mmengine.fileio.backends import backends, prefix_to_backends
from mmengine.registry import DefaultScope, Registry
from mmengine.runner import CheckpointLoader

OWN_SCOPE = 'rsretrieval'  # children of mmengine's roots under this scope are the package's registries


def name_of(obj):
    return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", type(obj).__qualname__)}'


def state():
    snapshot = {
        'environment variable': dict(os.environ),
        'file backend': {name: name_of(cls) for name, cls in backends.items()},
        'file backend for prefix': {repr(prefix): name_of(cls) for prefix, cls in prefix_to_backends.items()},
        'cached file backend': {key: name_of(type(b)) for key, b in fileio.backend_instances.items()},
        'checkpoint loader scheme': {prefix: name_of(f) for prefix, f in CheckpointLoader._schemes.items()},
        'default scope': {name: scope.scope_name for name, scope in DefaultScope._instance_dict.items()},
    }
    for root_name, root in vars(registry).items():
        if isinstance(root, Registry):
            snapshot[f'mmengine.registry.{root_name} entry'] = {k: name_of(v) for k, v in root.module_dict.items()}
            children = {scope: child.name for scope, child in root._children.items() if scope != OWN_SCOPE}
            snapshot[f'mmengine.registry.{root_name} child scope'] = children
    return snapshot


def changes(before, after, module):
    found = []
    for kind in sorted(set(before) | set(after)):
        old, new = before.get(kind, {}), after.get(kind, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                found.append(f'importing {module}: {kind} {key!r}: {old.get(key, "(absent)")!r} -> '
                             f'{new.get(key, "(absent)")!r}')
    return found


failures, found = [], []
before = state()
import rsretrieval  # noqa: E402
found += changes(before, state(), 'rsretrieval')


# found from the files: pkgutil.walk_packages imports each package to look inside it, and
# what those imports changed would be seen by no snapshot
def module_names(folder, prefix):
    for info in pkgutil.iter_modules([folder], prefix):
        yield info.name
        if info.ispkg:
            yield from module_names(os.path.join(folder, info.name.rpartition('.')[2]), info.name + '.')


names = sorted(module_names(rsretrieval.__path__[0], 'rsretrieval.'))
for name in names:
    before = state()
    try:
        importlib.import_module(name)
    except Exception as error:  # every module must import; say which and why
        failures.append(f'{name} cannot be imported: {type(error).__name__}: {error}')
    found += changes(before, state(), name)
print(json.dumps({'modules': len(names), 'failures': failures, 'changes': found}))
"""

# what a shell gives: the test session's own settings (conftest sets HF_HUB_OFFLINE) stay out
PASSED_VARIABLES = ('PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'SYSTEMROOT')


def test_importing_every_module_changes_no_global_state():
    env = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
    proc = subprocess.run(
        [sys.executable, '-c', IMPORT_EVERY_MODULE], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report['modules'] > 50  # the walk found the package's modules
    problems = report['failures'] + report['changes']
    assert not problems, 'importing rsretrieval changed global state:\n' + '\n'.join(problems)

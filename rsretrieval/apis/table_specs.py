"""The ``--model`` and ``--test-set`` arguments of the results-table command, read without torch.

A model is ``NAME=CONFIG:WEIGHTS`` (a config file and a checkpoint, or a name
``tools/test.py`` accepts: ``remoteclip-vit-b-32``, ``hf-hub:ORG/NAME``) or
``NAME=MODEL_FOLDER`` (written by ``tools/export_model.py``, holding both). A test
set is ``NAME=CONFIG``: the data of the config's test dataloader. Both may end in
``,KEY=VALUE`` overrides, read as ``--cfg-options`` reads them (commas inside
brackets or quotes belong to the value: ``model.backbone.depths=(1,1)``)::

    cmpagl=configs/cmpagl_demo.py:work_dirs/cmpagl_demo/epoch_3.pth
    ucm-test=configs/cmpagl_ucm.py,data_root=/data/ucm_captions,split=test

A test set's key is an argument of its test dataset (``split=val`` sets
``test_dataloader.dataset.split``, ``subset.num_images=50`` its ``subset``), except
``data_root``, which moves every dataset of the config as ``--cfg-options
data_root=`` does, and keys that begin with ``test_dataloader.dataset.``. The
loader's own settings (batch size, workers) are the model's.
A model's keys are plain ``--cfg-options`` keys of its config.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field

from mmengine.config import DictAction  # light: no torch

#: A model or test-set name: it heads a table row and a card section.
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.+-]*')
#: A config file followed by ``:WEIGHTS``; the first config-like ending wins.
CONFIG_AND_WEIGHTS = re.compile(r'(?P<config>.+?\.(?:py|json|ya?ml)):(?P<weights>.+)')
#: Test-set keys that are config variables, not dataset arguments.
TEST_SET_VARIABLES = ('data_root',)
#: The test loader's keys: only its dataset's come from a test set.
TEST_LOADER_PREFIX, TEST_DATASET_PREFIX = 'test_dataloader.', 'test_dataloader.dataset.'

_OPENING, _CLOSING = '([{', ')]}'


class SpecError(ValueError):
    """A ``--model`` or ``--test-set`` value that cannot be read; the message names it."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the table.

    Attributes:
        name: Its name in the table.
        config: The config file, or a model folder (``weights`` None).
        weights: A checkpoint path or a name ``tools/test.py`` accepts; None for a model folder.
        options: ``--cfg-options`` of the model's config.
    """

    name: str
    config: str
    weights: str | None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TestSetSpec:
    """One test set of the table.

    Attributes:
        name: Its name in the table.
        config: The config whose test dataloader holds the data.
        options: ``--cfg-options`` of that config, short keys already expanded.
    """

    name: str
    config: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TableModel:
    """A model with its files found: what the table evaluates and the card describes.

    Attributes:
        name: Its name in the table.
        config: The local config file (a model folder's ``config.py``).
        weights: The local weights file (a model folder's ``model.safetensors``).
        options: ``--cfg-options`` of the config.
        given: The weights as given (a path, a zoo name, ``hf-hub:...``, a model folder).
        published: The weights were given by name: published weights, not selected here.
        exported_from: For a model folder, the checkpoint it was exported from (its
            ``rsretrieval.json``), whose name tells the selection rule; else None.
    """

    name: str
    config: str
    weights: str
    options: dict
    given: str
    published: bool = False
    exported_from: str | None = None

    @property
    def checkpoint_name(self) -> str:
        """The name that tells how the weights were chosen: the export's source, the
        name given for published weights, else the weights file's name."""
        if self.exported_from:
            return self.exported_from
        return self.given if self.published else os.path.basename(self.weights)


def exported_checkpoint_name(folder: str) -> str | None:
    """The ``checkpoint`` a model folder's ``rsretrieval.json`` names (what it was exported from), or None."""
    try:
        with open(os.path.join(folder, 'rsretrieval.json'), encoding='utf-8') as f:
            name = json.load(f).get('checkpoint')
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def parse_model_spec(text: str) -> ModelSpec:
    """Read ``NAME=CONFIG:WEIGHTS[,KEY=VALUE...]`` or ``NAME=MODEL_FOLDER[,KEY=VALUE...]``.

    Raises:
        SpecError: No ``=``, a bad name, a config file without ``:WEIGHTS``, or a bad override.
    """
    name, head, overrides = _split_spec(text, '--model', 'NAME=CONFIG:WEIGHTS or NAME=MODEL_FOLDER')
    found = CONFIG_AND_WEIGHTS.fullmatch(head)
    if found:
        config, weights = found['config'], found['weights']
    elif head.endswith(('.py', '.json', '.yaml', '.yml')):
        raise SpecError(
            f'--model {text}: the config {head} needs its weights: {name}={head}:CHECKPOINT '
            '(a checkpoint path, a model-zoo name or hf-hub:ORG/NAME)'
        )
    else:  # a model folder (or a named one) holds its config and weights
        config, weights = head, None
    return ModelSpec(name, config, weights, _parse_overrides(overrides, f'--model {name}'))


def parse_test_set_spec(text: str) -> TestSetSpec:
    """Read ``NAME=CONFIG[,KEY=VALUE...]``; short keys become test-dataset arguments.

    Raises:
        SpecError: No ``=``, a bad name, a config that is not a config file, or a bad override.
    """
    name, config, overrides = _split_spec(text, '--test-set', 'NAME=CONFIG[,KEY=VALUE...]')
    if not config.endswith(('.py', '.json', '.yaml', '.yml')):
        raise SpecError(f'--test-set {text}: {config} is not a config file (.py, .json or .yaml)')
    options = _parse_overrides(overrides, f'--test-set {name}')
    return TestSetSpec(name, config, test_set_cfg_options(options, f'--test-set {name}'))


def test_set_cfg_options(options: dict, where: str = '--test-set') -> dict:
    """A test set's keys as config keys: ``split`` -> ``test_dataloader.dataset.split``.

    ``data_root`` (a variable that moves every dataset) and ``test_dataloader.dataset.*`` stay as
    they are.

    Raises:
        SpecError: Another ``test_dataloader.*`` key: the loader's settings are the model's.
    """
    expanded = {}
    for key, value in options.items():
        if key.startswith(TEST_LOADER_PREFIX) and not key.startswith(TEST_DATASET_PREFIX):
            raise SpecError(
                f'{where}: override {key}: a test set gives only its data (dataset arguments and data_root); '
                "the loader's settings (batch size, workers) are the model's: give them with --model"
            )
        known = key in TEST_SET_VARIABLES or key.startswith(TEST_DATASET_PREFIX)
        expanded[key if known else TEST_DATASET_PREFIX + key] = value
    return expanded


def check_unique_names(specs: list[ModelSpec] | list[TestSetSpec], option: str) -> None:
    """Refuse two models (or two test sets) of one name: rows and card sections are keyed by it.

    Raises:
        SpecError: Naming the repeated name.
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SpecError(f'{option} {spec.name}=...: the name {spec.name!r} is given twice')
        seen.add(spec.name)


def _split_spec(text: str, option: str, shape: str) -> tuple[str, str, list[str]]:
    """``(name, the part before the overrides, the overrides)`` of ``NAME=...[,KEY=VALUE...]``."""
    name, sep, rest = text.partition('=')
    if not sep:
        raise SpecError(f'{option} {text}: expected {shape} (no "=")')
    if not NAME.fullmatch(name):
        raise SpecError(f'{option} {text}: the name {name!r} must be letters, digits and _ . + - (no spaces)')
    head, *overrides = split_top_level(rest)
    if not head:
        raise SpecError(f'{option} {text}: nothing after "{name}="; expected {shape}')
    return name, head, overrides


def split_top_level(text: str, sep: str = ',') -> list[str]:
    """``text`` split at each ``sep`` outside brackets and quotes: ``'a,b=(1,2)'`` -> ``['a', 'b=(1,2)']``."""
    parts, current, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in '\'"':
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth = max(depth - 1, 0)
        elif char == sep and depth == 0:
            parts.append(''.join(current))
            current = []
            continue
        current.append(char)
    parts.append(''.join(current))
    return parts


def _parse_overrides(items: list[str], where: str) -> dict:
    """``KEY=VALUE`` strings as ``--cfg-options`` reads them (numbers, booleans, None, tuples, lists)."""
    for item in items:
        key, sep, _ = item.partition('=')
        if not sep or not key.strip():
            raise SpecError(f'{where}: override {item!r} is not KEY=VALUE')
    if not items:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--options', nargs='+', action=DictAction)
    try:
        return dict(parser.parse_args(['--options', *items]).options)
    except (AssertionError, RecursionError, ValueError) as err:  # DictAction on unbalanced brackets, dict(...)
        raise SpecError(
            f'{where}: cannot read the overrides {",".join(items)} ({type(err).__name__}); write nested keys '
            'with dots (subset.num_images=50), tuples as (1,2) and lists as [1,2]'
        ) from None

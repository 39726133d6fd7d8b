"""How a checkpoint was chosen, read from its file name and its model's config.

The checkpoint hook names what it keeps: ``best_<metric>_epoch_<N>.pth`` for the
best validation score (``default_hooks.checkpoint.save_best``), ``epoch_<N>.pth``
(``iter_<N>.pth``) for the checkpoint of a step. Published weights given by name
(a model-zoo name, ``hf-hub:``) and files without this project's training record
(an open_clip state dict) were not selected here: zero-shot. A config whose
validation data is its test data (``configs/cmpagl_rsitmd_val-on-test.py``) makes
a best checkpoint one selected on the test split; the rule says so in capitals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .dataset_identity import data_keys, describe_data, leaf_dataset_configs, loader_dataset

_BEST = re.compile(r'best_(?P<metric>.+)_(?P<unit>epoch|iter)_(?P<step>\d+)\.pth')
_STEP = re.compile(r'(?P<unit>epoch|iter)_(?P<step>\d+)\.pth')
#: What a best checkpoint chosen on the test split is called, loudly.
ON_TEST_SPLIT = 'SELECTED ON THE TEST SPLIT'


@dataclass(frozen=True)
class SelectionRule:
    """How a checkpoint was chosen.

    Attributes:
        kind: ``'best'`` (best validation score), ``'last'`` (the last epoch or
            iteration), ``'fixed'`` (a step that is not the last), ``'zero-shot'``
            (no selection here) or ``'unknown'`` (the name states no rule).
        text: The rule in words, e.g. ``best val mR on data/demo_scenes (DemoSceneDataset)
            [split val] (epoch 3)``.
        on_test_split: A best checkpoint whose validation data is the config's test data.
        step: The epoch or iteration the name states, or None.
    """

    kind: str
    text: str
    on_test_split: bool = False
    step: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def selection_rule(
    checkpoint_name: str | None, model_cfg: Mapping, published: bool = False, meta: Mapping | None = None
) -> SelectionRule:
    """How the checkpoint ``checkpoint_name`` of a model of ``model_cfg`` was chosen.

    Args:
        checkpoint_name: The checkpoint's file name (for an exported model folder,
            the name of the checkpoint it was exported from); None when unknown.
        model_cfg: The model's config (its checkpoint hook, loaders and schedule).
        published: The weights were given by name (zoo, ``hf-hub:``, URL): published
            weights evaluated as they are.
        meta: The checkpoint's ``meta`` (mmengine: ``epoch``, ``iter``, ...); None
            or empty for a file without a training record.
    """
    name = checkpoint_name or ''
    if published:
        return SelectionRule('zero-shot', f'no selection (zero-shot: published weights {name})')
    best = _BEST.fullmatch(name)
    if best:
        return _best_rule(best['metric'], best['unit'], int(best['step']), model_cfg)
    step = _STEP.fullmatch(name)
    if step:
        return _step_rule(step['unit'], int(step['step']), model_cfg)
    if not meta or 'epoch' not in meta:
        return SelectionRule('zero-shot', f'no selection (zero-shot: {name or "the weights"} holds no training record)')
    return SelectionRule(
        'unknown',
        f'unknown: the file name {name} states no rule (best_<metric>_epoch_N.pth, epoch_N.pth); '
        f'saved at epoch {meta["epoch"]}',
    )


def validates_on_test_split(model_cfg: Mapping) -> bool:
    """Whether the config validates (selects its checkpoint) on its test data, or on a split named test."""
    val, test = loader_dataset(model_cfg, 'val_dataloader'), loader_dataset(model_cfg, 'test_dataloader')
    if val is None:
        return False
    if any(key[2] == 'test' for key in data_keys(val)):
        return True
    return test is not None and bool(data_keys(val) & data_keys(test))


def _best_rule(metric: str, unit: str, step: int, model_cfg: Mapping) -> SelectionRule:
    val = loader_dataset(model_cfg, 'val_dataloader')
    parts = len(leaf_dataset_configs(val))
    # a combined validation set reports each part's metrics; the unprefixed key is their mean
    mean = f' (mean over its {parts} parts)' if parts > 1 else ''
    text = f'best val {metric}{mean} on {describe_data(val)} ({unit} {step})'
    save_best = ((model_cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('save_best')
    named = [save_best] if isinstance(save_best, str) else list(save_best or [])
    if metric not in named and 'auto' not in named:
        text += f'; note: the config now keeps save_best={save_best!r}'
    on_test = validates_on_test_split(model_cfg)
    if on_test:
        label = (model_cfg.get('test_cfg') or {}).get('label')
        text = f'{ON_TEST_SPLIT}: {text}' + (f' [{label}]' if label else '')
    return SelectionRule('best', text, on_test, step)


def _step_rule(unit: str, step: int, model_cfg: Mapping) -> SelectionRule:
    train_cfg = model_cfg.get('train_cfg') or {}
    last = train_cfg.get('max_epochs' if unit == 'epoch' else 'max_iters')
    if last is None:
        return SelectionRule('unknown', f'{unit} {step} (the config states no max_{unit}s: last or not is unknown)')
    if step == last:
        return SelectionRule('last', f'last {unit} ({step})', step=step)
    text = f'{unit} {step} of {last} (a fixed {unit}, not the last; no selection rule)'
    return SelectionRule('fixed', text, step=step)

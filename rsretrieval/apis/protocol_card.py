"""The protocol card of a results table: what produced each number, gathered as plain dicts.

Per test set: each annotation file with its sha256 (a precomp folder: each of its
files), the split, the held-out part or subset, the image and caption counts and the
shared-caption counts. Per model: its config and weights with their sha256, the
selection rule (:mod:`rsretrieval.apis.selection_rule`), its training data and the
sha256 of its exclusion list, the precision. For the run: versions, device and the
commit of the rsretrieval source. The reranker's settings come from the test loop
(:func:`rsretrieval.evaluation.similarity_io.reranker_record`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mmengine
import torch

from rsretrieval.datasets.annotation_formats import AnnotationError, detect_format
from rsretrieval.datasets.exclusions import read_exclusion_list
from rsretrieval.utils.loader_workers import usable_cpus
from rsretrieval.utils.precision import resolve_precision
from rsretrieval.version import __version__
from rsretrieval.weights.hashing import file_sha256

from .dataset_identity import describe_data, leaf_dataset_configs, loader_dataset
from .export_source import code_commit
from .selection_rule import SelectionRule
from .table_specs import TableModel, TestSetSpec

#: The card's format name, in ``protocol.json``.
CARD_FORMAT = 'rsretrieval-protocol-card/1'
#: The shared-caption counts the metric returns (``shared/<name>``), in the card's order.
SHARED_COUNTS = ('caption_strings', 'text_queries', 'image_queries')
#: Dataset metainfo a test-set card repeats when the dataset records it.
_DATASET_FACTS = ('split', 'holdout', 'subset', 'subset_of', 'exclusions')


def test_set_card(test_set: TestSetSpec, dataset: object, metrics: Mapping[str, float]) -> dict[str, Any]:
    """What a test set is: its config, annotation files (sha256), split, counts.

    Args:
        test_set: The test set as given.
        dataset: The dataset the test loop evaluated (built from the test set's data).
        metrics: The loop's metrics on it, for the shared-caption counts (``shared/*``).
    """
    metainfo = dict(getattr(dataset, 'metainfo', {}) or {})
    card: dict[str, Any] = dict(
        name=test_set.name,
        config=test_set.config,
        config_sha256=file_sha256(test_set.config),
        options=_plain(test_set.options),
        dataset_type=type(dataset).__name__,
        annotations=annotation_files(dataset),
        images=len(dataset.image_paths),
        captions=len(dataset.captions),
    )
    card.update({key: _plain(metainfo[key]) for key in _DATASET_FACTS if key in metainfo})
    parts = [part.name for part in getattr(dataset, 'parts', None) or ()]
    if parts:  # each part is evaluated on its own: its counts, and their sum (not the loop's mean)
        by_part = {name: shared_caption_counts(metrics, f'{name}/') for name in parts}
        card['shared_captions_by_part'] = by_part
        card['shared_captions'] = _summed(list(by_part.values()))
    else:
        card['shared_captions'] = shared_caption_counts(metrics)
    return card


def shared_caption_counts(metrics: Mapping[str, float], prefix: str = '') -> dict[str, int] | None:
    """``{caption_strings, text_queries, image_queries}`` from the metric's ``<prefix>shared/*``
    keys, or None when the metric reports none (it has no caption-equivalent recall)."""
    if not all(f'{prefix}shared/{name}' in metrics for name in SHARED_COUNTS):
        return None
    return {name: int(metrics[f'{prefix}shared/{name}']) for name in SHARED_COUNTS}


def _summed(counts: list[dict[str, int] | None]) -> dict[str, int] | None:
    """The counts added up, or None when a part has none."""
    if not counts or any(c is None for c in counts):
        return None
    return {name: sum(c[name] for c in counts) for name in SHARED_COUNTS}


def annotation_files(dataset: object) -> list[dict[str, Any]]:
    """Each annotation file (or precomp folder) the dataset read, its format and the sha256 of its files.

    A combined dataset's parts are listed in order (their ``metainfo['ann_file']``); a
    dataset that exposes no annotation file gives one entry saying so.
    """
    parts = getattr(dataset, 'parts', None)
    if parts:
        return [
            _annotation_entry(str(part.metainfo.get('ann_file') or ''), part.name, part.metainfo.get('split'))
            for part in parts
        ]
    return [_annotation_entry(str(getattr(dataset, 'ann_file', '') or ''))]


def _annotation_entry(path: str, part: str | None = None, split: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {} if part is None else {'part': part, 'split': split}
    if not path:
        return {**entry, 'path': None, 'note': 'the dataset exposes no annotation file'}
    entry['path'] = path
    try:
        entry['format'] = detect_format(path)
    except AnnotationError:
        entry['format'] = 'not detected (named in the dataset config)'
    files = sorted(p for p in Path(path).iterdir() if p.is_file()) if os.path.isdir(path) else [Path(path)]
    entry['files'] = [dict(path=str(p), sha256=file_sha256(p)) for p in files]
    return entry


def model_card(
    model: TableModel,
    model_cfg: Mapping,
    rule: SelectionRule,
    precision: Mapping[str, str],
    checkpoint_meta: Mapping | None = None,
) -> dict[str, Any]:
    """What a model is: config and weights with sha256, selection rule, training data, precision.

    Args:
        model: The model as resolved from the command line.
        model_cfg: Its config, overrides applied.
        rule: How its checkpoint was chosen.
        precision: :func:`precision_entry` of its test loop.
        checkpoint_meta: The checkpoint's ``meta`` (epoch, experiment name), if any.
    """
    meta = checkpoint_meta or {}
    return dict(
        name=model.name,
        config=model.config,
        config_sha256=file_sha256(model.config),
        options=_plain(model.options),
        weights=model.given,
        weights_path=model.weights,
        weights_sha256=file_sha256(model.weights),
        exported_from=model.exported_from,
        selection=rule.as_dict(),
        label=(model_cfg.get('test_cfg') or {}).get('label'),
        checkpoint_meta={k: _plain(meta[k]) for k in ('epoch', 'iter', 'experiment_name', 'time') if k in meta},
        training_data=training_data(model_cfg),
        precision=dict(precision),
    )


def training_data(model_cfg: Mapping) -> list[dict[str, Any]]:
    """Each dataset the model config trains on, with its exclusion list (see :func:`exclusion_entry`)."""
    return [
        dict(data=describe_data(leaf), exclusions=exclusion_entry(leaf.get('exclude')))
        for leaf in leaf_dataset_configs(loader_dataset(model_cfg, 'train_dataloader'))
    ]


def exclusion_entry(exclude: Mapping | None) -> dict[str, Any] | str:
    """``'none'``, or the list's ``file``, ``source`` and ``sha256``; an honest ``sha256`` of
    ``'file missing'`` or ``'unreadable: ...'`` when the list cannot be read here."""
    if not isinstance(exclude, Mapping) or not exclude.get('file'):
        return 'none'
    path = str(exclude['file'])
    entry = dict(file=path, source=exclude.get('source'))
    if not os.path.isfile(path):
        return {**entry, 'sha256': 'file missing'}
    try:
        return {**entry, 'sha256': read_exclusion_list(path).sha256}
    except AnnotationError as err:
        return {**entry, 'sha256': f'unreadable: {err}'}


def precision_entry(autocast: str | None, device: torch.device | str) -> dict[str, str]:
    """``{dtype, reason}``: what the test loop's ``autocast`` setting resolves to on ``device``."""
    choice = resolve_precision(autocast, device)
    return dict(dtype=choice.name, reason=choice.reason, requested=str(autocast))


def environment_card(device: torch.device | str) -> dict[str, Any]:
    """Versions, device and the commit of the rsretrieval source (and whether the tree was dirty)."""
    commit, dirty = code_commit()
    return dict(
        rsretrieval=__version__,
        torch=torch.__version__,
        mmengine=mmengine.__version__,
        python=platform.python_version(),
        device=device_name(device),
        commit=commit,
        uncommitted_changes=dirty,
        source=(
            'git checkout'
            if commit != 'unknown'
            else 'no git checkout (an installed package) or git unavailable: commit unknown'
        ),
    )


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model name (``/proc/cpuinfo``) with the cores this process may use."""
    device = torch.device(device)
    if device.type == 'cuda':
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f'{torch.cuda.get_device_name(index)} (cuda:{index})'
    if device.type == 'cpu':
        return f'CPU {cpu_model_name()} ({usable_cpus()} cores usable)'
    return str(device)


def cpu_model_name() -> str:
    """``model name`` of ``/proc/cpuinfo``, else :func:`platform.processor`, else ``unknown``."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
            for line in f:
                key, sep, value = line.partition(':')
                if sep and key.strip() == 'model name':
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _plain(value: Any) -> Any:
    """A config value as JSON can hold it (tuples as lists, ConfigDicts as dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)

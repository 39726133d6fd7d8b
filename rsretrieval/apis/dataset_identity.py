"""Which data a dataset config reads, told from the config alone: a key to compare and a description.

Two dataset configs read the same data when their leaves (a combined dataset's
``datasets``, or the config itself) agree on the data root, annotation file,
split and held-out part. A subset (``subset``, ``indices``) is ignored: selecting a
checkpoint on a split is selecting it on every part of that split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

#: ``(data root, annotation file, split, held-out part)`` of one leaf dataset config.
DataKey = tuple[str, str, str, str]


def leaf_dataset_configs(dataset_cfg: Mapping | None) -> list[Mapping]:
    """The dataset configs that read files: a combined dataset's ``datasets`` (recursively), or itself."""
    if not isinstance(dataset_cfg, Mapping):
        return []
    children = dataset_cfg.get('datasets')
    if isinstance(children, (list, tuple)):
        return [leaf for child in children for leaf in leaf_dataset_configs(child)]
    return [dataset_cfg]


def data_key(dataset_cfg: Mapping) -> DataKey:
    """What identifies the data of one leaf dataset config."""
    root = dataset_cfg.get('data_root') or ''
    holdout = dataset_cfg.get('holdout')
    return (
        os.path.normpath(os.path.abspath(root)) if root else '',
        str(dataset_cfg.get('ann_file') or ''),
        str(dataset_cfg.get('split') or ''),
        json.dumps(dict(holdout), sort_keys=True) if isinstance(holdout, Mapping) else '',
    )


def data_keys(dataset_cfg: Mapping | None) -> set[DataKey]:
    """The keys of every leaf of ``dataset_cfg``."""
    return {data_key(leaf) for leaf in leaf_dataset_configs(dataset_cfg)}


def loader_dataset(cfg: Mapping, loader: str) -> Mapping | None:
    """``cfg[loader]['dataset']``, or None when the config has no such loader or dataset."""
    loader_cfg = cfg.get(loader)
    dataset = loader_cfg.get('dataset') if isinstance(loader_cfg, Mapping) else None
    return dataset if isinstance(dataset, Mapping) else None


def describe_data(dataset_cfg: Mapping | None) -> str:
    """``data/rsitmd/annotations/dataset_RSITMD.json [split holdout: 300 images of train, seed 0]``
    (and the subset, when one is taken), one such phrase per leaf joined by `` + ``; ``none``
    without a dataset."""
    leaves = leaf_dataset_configs(dataset_cfg)
    if not leaves:
        return 'none'
    return ' + '.join(_describe_leaf(leaf) for leaf in leaves)


def _describe_leaf(dataset_cfg: Mapping) -> str:
    root = str(dataset_cfg.get('data_root') or '')
    ann_file = dataset_cfg.get('ann_file')
    where = os.path.join(root, str(ann_file)) if ann_file else f'{root or "."} ({dataset_cfg.get("type")})'
    split = dataset_cfg.get('split')
    holdout = dataset_cfg.get('holdout')
    if split == 'holdout' and isinstance(holdout, Mapping):
        part = f'holdout: {holdout.get("num_images")} images of {holdout.get("split")}, seed {holdout.get("seed", 0)}'
    else:
        part = str(split)
    subset = dataset_cfg.get('subset')
    if isinstance(subset, Mapping):
        part += f', subset of {subset.get("num_images")} images, seed {subset.get("seed", 0)}'
    elif dataset_cfg.get('indices') is not None:
        part += f', indices {dataset_cfg.get("indices")}'
    return f'{where} [split {part}]'

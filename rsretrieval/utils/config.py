"""Config helpers shared by the command-line tools."""

from __future__ import annotations

from typing import Any

from mmengine.config import Config


def _replace_data_root(node: Any, old: str, new: str) -> int:
    """Set ``data_root`` to ``new`` wherever it equals ``old``; return the count."""
    count = 0
    if isinstance(node, dict):
        if node.get('data_root') == old:
            node['data_root'] = new
            count += 1
        for value in node.values():
            count += _replace_data_root(value, old, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_data_root(value, old, new)
    return count


def merge_cfg_options(cfg: Config, options: dict | None) -> Config:
    """Merge ``--cfg-options`` into ``cfg``; a top-level ``data_root`` propagates.

    A Python config resolves ``data_root`` into every dataset when it is read,
    so overriding the top-level key alone would change nothing. Here, when
    ``data_root`` is overridden, every ``data_root`` that held the config's
    value is set to the new one, so ``--cfg-options data_root=PATH`` moves the
    whole dataset.
    """
    if not options:
        return cfg
    options = dict(options)
    old_root = cfg.get('data_root')
    new_root = options.pop('data_root', None)
    cfg.merge_from_dict(options)
    if new_root is not None:
        as_dict = cfg.to_dict()
        if old_root is not None:
            _replace_data_root(as_dict, old_root, new_root)
        as_dict['data_root'] = new_root
        cfg = Config(as_dict, filename=cfg.filename)
    return cfg

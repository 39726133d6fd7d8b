"""The weight specs a config names, found by walking its model settings."""

from __future__ import annotations

import os
from typing import Any

#: Config keys whose string values are weight specs (``checkpoint`` only inside ``type='Pretrained'``).
SPEC_KEYS = ('pretrained', 'tokenizer')


def find_weight_specs(cfg: Any, roots: tuple[str, ...] = ('model',)) -> list[tuple[str, str]]:
    """Every weight reference in a config: ``(key path, spec)``.

    Walks the ``roots`` of a (nested) config dict/list: string values of keys
    named ``pretrained`` or ``tokenizer``, and ``checkpoint`` inside a dict whose
    ``type`` is ``'Pretrained'`` (mmengine's ``init_cfg``). None and non-string
    values (``pretrained=True``) are skipped. Top-level variables such as
    ``text_weights`` are plain values and are found where the model uses them.

    Args:
        cfg: A dict, mmengine ``Config`` or ``ConfigDict``.
        roots: Top-level keys to walk.

    Returns:
        E.g. ``[('model.backbone.pretrained', 'swin-t-in1k'), ...]``.
    """
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    found: list[tuple[str, str]] = []
    for root in roots:
        if root in cfg:
            _walk(cfg[root], root, found)
    return found


def _walk(node: Any, where: str, found: list[tuple[str, str]]) -> None:
    """Append to ``found`` every spec below ``node``, whose key path is ``where``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}'
            is_spec_key = key in SPEC_KEYS or (key == 'checkpoint' and node.get('type') == 'Pretrained')
            if is_spec_key and isinstance(value, (str, os.PathLike)):
                found.append((path, os.fspath(value)))
            else:
                _walk(value, path, found)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, f'{where}[{index}]', found)

"""What a checkpoint's saved config says, read without executing it."""

from __future__ import annotations

import ast
from collections.abc import Mapping


def saved_architecture(checkpoint: Mapping) -> str | None:
    """``'CMPAGL (backbone Gswin)'`` from the config text mmengine saved in the checkpoint's meta, or None.

    The text is parsed, never executed: it comes from the file being checked.
    """
    cfg_text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(checkpoint, Mapping) else None
    if not isinstance(cfg_text, str):
        return None
    try:
        tree = ast.parse(cfg_text)
    except SyntaxError:
        return None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, 'id', None) == 'model' for t in stmt.targets):
            return _model_and_backbone(_dict_call_keywords(stmt.value))
    return None


def _model_and_backbone(model: dict[str, ast.expr]) -> str | None:
    """``'TYPE (backbone TYPE)'`` from the keywords of ``model = dict(...)``, or None without a literal type."""
    model_type = model.get('type')
    if not isinstance(model_type, ast.Constant):
        return None
    backbone = _dict_call_keywords(model.get('backbone')).get('type')
    suffix = f' (backbone {backbone.value})' if isinstance(backbone, ast.Constant) else ''
    return f'{model_type.value}{suffix}'


def _dict_call_keywords(node: ast.expr | None) -> dict[str, ast.expr]:
    """The keyword nodes of a ``dict(...)`` call, or {}."""
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict':
        return {k.arg: k.value for k in node.keywords if k.arg}
    return {}

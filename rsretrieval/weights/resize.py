"""Resize rules: checkpoint tensors whose shape follows from a size setting of the model.

A tensor that depends on the window size or on the input size (relative-position
bias tables, absolute position embeddings) can be carried over to a model built
for another size by interpolation; the loader (:mod:`rsretrieval.weights.loading`)
applies these rules to tensors whose shapes differ and reports each resizing.
The interpolation itself is timm's (``resize_rel_pos_bias_table``,
``resample_abs_pos_embed``), as timm applies it when it loads its own weights.

Buffers computed from the window (``relative_position_index``, ``attn_mask``) are
never resized: every model rebuilds them for its own window, so the loader drops
the checkpoint's copies.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import torch
from torch import nn

#: Buffers a model derives from its window size; a checkpoint's copies are dropped.
DERIVED_BUFFERS: tuple[str, ...] = ('*relative_position_index', '*attn_mask')

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ResizeRule:
    """How to carry one kind of tensor over to another shape.

    Attributes:
        name: What the rule resizes, plural, as reports show it
            (``'relative-position tables'``).
        patterns: ``fnmatch`` patterns over state-dict keys the rule applies to.
        apply: ``(value, target_shape, owner) -> (resized, change)``: ``owner`` is
            the module holding the tensor (it may know its window or grid),
            ``change`` the shape change in words (``'13x13 -> 15x15'``). Raises
            ValueError when the tensor cannot be resized (another width, heads...).
    """

    name: str
    patterns: tuple[str, ...]
    apply: Callable[[torch.Tensor, Shape, nn.Module], tuple[torch.Tensor, str]]

    def matches(self, key: str) -> bool:
        """Whether the rule applies to state-dict key ``key``."""
        return any(fnmatchcase(key, p) for p in self.patterns)


def _square_side(n: int) -> int | None:
    side = math.isqrt(n)
    return side if side * side == n else None


def _window_of(owner: nn.Module, table_len: int) -> tuple[int, int]:
    """The window a relative-position table of ``table_len`` rows is built for."""
    window = getattr(owner, 'window_size', None)
    if isinstance(window, int):
        return window, window
    if isinstance(window, Sequence) and len(window) == 2:
        return int(window[0]), int(window[1])
    side = _square_side(table_len)  # a square (2ws - 1)^2 table without extra tokens
    if side is None or side % 2 == 0:
        raise ValueError(f'cannot tell the window of a {table_len}-row table (not (2 * window - 1)^2)')
    return (side + 1) // 2, (side + 1) // 2


def _grid_text(rows: int) -> str:
    side = _square_side(rows)
    return f'{side}x{side}' if side else f'{rows} rows'


def resize_rel_pos_table(value: torch.Tensor, shape: Shape, owner: nn.Module) -> tuple[torch.Tensor, str]:
    """A ``((2ws - 1)^2, heads)`` relative-position bias table for another window.

    Uses ``timm.layers.resize_rel_pos_bias_table`` (the source window is taken
    as square, as timm does for checkpoints).

    Raises:
        ValueError: The tables differ in heads or layout.
    """
    from timm.layers import resize_rel_pos_bias_table

    if value.ndim != 2 or len(shape) != 2 or value.shape[1] != shape[1]:
        raise ValueError(f'tables differ in heads or layout ({tuple(value.shape)} vs {shape})')
    window = _window_of(owner, shape[0])
    with warnings.catch_warnings():
        # timm's interpolator trips two torch deprecation notes that say nothing about the weights
        warnings.filterwarnings('ignore', message='.*(searchsorted|non-tuple sequence).*', category=UserWarning)
        out = resize_rel_pos_bias_table(value, new_window_size=window, new_bias_shape=shape)
    return out, f'{_grid_text(value.shape[0])} -> {_grid_text(shape[0])}'


def resize_abs_pos_embed(value: torch.Tensor, shape: Shape, owner: nn.Module) -> tuple[torch.Tensor, str]:
    """A ``(1, prefix + h * w, D)`` absolute position embedding for another grid.

    The prefix tokens (class token...) are kept; the grid part is resampled with
    ``timm.layers.resample_abs_pos_embed``. The new grid is the owner's
    ``patch_embed.grid_size`` (timm ViTs), else square; the old grid is square.

    Raises:
        ValueError: Another width, or a grid that is not square.
    """
    from timm.layers import resample_abs_pos_embed

    if value.ndim != 3 or len(shape) != 3 or value.shape[-1] != shape[-1]:
        raise ValueError(f'embeddings differ in width or layout ({tuple(value.shape)} vs {shape})')
    grid = getattr(getattr(owner, 'patch_embed', None), 'grid_size', None)
    if grid is not None:
        new_hw = (int(grid[0]), int(grid[1]))
        prefix = shape[1] - new_hw[0] * new_hw[1]
    else:
        prefix = int(getattr(owner, 'num_prefix_tokens', 0))
        side = _square_side(shape[1] - prefix)
        if side is None:
            raise ValueError(f'the model grid of {shape[1] - prefix} tokens is not square')
        new_hw = (side, side)
    old_side = _square_side(value.shape[1] - prefix) if value.shape[1] > prefix >= 0 else None
    if not old_side:
        raise ValueError(f'the checkpoint grid of {value.shape[1]} tokens (prefix {prefix}) is not square')
    out = resample_abs_pos_embed(value, new_size=list(new_hw), num_prefix_tokens=prefix, verbose=False)
    kept = f', {prefix} prefix token{"s" if prefix != 1 else ""} kept' if prefix else ''
    return out, f'{old_side}x{old_side} -> {new_hw[0]}x{new_hw[1]} grid{kept}'


#: The rules the loader applies by default, first match wins.
DEFAULT_RULES: tuple[ResizeRule, ...] = (
    ResizeRule('relative-position tables', ('*relative_position_bias_table', '*.rel_bias.table'), resize_rel_pos_table),
    ResizeRule('position embeddings', ('pos_embed', '*.pos_embed'), resize_abs_pos_embed),
)


def find_rule(key: str, rules: Sequence[ResizeRule] = DEFAULT_RULES) -> ResizeRule | None:
    """The first rule that applies to ``key``, or None."""
    return next((rule for rule in rules if rule.matches(key)), None)


def is_derived_buffer(key: str) -> bool:
    """Whether ``key`` is a buffer models rebuild from their window (see :data:`DERIVED_BUFFERS`)."""
    return any(fnmatchcase(key, p) for p in DERIVED_BUFFERS)

"""Text-to-image search over an image archive with a trained model.

The names load on first use, so that the command line (:mod:`.cli`) checks its
arguments before torch is imported.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    'IMAGE_EXTENSIONS': 'archive_index',
    'ArchiveIndex': 'archive_index',
    'ArchiveIndexError': 'archive_index',
    'find_images': 'archive_index',
    'unreadable_images': 'archive_index',
    'Hit': 'render',
    'results_grid': 'render',
    'results_html': 'render',
    'results_table': 'render',
    'shorten': 'render',
    'tile_labels': 'render',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

"""Text-to-image search over an image archive with a trained model.

The names load on first use, so that the command line (:mod:`.cli`) checks its
arguments before torch is imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, _EXPORTS)

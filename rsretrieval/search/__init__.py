"""Text-to-image search over an image archive with a trained model.

The names load on first use, so that the command line (:mod:`.cli`) checks its
arguments before torch is imported.
"""

from __future__ import annotations

from rsretrieval.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        'archive_index': ('IMAGE_EXTENSIONS', 'ArchiveIndex', 'ArchiveIndexError', 'find_images', 'unreadable_images'),
        'render': ('Hit', 'results_grid', 'results_html', 'results_table', 'shorten', 'tile_labels'),
    },
)

"""Text-to-image search over an image archive with a trained model."""

from .archive_index import IMAGE_EXTENSIONS, ArchiveIndex, ArchiveIndexError, find_images, unreadable_images
from .render import Hit, results_grid, results_html, results_table, shorten, tile_labels

__all__ = [
    'IMAGE_EXTENSIONS',
    'ArchiveIndex',
    'ArchiveIndexError',
    'Hit',
    'find_images',
    'results_grid',
    'results_html',
    'results_table',
    'shorten',
    'tile_labels',
    'unreadable_images',
]

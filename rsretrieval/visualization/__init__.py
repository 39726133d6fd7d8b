"""Figures: attention heat maps (paper Fig. 7) and retrieval results (Fig. 8)."""

from .attention import BRANCHES, attention_figure, attention_heatmaps, overlay, upsample
from .retrieval_grid import (
    CaptionResult,
    caption_results,
    ground_truth_note,
    retrieval_grid,
    tile_label,
    top_images_per_caption,
)

__all__ = [
    'BRANCHES',
    'attention_figure',
    'attention_heatmaps',
    'overlay',
    'upsample',
    'CaptionResult',
    'caption_results',
    'ground_truth_note',
    'retrieval_grid',
    'tile_label',
    'top_images_per_caption',
]

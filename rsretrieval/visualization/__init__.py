"""Figures: attention heat maps (paper Fig. 7) and retrieval results (Fig. 8)."""

from .attention import BRANCHES, attention_heatmaps, overlay
from .retrieval_grid import retrieval_grid, top_images_per_caption

__all__ = ['BRANCHES', 'attention_heatmaps', 'overlay', 'retrieval_grid', 'top_images_per_caption']

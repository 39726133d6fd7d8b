"""Attention of Gswin's last block as an image heat map (the paper's Fig. 7)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rsretrieval.models.backbones.gswin import Gswin, window_reverse

BRANCHES = ('local', 'shifted', 'cross', 'cross_shifted')


def attention_heatmaps(backbone: Gswin, image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Attention received by each position of the last stage's map, per branch.

    Call after a forward pass of ``backbone``. For every branch of the last
    block, the attention weights are averaged over heads and over queries, so
    each key position gets the share of attention it receives within its
    window (window and global-window queries alike); the windows are put back
    in place (the shifted branches rolled back).

    Args:
        backbone: The Gswin that ran the forward pass.
        image_size: ``(H, W)`` of the input images.

    Returns:
        ``{branch: (B, h, w)}`` with ``(h, w)`` the last stage's map size.

    Raises:
        ValueError: A cross branch whose queries are the local windows
            (``cross_query='local'``): its keys are the global window, which
            has no position in the image.
    """
    block = backbone.stages[-1].blocks[-1]
    stride = backbone.patch_size * 2 ** (backbone.num_stages - 1)
    h, w = image_size[0] // stride, image_size[1] // stride
    heat = {}
    for name, attn in backbone.get_attention_maps().items():  # (B, nW, heads, N, N)
        if name.startswith('cross') and block.cross_attn.cross_query != 'global':
            raise ValueError(f"branch {name!r}: cross_query='local' attends to the global window, not to positions")
        ws = int(round(attn.shape[-1] ** 0.5))
        received = attn.float().mean(dim=(2, 3))  # (B, nW, N): mean over heads and queries
        grid = window_reverse(received.unsqueeze(-1), ws, h, w)[..., 0]  # (B, h, w)
        s = block.shift_size
        if s and name in ('shifted', 'cross_shifted'):
            grid = torch.roll(grid, (s, s), (1, 2))
        heat[name] = grid
    return heat


def overlay(image: np.ndarray, heat: np.ndarray | torch.Tensor, alpha: float = 0.5, cmap: str = 'jet') -> np.ndarray:
    """Blend a heat map (any size, upsampled bilinearly) over an ``(H, W, 3)`` uint8 image.

    The heat map is scaled to [0, 1] (min to max) before colouring.
    """
    import matplotlib

    heat = torch.as_tensor(heat, dtype=torch.float32)[None, None]
    heat = F.interpolate(heat, size=image.shape[:2], mode='bilinear', align_corners=False)[0, 0].numpy()
    lo, hi = float(heat.min()), float(heat.max())
    heat = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    colours = matplotlib.colormaps[cmap](heat)[..., :3]  # (H, W, 3) in [0, 1]
    blended = (1 - alpha) * image.astype(np.float32) / 255 + alpha * colours
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)

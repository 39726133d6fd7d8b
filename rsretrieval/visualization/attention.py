"""Attention of Gswin's last block as an image heat map (the paper's Fig. 7)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from rsretrieval.models.backbones.gswin import Gswin, window_reverse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def upsample(heat: np.ndarray | torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A ``(h, w)`` heat map resized bilinearly to ``size = (H, W)`` (values stay in its range)."""
    heat = torch.as_tensor(heat, dtype=torch.float32).detach().cpu()[None, None]
    return F.interpolate(heat, size=size, mode='bilinear', align_corners=False)[0, 0].numpy()


def overlay(
    image: np.ndarray,
    heat: np.ndarray | torch.Tensor,
    alpha: float = 0.5,
    cmap: str = 'jet',
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Blend a heat map (any size, upsampled bilinearly) over an ``(H, W, 3)`` uint8 image.

    Args:
        image: The image, at the resolution the result should have.
        heat: ``(h, w)`` heat map.
        alpha: Weight of the coloured heat map in the blend.
        cmap: A matplotlib colour map name.
        vmin, vmax: Values coloured as the two ends of ``cmap``; ``None``: the
            map's own minimum and maximum.

    Returns:
        ``(H, W, 3)`` uint8 blend.
    """
    import matplotlib

    heat = upsample(heat, image.shape[:2])
    lo = float(heat.min()) if vmin is None else vmin
    hi = float(heat.max()) if vmax is None else vmax
    heat = np.clip((heat - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(heat)
    colours = matplotlib.colormaps[cmap](heat)[..., :3]  # (H, W, 3) in [0, 1]
    blended = (1 - alpha) * image.astype(np.float32) / 255 + alpha * colours
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


# Layout of attention_figure, in pixels: outer margin, title band, gap between panels, gap
# above the colour bar (under the panels), its height, and room for its ticks and label.
_MARGIN, _TITLE, _GAP, _BAR_GAP, _BAR, _BAR_TEXT = 8, 26, 10, 8, 12, 34
COLORBAR_LABEL = 'share of attention received'


def panel_scale(height: int, width: int, min_side: int = 128) -> int:
    """Integer enlargement of an image in :func:`attention_figure`.

    1 for images whose longer side has ``min_side`` pixels or more; smaller
    images are repeated pixel for pixel until it does, so that titles fit.
    """
    return max(1, math.ceil(min_side / max(height, width)))


def shared_scale(maps: Iterable[np.ndarray]) -> tuple[float, float]:
    """``(lo, hi)``: the lowest and highest value over all ``maps`` (``(0, 1)`` without maps).

    Uniform attention gives ``lo == hi``; the scale is then widened around it, so
    that it stays visible and a colour map can be normalised by it.
    """
    maps = list(maps)
    lo = min((float(m.min()) for m in maps), default=0.0)
    hi = max((float(m.max()) for m in maps), default=1.0)
    if hi <= lo:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-6), hi + 0.5 * max(abs(hi), 1e-6)
    return lo, hi


def attention_figure(
    image: np.ndarray,
    heat: Mapping[str, np.ndarray | torch.Tensor],
    alpha: float = 0.5,
    cmap: str = 'jet',
    dpi: int = 100,
    min_side: int = 128,
) -> Figure:
    """Fig. 7 for one image: the image, then one titled overlay per branch, and a colour bar.

    Every heat map is upsampled to the image's own resolution (pass the source
    image, not the model's resized input) and blended over it. All panels share
    one colour scale, from the lowest to the highest value over the branches, so
    that branches can be compared; the colour bar gives it in the maps' unit,
    the share of its window's attention a position receives (``1 / ws^2`` where
    attention is uniform). Each panel shows the image at
    :func:`panel_scale` times its size, pixel for pixel.

    Args:
        image: ``(H, W, 3)`` uint8 source image.
        heat: ``{branch: (h, w) heat map}``, in panel order (see
            :func:`attention_heatmaps`).
        alpha: Weight of the coloured heat map in the blend.
        cmap: A matplotlib colour map name.
        dpi: Resolution of the figure (the layout is fixed in pixels).
        min_side: See :func:`panel_scale`.

    Returns:
        A matplotlib ``Figure`` (no pyplot state): axes ``image``, one per
        branch titled with its name, then the colour bar's.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    h, w = image.shape[:2]
    maps = {name: upsample(m, (h, w)) for name, m in heat.items()}
    lo, hi = shared_scale(maps.values())
    s = panel_scale(h, w, min_side)
    pw, ph, n = w * s, h * s, 1 + len(maps)
    row = n * pw + (n - 1) * _GAP
    width, height = 2 * _MARGIN + row, _TITLE + ph + _BAR_GAP + _BAR + _BAR_TEXT
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)

    def box(left: float, bottom: float, box_width: float, box_height: float) -> list[float]:
        return [left / width, bottom / height, box_width / width, box_height / height]  # pixels -> fractions

    panels = [('image', image)] + [(name, overlay(image, m, alpha, cmap, lo, hi)) for name, m in maps.items()]
    for i, (title, pixels) in enumerate(panels):
        ax = fig.add_axes(box(_MARGIN + i * (pw + _GAP), _BAR_TEXT + _BAR + _BAR_GAP, pw, ph))
        ax.imshow(pixels, interpolation='nearest')
        ax.set_title(title, fontsize=10, pad=4)
        ax.set_axis_off()
    cax = fig.add_axes(box(_MARGIN, _BAR_TEXT, row, _BAR))
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), cax=cax, orientation='horizontal')
    bar.set_label(COLORBAR_LABEL, fontsize=8, labelpad=2)
    bar.ax.tick_params(labelsize=7, pad=1)
    return fig

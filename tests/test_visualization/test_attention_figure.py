"""The Fig. 7 figure: titled panels, a colour bar, the source image's own resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsretrieval.registry import BACKBONES
from rsretrieval.visualization import BRANCHES, attention_figure, attention_heatmaps, overlay, upsample
from rsretrieval.visualization.attention import COLORBAR_LABEL, panel_scale


@pytest.fixture(scope='module')
def heat() -> dict[str, torch.Tensor]:
    """Heat maps of every branch of a tiny Gswin run on 64 px inputs (an 8 x 8 last stage)."""
    torch.manual_seed(0)
    net = BACKBONES.build(
        dict(type='Gswin', img_size=64, patch_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4)
    ).eval()
    with torch.no_grad():
        net(torch.randn(1, 3, 64, 64))
    return {name: grid[0] for name, grid in attention_heatmaps(net, (64, 64)).items()}


def _source(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_one_titled_panel_per_branch_and_a_colour_bar(heat):
    fig = attention_figure(_source(150, 200), {b: heat[b] for b in BRANCHES})
    *panels, cbar = fig.axes
    assert [ax.get_title() for ax in panels] == ['image', *BRANCHES]
    assert cbar.get_xlabel() == COLORBAR_LABEL  # the horizontal colour bar under the panels
    lo, hi = cbar.get_xlim()
    values = np.stack([upsample(heat[b], (150, 200)) for b in BRANCHES])  # one scale for every branch
    assert (lo, hi) == pytest.approx((values.min(), values.max()))


def test_panels_follow_the_source_image_not_the_model_input(heat):
    h, w = 150, 200  # the model ran on 64 x 64
    fig = attention_figure(_source(h, w), {'cross': heat['cross'], 'local': heat['local']})
    fig.draw_without_rendering()
    panels = fig.axes[:-1]
    assert [ax.get_title() for ax in panels] == ['image', 'cross', 'local']
    for ax in panels:
        assert ax.images[0].get_array().shape == (h, w, 3)
        box = ax.get_window_extent()
        assert (round(box.width), round(box.height)) == (w, h)  # drawn pixel for pixel
    large = attention_figure(_source(2 * h, 2 * w), {'cross': heat['cross'], 'local': heat['local']})
    (fw, fh), (lw, lh) = fig.get_size_inches(), large.get_size_inches()
    assert lw > fw and lh > fh


def test_small_images_are_enlarged_by_an_integer_factor(heat):
    assert panel_scale(32, 32) == 4 and panel_scale(256, 256) == 1 and panel_scale(40, 100) == 2
    fig = attention_figure(_source(32, 48), {'local': heat['local']})
    fig.draw_without_rendering()
    image_ax, overlay_ax, _ = fig.axes
    assert overlay_ax.images[0].get_array().shape == (32, 48, 3)
    box = overlay_ax.get_window_extent()
    assert (round(box.width), round(box.height)) == (48 * 3, 32 * 3)


def test_overlay_uses_a_shared_scale_when_given():
    image = np.full((16, 16, 3), 128, np.uint8)
    flat = np.full((4, 4), 0.25)
    assert np.array_equal(overlay(image, flat), overlay(image, np.zeros((4, 4))))  # own min = max: one colour
    low, high = overlay(image, flat, vmin=0.0, vmax=1.0), overlay(image, flat * 4, vmin=0.0, vmax=1.0)
    assert not np.array_equal(low, high)  # 0.25 and 1.0 on one scale differ
    assert upsample(torch.arange(4.0).view(2, 2), (6, 9)).shape == (6, 9)

"""The search results grid: rank and score apart, the file name under each tile."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rsretrieval.search import Hit, results_grid, shorten, tile_labels
from rsretrieval.search.render import RANK_SCORE_GAP


def test_tile_labels_separate_rank_score_and_name():
    assert tile_labels(Hit(1, 0.38412, '/data/archive/deep/planted.tif')) == ('#1', '0.384', 'planted.tif')
    assert tile_labels(Hit(10, -0.05, 'relative/x.png')) == ('#10', '-0.050', 'x.png')


def test_shorten_keeps_start_and_end_within_the_width():
    def measure(text: str) -> float:
        return 6.0 * len(text)

    assert shorten('short.tif', 156, measure) == 'short.tif'
    name = 'sentinel2_tile_2020_05_12_row0042_col0017.tif'
    short = shorten(name, 156, measure)
    assert measure(short) <= 156 and len(short) == 26 and '...' in short
    head, tail = short.split('...')
    assert name.startswith(head) and name.endswith(tail) and tail.endswith('col0017.tif') and len(tail) > len(head)
    assert shorten(name, 10, measure) == '...'


def _dark_columns(strip: np.ndarray) -> np.ndarray:
    return np.flatnonzero((strip < 128).any(axis=(0, 2)))


def test_grid_tiles_show_rank_and_score_apart_and_the_file_name(tmp_path, demo_root):
    images = sorted((demo_root / 'images').glob('*.png'))[:3]
    long_name = tmp_path / ('a_very_long_archive_file_name_' * 3 + 'end.png')
    Image.open(images[2]).save(long_name)
    hits = [Hit(1, 0.384, str(images[0])), Hit(2, 0.25, str(images[1])), Hit(3, 0.1, str(long_name))]
    grid = results_grid([('planes', hits), ('a river', hits[:2])], tile=160, label=18)
    assert grid.size == (3 * 160, 2 * (160 + 3 * 18))
    pixels = np.asarray(grid)
    top = 18 + 160  # under the first row's images
    for c in range(3):
        tile = pixels[:, c * 160 : (c + 1) * 160]
        cols = _dark_columns(tile[top : top + 18])
        gaps = np.diff(cols)
        # '#1', a blank clearly wider than a space, the score; far from the next tile's rank
        assert cols[0] < 6 and gaps.max() >= RANK_SCORE_GAP and cols[-1] < 100, (c, cols)
        name_cols = _dark_columns(tile[top + 18 : top + 36])  # dim grey, darker than 128
        assert len(name_cols) > 10 and name_cols[-1] < 160 - 1, (c, name_cols)
    # the third tile's name is shortened to fit; the second row leaves its third tile blank
    assert (pixels[196 + 18 + 160 :, 2 * 160 :] == 255).all()

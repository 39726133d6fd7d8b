"""The Fig. 8 grid: rank and score on every tile, the ground truth's rank when outside the top K."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rsretrieval.visualization import caption_results, ground_truth_note, retrieval_grid, tile_label

# 5 images x 3 captions; caption 0 -> image 0 (rank 2), 1 -> image 0 (rank 5), 2 -> image 2 (rank 2: tied
# with image 0, which ranks first as the lower index)
SIMS = np.array(
    [
        [0.8, 0.1, 0.5],
        [0.9, 0.7, 0.4],
        [0.3, 0.6, 0.5],
        [0.2, 0.5, 0.1],
        [0.1, 0.2, 0.3],
    ],
    dtype=np.float32,
)
TXT2IMG = [0, 0, 2]


def test_caption_results_rank_score_and_ground_truth():
    results = caption_results(SIMS, TXT2IMG, [0, 1, 2], topk=3)
    assert [r.images for r in results] == [[1, 0, 2], [1, 2, 3], [0, 2, 1]]  # ties: lower index first
    assert results[0].scores == pytest.approx([0.9, 0.8, 0.3])
    assert [r.matches for r in results] == [[False, True, False], [False, False, False], [False, True, False]]
    assert [r.gt_rank for r in results] == [2, 5, 2]
    assert [ground_truth_note(r) for r in results] == [None, 'ground truth at rank 5', None]
    assert tile_label(1, 0.9) == '#1  0.900' and tile_label(12, -0.04567) == '#12  -0.046'


def test_grid_draws_rank_score_and_note(tmp_path, monkeypatch):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f'{i}.png')
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(paths[-1])
    results = caption_results(SIMS, TXT2IMG, [0, 1], topk=3)
    labels = [[tile_label(k, s) for k, s in enumerate(r.scores, start=1)] for r in results]
    notes = [ground_truth_note(r) for r in results]
    drawn = []
    text = ImageDraw.ImageDraw.text

    def spy(self, xy, content, *args, **kwargs):
        drawn.append(content)
        return text(self, xy, content, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, 'text', spy)
    grid = retrieval_grid(
        ['query 0', 'query 1'], [[paths[i] for i in r.images] for r in results], [r.matches for r in results],
        tile=64, labels=labels, notes=notes,
    )  # fmt: skip
    assert grid.size == (3 * 64, 2 * (40 + 64))
    tiles = [d for d in drawn if d.startswith('#')]
    assert tiles == ['#1  0.900', '#2  0.800', '#3  0.300', '#1  0.700', '#2  0.600', '#3  0.500']
    assert drawn.count('ground truth at rank 5') == 1  # only query 1 misses its image in the top 3

"""Top images per text query with ground-truth frames (the paper's Fig. 8)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rsretrieval.datasets.transforms import read_rgb

GREEN, RED = (0, 170, 0), (220, 0, 0)


def retrieval_grid(
    queries: Sequence[str],
    ranked_images: Sequence[Sequence[str]],
    is_match: Sequence[Sequence[bool]],
    tile: int = 160,
    frame: int = 5,
    text_height: int = 40,
) -> Image.Image:
    """One row per query: its text above, its ranked images left to right, each in a
    green frame (a ground-truth match) or a red one.

    Size: ``(k * tile, len(queries) * (text_height + tile))`` with ``k`` the
    images per row.
    """
    k = max(len(r) for r in ranked_images)
    row_h = text_height + tile
    grid = Image.new('RGB', (k * tile, len(queries) * row_h), 'white')
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    chars = max(20, k * tile // 7)
    for r, (query, paths, matches) in enumerate(zip(queries, ranked_images, is_match)):
        top = r * row_h
        lines = textwrap.wrap(query, chars)[: max(1, text_height // 12)]
        draw.multiline_text((4, top + 2), '\n'.join(lines), fill='black', font=font, spacing=1)
        for c, (path, match) in enumerate(zip(paths, matches)):
            x, y = c * tile, top + text_height
            draw.rectangle([x, y, x + tile - 1, y + tile - 1], fill=GREEN if match else RED)
            inner = tile - 2 * frame
            image = Image.fromarray(read_rgb(path)).resize((inner, inner), Image.BILINEAR)
            grid.paste(image, (x + frame, y + frame))
    return grid


def top_images_per_caption(
    sims_t2i: np.ndarray, txt2img: Sequence[int], captions: Sequence[int], topk: int
) -> tuple[list[list[int]], list[list[bool]]]:
    """For each caption index: its ``topk`` images by descending score (ties: lower
    index first, as the metrics rank) and whether each is the caption's image."""
    ranked, matches = [], []
    for t in captions:
        order = np.argsort(-sims_t2i[:, t], kind='stable')[:topk]
        ranked.append(order.tolist())
        matches.append([int(i) == int(txt2img[t]) for i in order])
    return ranked, matches

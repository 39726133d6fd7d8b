"""Top images per text query with ground-truth frames, ranks and scores (the paper's Fig. 8)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rsretrieval.datasets.transforms import read_rgb

GREEN, RED = (0, 170, 0), (220, 0, 0)


@dataclass
class CaptionResult:
    """The top images of one caption query.

    Attributes:
        caption: Caption index (column of the similarity matrix).
        images: Image indices, best first.
        scores: Their scores in the matrix.
        matches: Whether each is the caption's own image.
        gt_rank: 1-based rank of the caption's own image among all images.
    """

    caption: int
    images: list[int]
    scores: list[float]
    matches: list[bool]
    gt_rank: int


def caption_results(
    sims_t2i: np.ndarray, txt2img: Sequence[int], captions: Sequence[int], topk: int
) -> list[CaptionResult]:
    """For each caption index: its ``topk`` images by descending score (ties: lower
    index first, as the metrics rank), their scores, and where its own image ranks.

    Args:
        sims_t2i: ``(N_img, N_txt)`` scores.
        txt2img: The image of every caption.
        captions: Caption indices to rank images for.
        topk: Images kept per caption.
    """
    results = []
    for t in captions:
        column = sims_t2i[:, t]
        order = np.argsort(-column, kind='stable')
        gt = int(txt2img[t])
        top = order[:topk]
        results.append(
            CaptionResult(
                caption=int(t),
                images=top.tolist(),
                scores=[float(column[i]) for i in top],
                matches=[int(i) == gt for i in top],
                gt_rank=int(np.flatnonzero(order == gt)[0]) + 1,
            )
        )
    return results


def top_images_per_caption(
    sims_t2i: np.ndarray, txt2img: Sequence[int], captions: Sequence[int], topk: int
) -> tuple[list[list[int]], list[list[bool]]]:
    """For each caption index: its ``topk`` images by descending score (ties: lower
    index first, as the metrics rank) and whether each is the caption's image."""
    results = caption_results(sims_t2i, txt2img, captions, topk)
    return [r.images for r in results], [r.matches for r in results]


def tile_label(rank: int, score: float) -> str:
    """Text drawn on a tile: its 1-based rank and its score, e.g. ``'#3  0.412'``."""
    return f'#{rank}  {score:.3f}'


def ground_truth_note(result: CaptionResult) -> str | None:
    """``'ground truth at rank 37'`` when the caption's image is not among the shown
    images, else ``None`` (its tile is framed green)."""
    return None if result.gt_rank <= len(result.images) else f'ground truth at rank {result.gt_rank}'


def retrieval_grid(
    queries: Sequence[str],
    ranked_images: Sequence[Sequence[str]],
    is_match: Sequence[Sequence[bool]],
    tile: int = 160,
    frame: int = 5,
    text_height: int = 40,
    labels: Sequence[Sequence[str]] | None = None,
    notes: Sequence[str | None] | None = None,
) -> Image.Image:
    """One row per query: its text above, its ranked images left to right, each in a
    green frame (a ground-truth match) or a red one.

    Size: ``(k * tile, len(queries) * (text_height + tile))`` with ``k`` the
    images per row.

    Args:
        queries: Text of each row.
        ranked_images: Image paths of each row, best first.
        is_match: Whether each image is a ground-truth match.
        tile: Side of a tile (image and frame) in pixels.
        frame: Width of the frame.
        text_height: Height of the text band above each row.
        labels: Text drawn in the top-left corner of each tile (see
            :func:`tile_label`); ``None``: none.
        notes: A line per row drawn in red under its text (see
            :func:`ground_truth_note`); ``None`` entries draw nothing.
    """
    k = max(len(r) for r in ranked_images)
    row_h = text_height + tile
    grid = Image.new('RGB', (k * tile, len(queries) * row_h), 'white')
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    chars = max(20, k * tile // 7)
    for r, (query, paths, matches) in enumerate(zip(queries, ranked_images, is_match)):
        top = r * row_h
        note = notes[r] if notes is not None else None
        _draw_text_band(draw, font, query, note, top, chars, text_height)
        for c, (path, match) in enumerate(zip(paths, matches)):
            x, y = c * tile, top + text_height
            draw.rectangle([x, y, x + tile - 1, y + tile - 1], fill=GREEN if match else RED)
            inner = tile - 2 * frame
            image = Image.fromarray(read_rgb(path)).resize((inner, inner), Image.BILINEAR)
            grid.paste(image, (x + frame, y + frame))
            if labels is not None:
                _draw_label(draw, font, labels[r][c], x + frame, y + frame)
    return grid


def _draw_text_band(
    draw: ImageDraw.ImageDraw, font, query: str, note: str | None, top: int, chars: int, text_height: int
) -> None:
    """The query's wrapped text, then ``note`` in red, in the band above a row."""
    n_lines = max(1, text_height // 12)
    lines = textwrap.wrap(query, chars)[: max(1, n_lines - (note is not None))]
    draw.multiline_text((4, top + 2), '\n'.join(lines), fill='black', font=font, spacing=1)
    if note is not None:
        y = top + 2 + min(len(lines), n_lines - 1) * 12
        draw.text((4, y), note, fill=RED, font=font)


def _draw_label(draw: ImageDraw.ImageDraw, font, text: str, x: int, y: int) -> None:
    """White ``text`` on a black box at ``(x, y)``."""
    _, _, right, lower = draw.textbbox((x + 3, y + 2), text, font=font)
    draw.rectangle([x, y, right + 3, lower + 2], fill='black')
    draw.text((x + 3, y + 2), text, fill='white', font=font)

"""Showing search results: a text table, a self-contained HTML page, a PNG grid."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageDraw, ImageFont

from rsretrieval.datasets.transforms import read_rgb

RANK_SCORE_GAP = 10  # pixels between a tile's rank and its score


@dataclass
class Hit:
    """One result: its rank (1-based), score, and what it is (an image path or a caption)."""

    rank: int
    score: float
    item: str


def results_table(query: str, hits: Sequence[Hit]) -> str:
    """A markdown table of one query's results."""
    lines = [f'query: {query}', '', '| rank | score | result |', '|---|---|---|']
    lines += [f'| {h.rank} | {h.score:.4f} | {h.item} |' for h in hits]
    return '\n'.join(lines)


def _thumbnail(path: str, size: int) -> Image.Image:
    image = Image.fromarray(read_rgb(path))
    image.thumbnail((size, size))
    return image


def _data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format='JPEG', quality=85)
    return 'data:image/jpeg;base64,' + base64.b64encode(buf.getvalue()).decode('ascii')


def results_html(
    results: Sequence[tuple[str, Sequence[Hit]]], images: bool, query_images: bool = False, thumb: int = 192
) -> str:
    """One self-contained page (thumbnails embedded) for several queries.

    Args:
        results: ``(query, hits)`` per query.
        images: The hits are image paths (text-to-image) rather than captions.
        query_images: The queries are image paths (image-to-text).
        thumb: Thumbnail size in pixels.
    """
    parts = [
        '<!doctype html><html><head><meta charset="utf-8"><title>rsretrieval search</title>',
        '<style>body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:4px;'
        f'text-align:center;font-size:12px;max-width:{thumb}px;word-wrap:break-word}}'
        'td{padding:2px 8px}</style></head><body>',
    ]
    for query, hits in results:
        if query_images:
            parts.append(f'<h3><img src="{_data_uri(_thumbnail(query, thumb))}" alt=""> {html.escape(query)}</h3>')
        else:
            parts.append(f'<h3>{html.escape(query)}</h3>')
        if images:
            for h in hits:
                parts.append(
                    f'<figure><img src="{_data_uri(_thumbnail(h.item, thumb))}" alt="">'
                    f'<figcaption>#{h.rank} · {h.score:.3f}<br>{html.escape(h.item)}</figcaption></figure>'
                )
        else:
            rows = ''.join(
                f'<tr><td>{h.rank}</td><td>{h.score:.4f}</td><td>{html.escape(h.item)}</td></tr>' for h in hits
            )
            parts.append(f'<table>{rows}</table>')
    parts.append('</body></html>')
    return '\n'.join(parts)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at ``size`` px (its bitmap font, whose space is 2 px
    wide, where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def tile_labels(hit: Hit) -> tuple[str, str, str]:
    """The texts under a grid tile: rank (``'#1'``), score (``'0.384'``) and the file name."""
    return f'#{hit.rank}', f'{hit.score:.3f}', PurePath(hit.item).name


def shorten(text: str, width: float, measure: Callable[[str], float]) -> str:
    """``text``, or its start and its (longer) end around ``'...'``, ``measure``-d no wider than ``width``.

    The end is kept longer as file names differ most at their end (numbers, extension).
    """
    if measure(text) <= width:
        return text
    for keep in range(len(text) - 1, 0, -1):
        head = keep // 3
        short = text[:head] + '...' + text[len(text) - (keep - head) :]
        if measure(short) <= width:
            return short
    return '...'


def results_grid(results: Sequence[tuple[str, Sequence[Hit]]], tile: int = 160, label: int = 18) -> Image.Image:
    """A PNG-ready grid: one row per text query, its top images left to right.

    The query text is written above its row; under each image, its rank and
    its score, ``RANK_SCORE_GAP`` pixels apart (a space alone is 2-3 px wide:
    ``'#1 0.384'`` read ``#10.384``), then its file name
    (shortened in the middle when wider than the tile). Size: ``(cols * tile, rows * (tile + 3 * label))``.
    """
    cols = max(len(hits) for _, hits in results)
    row_h = tile + 3 * label
    grid = Image.new('RGB', (cols * tile, len(results) * row_h), 'white')
    draw = ImageDraw.Draw(grid)
    font = _font(max(10, label - 5))

    def measure(text: str) -> float:
        return draw.textlength(text, font=font)

    for r, (query, hits) in enumerate(results):
        top = r * row_h
        draw.text((2, top + 2), shorten(query, cols * tile - 4, measure), fill='black', font=font)
        for c, h in enumerate(hits):
            left = c * tile
            image = _thumbnail(h.item, tile)
            grid.paste(image, (left + (tile - image.width) // 2, top + label + (tile - image.height) // 2))
            rank, score, name = tile_labels(h)
            y = top + label + tile + 2
            draw.text((left + 2, y), rank, fill='black', font=font)
            draw.text((left + 2 + measure(rank) + RANK_SCORE_GAP, y), score, fill='black', font=font)
            draw.text((left + 2, y + label), shorten(name, tile - 4, measure), fill='dimgray', font=font)
    return grid

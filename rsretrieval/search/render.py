"""Showing search results: a text table, a self-contained HTML page, a PNG grid."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from rsretrieval.datasets.transforms import read_rgb


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


def results_grid(results: Sequence[tuple[str, Sequence[Hit]]], tile: int = 160, label: int = 18) -> Image.Image:
    """A PNG-ready grid: one row per text query, its top images left to right, rank and score under each.

    The query text is written above its row. Size: ``(cols * tile, rows * (tile + 2 * label))``.
    """
    cols = max(len(hits) for _, hits in results)
    row_h = tile + 2 * label
    grid = Image.new('RGB', (cols * tile, len(results) * row_h), 'white')
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for r, (query, hits) in enumerate(results):
        top = r * row_h
        draw.text((2, top + 2), query[: tile * cols // 7], fill='black', font=font)
        for c, h in enumerate(hits):
            image = _thumbnail(h.item, tile)
            x = c * tile + (tile - image.width) // 2
            grid.paste(image, (x, top + label + (tile - image.height) // 2))
            draw.text((c * tile + 2, top + label + tile + 2), f'#{h.rank} {h.score:.3f}', fill='black', font=font)
    return grid

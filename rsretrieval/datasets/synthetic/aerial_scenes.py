"""A deterministic synthetic aerial-scene caption dataset (the embedded demo).

Each image is a land-cover background (farmland, water, forest, desert or a
residential area) with one or two groups of objects. A group has a kind
(planes, storage tanks, buildings, ships, playgrounds or roads), a count, a
colour and a position. Five captions per image describe the same scene with
different templates and synonyms. Scenes share their vocabulary, so a model has
to read counts, colours and positions to tell them apart: retrieval is
learnable but not trivial.

The dataset is written in Karpathy JSON (``dataset_demo.json``) with PNG images
under ``images/``; the same arguments always give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BACKGROUNDS: dict[str, tuple[str, ...]] = {
    'farmland': ('farmland', 'cropland', 'fields'),
    'water': ('water', 'sea', 'lake'),
    'forest': ('forest', 'woodland', 'dense trees'),
    'desert': ('desert', 'bare land', 'sand'),
    'residential': ('residential area', 'town', 'urban area'),
}
#: kind -> (singular synonyms, plural synonyms)
OBJECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'plane': (('plane', 'airplane', 'aircraft'), ('planes', 'airplanes', 'aircraft')),
    'tank': (('storage tank', 'oil tank', 'tank'), ('storage tanks', 'oil tanks', 'tanks')),
    'building': (('building', 'house', 'building'), ('buildings', 'houses', 'buildings')),
    'ship': (('ship', 'boat', 'vessel'), ('ships', 'boats', 'vessels')),
    'playground': (('playground', 'sports field', 'running track'), ('playgrounds', 'sports fields', 'running tracks')),
    'road': (('road', 'street', 'road'), ('roads', 'streets', 'roads')),
}
COLOURS: dict[str, tuple[int, int, int]] = {
    'white': (236, 236, 232),
    'red': (196, 42, 38),
    'blue': (40, 76, 204),
    'yellow': (232, 200, 36),
    'black': (28, 28, 30),
}
COLOURED = ('plane', 'tank', 'building', 'ship')
COUNT_WORDS = ('zero', 'one', 'two', 'three', 'four')
#: position -> (phrases, box as fractions x0, y0, x1, y1)
POSITIONS: dict[str, tuple[tuple[str, ...], tuple[float, float, float, float]]] = {
    'top': (('at the top', 'in the upper part', 'near the top edge'), (0.08, 0.04, 0.92, 0.34)),
    'bottom': (('at the bottom', 'in the lower part', 'near the bottom edge'), (0.08, 0.66, 0.92, 0.96)),
    'left': (('on the left', 'on the left side', 'along the left edge'), (0.04, 0.08, 0.34, 0.92)),
    'right': (('on the right', 'on the right side', 'along the right edge'), (0.66, 0.08, 0.96, 0.92)),
    'center': (('in the center', 'in the middle', 'at the center'), (0.28, 0.28, 0.72, 0.72)),
}
POSITION_PAIRS = (
    ('top', 'bottom'),
    ('left', 'right'),
    ('center', 'top'),
    ('center', 'bottom'),
    ('center', 'left'),
    ('center', 'right'),
)


@dataclass(frozen=True)
class ObjectGroup:
    kind: str
    count: int
    colour: str | None
    position: str


@dataclass(frozen=True)
class Scene:
    background: str
    groups: tuple[ObjectGroup, ...]


# ----------------------------------------------------------------- sampling
def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw a random scene: ships only on water, everything else on land."""
    background = str(rng.choice(list(BACKGROUNDS)))
    n_groups = 1 if rng.random() < 0.4 else 2
    if n_groups == 1:
        positions: tuple[str, ...] = (str(rng.choice(list(POSITIONS))),)
    else:
        positions = POSITION_PAIRS[rng.integers(len(POSITION_PAIRS))]
        if rng.random() < 0.5:
            positions = positions[::-1]
    kinds = ['ship'] if background == 'water' else ['plane', 'tank', 'building', 'playground', 'road']
    groups = []
    for position in positions:
        kind = str(rng.choice(kinds))
        if kind == 'road' and position == 'center':
            kind = 'tank'
        max_count = 2 if kind in ('road', 'playground') else 4
        colour = str(rng.choice(list(COLOURS))) if kind in COLOURED else None
        groups.append(ObjectGroup(kind, int(rng.integers(1, max_count + 1)), colour, position))
    return Scene(background, tuple(groups))


# ---------------------------------------------------------------- captions
def _noun(group: ObjectGroup, variant: int) -> str:
    singular, plural = OBJECTS[group.kind]
    return (singular if group.count == 1 else plural)[variant % 3]


def _group_phrase(group: ObjectGroup, variant: int, numeral: bool = False) -> str:
    count = str(group.count) if numeral else ('a' if group.count == 1 and variant % 2 else COUNT_WORDS[group.count])
    colour = f'{group.colour} ' if group.colour else ''
    return f'{count} {colour}{_noun(group, variant)}'


def _where(group: ObjectGroup, variant: int) -> str:
    return POSITIONS[group.position][0][variant % 3]


def scene_captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """Five differently worded captions of ``scene``."""
    bg = BACKGROUNDS[scene.background]
    v = [int(x) for x in rng.integers(0, 3, size=10)]
    g = scene.groups
    parts = [f'{_group_phrase(x, v[i])} {_where(x, v[i + 2])}' for i, x in enumerate(g)]
    first, rest = parts[0], parts[1:]
    caps = [
        f'an aerial image of {bg[v[4]]} with {" and ".join(parts)}',
        f'there {"is" if g[0].count == 1 else "are"} {first} of this {bg[v[5]]} scene'
        + (f' while {rest[0]}' if rest else ''),
        f'{bg[v[6]]} with {_group_phrase(g[0], v[7], numeral=True)} {_where(g[0], v[8])}'
        + (f' and {_group_phrase(g[1], v[9], numeral=True)} {_where(g[1], v[0])}' if len(g) > 1 else ''),
        f'{", ".join(reversed(parts))} can be seen in the {bg[v[1]]}',
        f'we see {bg[v[2]]} where {" , ".join(parts)}',
    ]
    return caps


# ----------------------------------------------------------------- drawing
def _noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    coarse = rng.normal(0, 1, (size // 8 + 1, size // 8 + 1))
    up = np.kron(coarse, np.ones((8, 8)))[:size, :size]
    return up * scale + rng.normal(0, scale * 0.5, (size, size))


def _draw_background(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    base = {
        'farmland': (108, 140, 62),
        'water': (38, 82, 128),
        'forest': (34, 78, 40),
        'desert': (206, 178, 128),
        'residential': (132, 130, 126),
    }[kind]
    arr = np.empty((size, size, 3), dtype=np.float32)
    arr[:] = base
    if kind == 'farmland':
        step = int(rng.integers(10, 18))
        for x0 in range(0, size, step):
            for y0 in range(0, size, step * 2):
                arr[y0 : y0 + step * 2, x0 : x0 + step] += rng.normal(0, 18, 3)
    elif kind == 'water':
        yy = np.arange(size)[:, None]
        arr += (np.sin(yy / rng.uniform(2.5, 4.0) + rng.uniform(0, 6)) * 6)[..., None]
    elif kind == 'forest':
        arr += (_noise(rng, size, 14)[..., None]) * np.array([0.6, 1.0, 0.6])
    elif kind == 'desert':
        xx = np.arange(size)[None, :] + np.arange(size)[:, None] * 0.4
        arr += (np.sin(xx / rng.uniform(5, 9)) * 10)[..., None]
    else:
        step = int(rng.integers(16, 24))
        arr[::step] += 40
        arr[:, ::step] += 40
    arr += _noise(rng, size, 5)[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _rotated(points: list[tuple[float, float]], cx: float, cy: float, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _draw_object(
    draw: ImageDraw.ImageDraw,
    kind: str,
    colour: tuple[int, int, int],
    cx: float,
    cy: float,
    unit: float,
    rng: np.random.Generator,
) -> None:
    shadow = (20, 20, 20)
    angle = float(rng.uniform(0, 2 * math.pi))
    if kind == 'plane':
        body = [(-7, -1), (7, -1), (7, 1), (-7, 1)]
        wings = [(-1, -7), (2, -7), (2, 7), (-1, 7)]
        tail = [(-7, -3), (-5, -3), (-5, 3), (-7, 3)]
        for shape in (body, wings, tail):
            pts = [(x * unit / 7, y * unit / 7) for x, y in shape]
            draw.polygon(_rotated(pts, cx + 1, cy + 1, angle), fill=shadow)
            draw.polygon(_rotated(pts, cx, cy, angle), fill=colour)
    elif kind == 'tank':
        r = unit * 0.45
        draw.ellipse([cx - r + 1, cy - r + 1, cx + r + 1, cy + r + 1], fill=shadow)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour, outline=(90, 90, 90))
    elif kind == 'building':
        w, h = unit * 0.55, unit * 0.4
        draw.rectangle([cx - w + 2, cy - h + 2, cx + w + 2, cy + h + 2], fill=shadow)
        draw.rectangle([cx - w, cy - h, cx + w, cy + h], fill=colour)
    elif kind == 'ship':
        hull = [(-7, -1.6), (5, -1.6), (7.5, 0), (5, 1.6), (-7, 1.6)]
        wake = [(-14, -0.6), (-7, -0.6), (-7, 0.6), (-14, 0.6)]
        draw.polygon(_rotated([(x * unit / 7, y * unit / 7) for x, y in wake], cx, cy, angle), fill=(200, 215, 225))
        draw.polygon(_rotated([(x * unit / 7, y * unit / 7) for x, y in hull], cx, cy, angle), fill=colour)
    elif kind == 'playground':
        w, h = unit * 1.1, unit * 0.65
        draw.ellipse([cx - w, cy - h, cx + w, cy + h], fill=(170, 70, 50))
        draw.ellipse([cx - w * 0.7, cy - h * 0.55, cx + w * 0.7, cy + h * 0.55], fill=(60, 150, 70))


def _place(
    n: int, box: tuple[float, float, float, float], size: int, gap: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = (v * size for v in box)
    placed: list[tuple[float, float]] = []
    for _ in range(200):
        if len(placed) == n:
            break
        p = (float(rng.uniform(x0 + gap / 2, x1 - gap / 2)), float(rng.uniform(y0 + gap / 2, y1 - gap / 2)))
        if all(math.dist(p, q) >= gap for q in placed):
            placed.append(p)
    while len(placed) < n:  # a crowded box: fall back to a tidy row
        placed.append((x0 + (x1 - x0) * (len(placed) + 0.5) / n, (y0 + y1) / 2))
    return placed


def render_scene(scene: Scene, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw ``scene`` as a ``size``×``size`` RGB image."""
    img = _draw_background(scene.background, size, rng)
    draw = ImageDraw.Draw(img)
    unit = size / 10
    for group in scene.groups:
        box = POSITIONS[group.position][1]
        if group.kind == 'road':
            vertical = group.position in ('left', 'right')
            lo, hi = (box[0], box[2]) if vertical else (box[1], box[3])
            for k in range(group.count):
                c = (lo + (hi - lo) * (k + 1) / (group.count + 1)) * size
                width = unit * 0.55
                rect = [c - width, 0, c + width, size] if vertical else [0, c - width, size, c + width]
                draw.rectangle(rect, fill=(88, 88, 92))
            continue
        colour = COLOURS[group.colour] if group.colour else (0, 0, 0)
        gap = unit * (2.4 if group.kind == 'playground' else 1.5)
        for cx, cy in _place(group.count, box, size, gap, rng):
            _draw_object(draw, group.kind, colour, cx, cy, unit, rng)
    arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.85, 1.15)
    arr += rng.normal(0, 3, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------ writing
def make_demo_dataset(
    root: str | os.PathLike,
    num_train: int = 1000,
    num_val: int = 100,
    num_test: int = 200,
    image_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write the demo dataset to ``root`` (created atomically; an existing one is kept).

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    if (root / 'dataset_demo.json').is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{root.name}-', dir=root.parent))
    try:
        (tmp / 'images').mkdir()
        images = []
        splits = ['train'] * num_train + ['val'] * num_val + ['test'] * num_test
        for idx, split in enumerate(splits):
            rng = np.random.default_rng([seed, idx])
            scene = sample_scene(rng)
            name = f'{idx:05d}.png'
            render_scene(scene, image_size, rng).save(tmp / 'images' / name)
            sentences = [{'raw': c, 'tokens': c.split()} for c in scene_captions(scene, rng)]
            images.append(dict(filename=name, imgid=idx, split=split, sentences=sentences))
        with open(tmp / 'dataset_demo.json', 'w', encoding='utf-8') as f:
            json.dump(dict(dataset='demo_scenes', images=images), f)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first, or root exists but is incomplete
            if not (root / 'dataset_demo.json').is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root

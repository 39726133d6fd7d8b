"""Modified copies of images: what the leakage check must find, and what it was measured against.

Each modification turns a decoded RGB image into the copy's pixels and says how
the copy is saved. The check's threshold was chosen on UCM-Captions with these
(docs/leakage.md; ``benchmarks/leak_check.py --study`` measures them again); the
tests plant them. A crop cuts the given share off each side's length (both
axes, or one for the ``oneside`` crop) at an offset drawn from ``rng``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Modification:
    """One way of copying an image.

    Attributes:
        change: ``(image, rng) -> copy``: the copy's pixels.
        extension: The copy's file name ending, which picks its format.
        save: Arguments of ``Image.save``.
    """

    change: Callable[[Image.Image, np.random.Generator], Image.Image]
    extension: str
    save: dict = field(default_factory=dict)


def crop(image: Image.Image, share_x: float, share_y: float, offset_x: float, offset_y: float) -> Image.Image:
    """Cut ``share_x`` of the width and ``share_y`` of the height; the offsets (0..1) place the window."""
    width, height = image.size
    keep_w, keep_h = round(width * (1 - share_x)), round(height * (1 - share_y))
    left, top = round(offset_x * (width - keep_w)), round(offset_y * (height - keep_h))
    return image.crop((left, top, left + keep_w, top + keep_h))


def half(image: Image.Image) -> Image.Image:
    """Half the width and height (bicubic)."""
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BICUBIC)


def _random_crop(share: float) -> Callable[[Image.Image, np.random.Generator], Image.Image]:
    return lambda image, rng: crop(image, share, share, rng.random(), rng.random())


def _one_side_crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    offset = rng.random()
    return crop(image, 0.0, 0.05, 0.0, offset) if rng.random() < 0.5 else crop(image, 0.05, 0.0, offset, 0.0)


def _same(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image


JPEG_75 = dict(quality=75)

#: What the check must find: re-encoding, resizing, a format change and a 5 % crop.
REQUIRED = {
    'jpeg75': Modification(_same, '.jpg', JPEG_75),
    'half': Modification(lambda image, rng: half(image), '.png'),
    'png': Modification(_same, '.png'),
    'tif': Modification(_same, '.tif'),
    'crop5': Modification(_random_crop(0.05), '.png'),
    'crop5_oneside': Modification(_one_side_crop, '.png'),
    'crop3': Modification(_random_crop(0.03), '.png'),
    'half_jpeg75': Modification(lambda image, rng: half(image), '.jpg', JPEG_75),
    'crop5_half_jpeg75': Modification(lambda image, rng: half(_random_crop(0.05)(image, rng)), '.jpg', JPEG_75),
}
#: What the check is not built for, measured to say so (docs/leakage.md).
BEYOND = {
    'crop10': Modification(_random_crop(0.10), '.png'),
    'crop20': Modification(_random_crop(0.20), '.png'),
    'crop20_centre': Modification(lambda image, rng: crop(image, 0.2, 0.2, 0.5, 0.5), '.png'),
    'rotate5': Modification(lambda image, rng: image.rotate(5, resample=Image.Resampling.BICUBIC), '.png'),
    'rotate90': Modification(lambda image, rng: image.transpose(Image.Transpose.ROTATE_90), '.png'),
    'flip': Modification(lambda image, rng: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), '.png'),
}
MODIFICATIONS = {**REQUIRED, **BEYOND}


def write_copy(source: str, target_stem: str, name: str, rng: np.random.Generator) -> str:
    """Write the ``name`` copy of image file ``source`` as ``target_stem`` + its extension; returns the path.

    Raises:
        KeyError: ``name`` is not in :data:`MODIFICATIONS`.
    """
    modification = MODIFICATIONS[name]
    with Image.open(source) as image:
        copy = modification.change(image.convert('RGB'), rng)
    path = target_stem + modification.extension
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    copy.save(path, **modification.save)
    return path


def plant_copies(sources: list[str], folder: str, names: list[str], seed: int = 0) -> dict[str, str]:
    """Copy ``sources[i]`` into ``folder`` with modification ``names[i % len(names)]``.

    A copy is named ``<source stem>_<modification><extension>``.

    Returns:
        ``{copy path: source path}``.
    """
    rng = np.random.default_rng(seed)
    planted = {}
    for i, source in enumerate(sources):
        name = names[i % len(names)]
        stem = os.path.splitext(os.path.basename(source))[0]
        planted[write_copy(source, os.path.join(folder, f'{stem}_{name}'), name, rng)] = source
    return planted

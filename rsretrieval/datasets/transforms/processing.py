"""Geometric augmentations for image-caption pairs."""

from __future__ import annotations

import math
import re

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from rsretrieval.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area fraction and aspect ratio, then resize (paper §IV-B).

    Args:
        size: Output ``(h, w)`` or one int for a square.
        scale: Range of the cropped area as a fraction of the image (paper:
            50-100 %).
        ratio: Range of the crop aspect ratio (w / h).
        interpolation: mmcv interpolation name.
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        interpolation: str = 'bicubic',
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f'scale must satisfy 0 < min <= max <= 1, got {scale}')
        self.scale, self.ratio, self.interpolation = scale, ratio, interpolation

    def crop_box(self, height: int, width: int, rng: np.random.Generator | None = None) -> tuple[int, int, int, int]:
        """Sample ``(top, left, h, w)`` as torchvision does (10 tries, then centre).

        Draws from ``rng`` (the sample's own generator, see
        :class:`~rsretrieval.datasets.ReproducibleSampler`), else from numpy's
        global generator, which mmengine seeds per worker.
        """
        uniform = rng.uniform if rng is not None else np.random.uniform
        integers = rng.integers if rng is not None else np.random.randint
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * uniform(*self.scale)
            aspect = math.exp(uniform(*log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(integers(0, height - h + 1)), int(integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, h, w = self.crop_box(*img.shape[:2], rng=results.get('rng'))
        crop = img[top : top + h, left : left + w]
        out = mmcv.imresize(crop, (self.size[1], self.size[0]), interpolation=self.interpolation)
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['crop_box'] = (top, left, h, w)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio})'


_SIDES = re.compile(r'\b(left|right)\b')


@TRANSFORMS.register_module()
class RandomHorizontalFlip(BaseTransform):
    """Mirror the image left-right with probability ``prob``.

    Captions of remote-sensing scenes often say where things are; with
    ``swap_sides=True`` the words ``left`` and ``right`` of ``results['caption']``
    are exchanged so the pair stays true.
    """

    def __init__(self, prob: float = 0.5, swap_sides: bool = True) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob, self.swap_sides = prob, swap_sides

    def transform(self, results: dict) -> dict:
        rng = results.get('rng')
        flip = (rng.random() if rng is not None else np.random.rand()) < self.prob
        results['flip'] = bool(flip)
        if flip:
            results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
            if self.swap_sides and 'caption' in results:
                results['caption'] = _SIDES.sub(
                    lambda m: 'right' if m.group(1) == 'left' else 'left', results['caption']
                )
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, swap_sides={self.swap_sides})'

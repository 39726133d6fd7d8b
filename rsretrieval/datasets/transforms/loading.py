"""Image loading through PIL (JPEG, PNG, TIFF, ...)."""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from rsretrieval.registry import TRANSFORMS


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Conversions: grey, palette and CMYK images become RGB; an alpha channel is
    dropped; 16-bit and 32-bit integer images are scaled from their type's range
    (``/257`` for 16 bit) to 8 bit; float images are scaled from [0, 1].

    Raises:
        OSError: The file cannot be decoded; the message names it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N'):
                arr = np.asarray(img, dtype=np.float32) / 257.0
                return _grey_to_rgb(arr)
            if img.mode == 'I':
                arr = np.asarray(img, dtype=np.float64)
                scale = 257.0 if arr.max(initial=0) <= 65535 else 16843009.0
                return _grey_to_rgb(arr / scale)
            if img.mode == 'F':
                return _grey_to_rgb(np.asarray(img, dtype=np.float32) * 255.0)
            return np.asarray(img.convert('RGB'), dtype=np.uint8)
    except OSError as err:
        raise OSError(f'Cannot decode image {path}: {err}') from err


def _grey_to_rgb(arr: np.ndarray) -> np.ndarray:
    grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Load ``results['img_path']`` into ``results['img']`` (RGB uint8, HWC).

    Sets ``img_shape`` and ``ori_shape`` as mmcv transforms expect.
    """

    def transform(self, results: dict) -> dict:
        img = read_rgb(results['img_path'])
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

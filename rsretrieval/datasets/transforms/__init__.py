"""Data transforms (registered in ``rsretrieval.registry.TRANSFORMS``).

mmcv's transforms (``Resize``, ``CenterCrop``, ...) are registered in mmengine's
root registry and resolve from configs too.
"""

import mmcv.transforms  # noqa: F401  (registers mmcv's transforms)

from .formatting import PackRetrievalInputs
from .loading import LoadImage, read_rgb
from .processing import RandomHorizontalFlip, RandomResizedCrop

__all__ = ['LoadImage', 'PackRetrievalInputs', 'RandomHorizontalFlip', 'RandomResizedCrop', 'read_rgb']

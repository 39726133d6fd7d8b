"""Packing a transformed sample for the data preprocessor."""

from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from rsretrieval.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackRetrievalInputs(BaseTransform):
    """Pack ``img`` into a ``(3, H, W)`` uint8 tensor and the rest into a dict.

    Output: ``dict(inputs=Tensor, data_samples=dict(...))`` where
    ``data_samples`` holds ``meta_keys`` that are present (train items carry
    ``caption``, ``image_id``, ``caption_id``; test items ``image_id``;
    every item ``sample_idx``). mmengine's ``pseudo_collate`` turns a batch of
    these into a list of tensors and a dict of lists.
    """

    def __init__(self, meta_keys: tuple[str, ...] = ('sample_idx', 'image_id', 'caption_id', 'caption')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results['img'].transpose(2, 0, 1))
        return dict(
            inputs=torch.from_numpy(img),
            data_samples={k: results[k] for k in self.meta_keys if k in results},
        )

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'

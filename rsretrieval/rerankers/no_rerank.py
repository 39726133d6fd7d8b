"""The identity reranker."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from rsretrieval.registry import RERANKERS

Matrix = TypeVar('Matrix', np.ndarray, torch.Tensor)


@RERANKERS.register_module()
class NoRerank:
    """Keep the raw similarities: returns ``(sims, sims)``.

    Every reranker maps an ``(N_img, N_txt)`` similarity matrix to the pair
    ``(sims_i2t, sims_t2i)``: the first is ranked row-wise (image queries), the
    second column-wise (text queries), both of the input's shape and type.
    """

    def __call__(self, sims: Matrix) -> tuple[Matrix, Matrix]:
        if sims.ndim != 2:
            raise ValueError(f'sims must be (N_img, N_txt), got shape {tuple(sims.shape)}')
        return sims, sims

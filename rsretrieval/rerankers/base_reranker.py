"""What every reranker shares: input checks, numpy/torch round trip, both directions."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TypeVar

import numpy as np
import torch

Matrix = TypeVar('Matrix', np.ndarray, torch.Tensor)


class BaseReranker(metaclass=ABCMeta):
    """A function of an ``(N_img, N_txt)`` similarity matrix.

    Calling a reranker returns ``(sims_i2t, sims_t2i)``, of the input's shape,
    type, dtype and device: the first is ranked row-wise (image queries), the
    second column-wise (text queries). Subclasses implement :meth:`rerank_rows`
    for row queries; text queries are the same computation on the transpose.
    Work runs in float32 (float64 input: float64) on the input's device.
    Rerankers that need more than the matrix (the ITM reranker) take it as
    keyword arguments and override :meth:`rerank_both`.
    """

    needs_features = False  # True: the loops pass model=, image_feats=, text_feats=

    def _check(self, sims: Matrix) -> None:
        if sims.ndim != 2:
            raise ValueError(f'sims must be (N_img, N_txt), got shape {tuple(sims.shape)}')
        if 0 in sims.shape:
            raise ValueError(f'sims is empty: shape {tuple(sims.shape)}')

    def __call__(self, sims: Matrix, **context) -> tuple[Matrix, Matrix]:
        self._check(sims)
        is_numpy = isinstance(sims, np.ndarray)
        s = torch.from_numpy(np.ascontiguousarray(sims)) if is_numpy else sims
        work = s if s.dtype in (torch.float32, torch.float64) else s.float()
        if not bool(torch.isfinite(work).all()):
            raise ValueError('sims holds NaN or infinite values')
        with torch.no_grad():
            i2t, t2i = self.rerank_both(work, **context)
        i2t, t2i = i2t.to(s.dtype), t2i.to(s.dtype)
        if is_numpy:
            return i2t.numpy(), t2i.contiguous().numpy()
        return i2t, t2i.contiguous()

    def rerank_both(self, sims: torch.Tensor, **context) -> tuple[torch.Tensor, torch.Tensor]:
        """``(i2t, t2i)`` for a float tensor; both ``(N_img, N_txt)``."""
        if context:
            raise TypeError(f'{type(self).__name__} takes only the similarity matrix, got {sorted(context)}')
        return self.rerank_rows(sims), self.rerank_rows(sims.T.contiguous()).T

    @abstractmethod
    def rerank_rows(self, sims: torch.Tensor) -> torch.Tensor:
        """Reranked scores for row queries: ``(N_q, N_c) -> (N_q, N_c)``.

        ``sims[q, c]`` is the similarity of query ``q`` and candidate ``c``.
        """

    @property
    def supports_candidates(self) -> bool:
        """Whether :meth:`rerank_candidates` is available (the reranker only reorders a top-K)."""
        return type(self).candidates_rows is not BaseReranker.candidates_rows

    def candidates_rows(self, sims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row query's reranked top-K: ``(indices, scores)``, both ``(N_q, K)``, in
        the reranked order (score descending, ties by the lower index).

        Rerankers that only reorder each query's top-K implement it; every
        other candidate keeps its raw rank, so the pair describes the whole
        reranked ranking without a second matrix.
        """
        raise NotImplementedError(f'{type(self).__name__} reranks the whole matrix')

    def rerank_candidates(self, sims: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """``((i2t_indices, i2t_scores), (t2i_indices, t2i_scores))`` for a float tensor:
        the image queries' reranked top-K captions and the caption queries'
        reranked top-K images. Memory: the matrix, its ``(N, K)`` results and
        chunked intermediates (no reranked matrix is built; column queries run
        on a transposed view, never copied whole)."""
        self._check(sims)
        work = sims if sims.dtype in (torch.float32, torch.float64) else sims.float()
        if not bool(torch.isfinite(work).all()):
            raise ValueError('sims holds NaN or infinite values')
        with torch.no_grad():
            return self.candidates_rows(work), self.candidates_rows(work.T)

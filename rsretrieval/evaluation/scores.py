"""What scoring a test set returns: one typed result per way of holding the scores.

Each result knows its ``shape`` ``(N_img, N_txt)``, its recalls against the
ground truth (:meth:`recall`), and the scores before any reranker (``raw``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .recall import recall_at_k, recall_at_k_blockwise, recall_at_k_reranked

#: ``score_block(i0, i1, t0, t1)``: scores of images ``i0:i1`` against captions ``t0:t1``.
ScoreBlock = Callable[[int, int, int, int], torch.Tensor]


@dataclass(frozen=True)
class _RawMatrixScores:
    """A result that holds the whole ``(N_img, N_txt)`` raw similarity matrix ``sims``."""

    sims: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.sims.shape)

    @property
    def raw(self) -> DenseScores:
        return DenseScores.from_raw(self.sims)


@dataclass(frozen=True)
class DenseScores(_RawMatrixScores):
    """The whole similarity matrix and the matrix each direction is ranked by.

    Args:
        sims: ``(N_img, N_txt)`` raw similarities.
        sims_i2t: ``(N_img, N_txt)`` scores ranked row-wise (image queries).
        sims_t2i: ``(N_img, N_txt)`` scores ranked column-wise (caption queries).
        reranked: Whether a reranker produced ``sims_i2t`` and ``sims_t2i``
            (a saved file then holds them beside ``sims``).
    """

    sims_i2t: torch.Tensor
    sims_t2i: torch.Tensor
    reranked: bool = False

    @classmethod
    def from_raw(cls, sims: torch.Tensor) -> DenseScores:
        """Both directions ranked by ``sims`` itself (no reranker)."""
        return cls(sims, sims, sims)

    def recall(
        self, img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], ks: Sequence[int] = (1, 5, 10)
    ) -> dict[str, float]:
        return recall_at_k(self.sims_i2t, self.sims_t2i, img2txt, txt2img, ks)


@dataclass(frozen=True)
class BlockwiseScores:
    """Raw similarities computed on request, block by block; the matrix is never held.

    Args:
        score_block: Returns the ``(i1 - i0, t1 - t0)`` scores of images
            ``i0:i1`` against captions ``t0:t1`` (see :func:`recall_at_k_blockwise`).
        shape: ``(N_img, N_txt)``.
    """

    score_block: ScoreBlock
    shape: tuple[int, int]

    @property
    def raw(self) -> BlockwiseScores:
        return self

    def recall(
        self, img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], ks: Sequence[int] = (1, 5, 10)
    ) -> dict[str, float]:
        return recall_at_k_blockwise(self.score_block, *self.shape, img2txt, txt2img, ks)


@dataclass(frozen=True)
class CandidateScores(_RawMatrixScores):
    """Raw similarities and a top-K reranker's reordered candidates of each query.

    The reranker leaves every item outside a query's top K at its raw rank, so
    the pair describes both reranked rankings (see :func:`recall_at_k_reranked`).

    Args:
        sims: ``(N_img, N_txt)`` raw similarities.
        i2t_candidates: ``(N_img, K)`` caption indices of each image query, in reranked order.
        t2i_candidates: ``(N_txt, K)`` image indices of each caption query, in reranked order.
    """

    i2t_candidates: torch.Tensor
    t2i_candidates: torch.Tensor

    def recall(
        self, img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], ks: Sequence[int] = (1, 5, 10)
    ) -> dict[str, float]:
        return recall_at_k_reranked(self.sims, self.i2t_candidates, self.t2i_candidates, img2txt, txt2img, ks)


RetrievalScores = DenseScores | BlockwiseScores | CandidateScores

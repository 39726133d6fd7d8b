"""What scoring a test set returns: one typed result per way of holding the scores.

Each result knows its ``shape`` ``(N_img, N_txt)``, the rank of every pair of a
relation of right answers (:meth:`pair_ranks`), hence its recalls against the
ground truth (:meth:`recall`), under caption equivalence
(:meth:`recall_equivalent`) or both from one ranking (:meth:`recall_both`), and
the scores before any reranker (``raw``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .caption_equivalence import equivalent_pairs
from .ranking import ScoreBlock, best_of_pairs, blockwise_pair_ranks, dense_pair_ranks, reranked_pair_ranks
from .recall import recall_from_ranks
from .relevance import RelevantPairs, check_ground_truth


class _Recalls(abc.ABC):
    """Standard and caption-equivalent recall of a result that has a ``shape`` and ranks pairs."""

    shape: tuple[int, int]

    @abc.abstractmethod
    def pair_ranks(self, pairs: RelevantPairs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(i2t, t2i)``, each ``(P,)``: every pair's 0-based rank in its image query's and caption query's ranking."""

    def recall_of(self, pairs: RelevantPairs, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
        """R@K and mR with ``pairs`` as the right answers (a :class:`~rsretrieval.evaluation.RelevantPairs`)."""
        return recall_from_ranks(*best_of_pairs(self.pair_ranks(pairs), pairs), ks)

    def recall(
        self, img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], ks: Sequence[int] = (1, 5, 10)
    ) -> dict[str, float]:
        """:func:`~rsretrieval.evaluation.recall_at_k` of the scores this result stands for."""
        check_ground_truth(img2txt, txt2img, *self.shape)
        return self.recall_of(RelevantPairs.ground_truth(txt2img, len(img2txt)), ks)

    def recall_equivalent(
        self,
        captions: Sequence[str],
        img2txt: Sequence[Sequence[int]],
        txt2img: Sequence[int],
        ks: Sequence[int] = (1, 5, 10),
    ) -> dict[str, float]:
        """:func:`~rsretrieval.evaluation.recall_at_k_equivalent` of the scores this result stands for."""
        check_ground_truth(img2txt, txt2img, *self.shape)
        return self.recall_of(equivalent_pairs(captions, img2txt, txt2img), ks)

    def recall_both(
        self,
        captions: Sequence[str],
        img2txt: Sequence[Sequence[int]],
        txt2img: Sequence[int],
        ks: Sequence[int] = (1, 5, 10),
    ) -> tuple[dict[str, float], dict[str, float]]:
        """``(recall(...), recall_equivalent(...))`` from one ranking of the equivalent pairs.

        The equivalent pairs hold the ground truth (each caption with its own
        image), and a pair's rank does not depend on the other pairs, so the
        standard recall is read from the ground-truth pairs among them: the
        same numbers as :meth:`recall`, for the cost of one ranking instead of two.
        """
        check_ground_truth(img2txt, txt2img, *self.shape)
        pairs = equivalent_pairs(captions, img2txt, txt2img)
        i2t, t2i = self.pair_ranks(pairs)  # (P,) each
        own = pairs.images == torch.as_tensor(list(txt2img), dtype=torch.long)[pairs.captions]  # (P,)
        standard = recall_from_ranks(*best_of_pairs((i2t[own], t2i[own]), pairs.where(own)), ks)
        return standard, recall_from_ranks(*best_of_pairs((i2t, t2i), pairs), ks)


@dataclass(frozen=True)
class _RawMatrixScores(_Recalls):
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

    def pair_ranks(self, pairs: RelevantPairs) -> tuple[torch.Tensor, torch.Tensor]:
        """Each direction ranked in its own matrix."""
        return dense_pair_ranks(torch.as_tensor(self.sims_i2t), torch.as_tensor(self.sims_t2i), pairs)


@dataclass(frozen=True)
class BlockwiseScores(_Recalls):
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

    def pair_ranks(self, pairs: RelevantPairs) -> tuple[torch.Tensor, torch.Tensor]:
        """Block by block (see :func:`~rsretrieval.evaluation.ranking.blockwise_pair_ranks`)."""
        return blockwise_pair_ranks(self.score_block, pairs)


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

    def pair_ranks(self, pairs: RelevantPairs) -> tuple[torch.Tensor, torch.Tensor]:
        """After the reranker: a relevant target among its query's candidates ranks at its place
        there, any other at its raw rank (:func:`~rsretrieval.evaluation.ranking.reranked_pair_ranks`
        derives why)."""
        return reranked_pair_ranks(torch.as_tensor(self.sims), self.i2t_candidates, self.t2i_candidates, pairs)


RetrievalScores = DenseScores | BlockwiseScores | CandidateScores

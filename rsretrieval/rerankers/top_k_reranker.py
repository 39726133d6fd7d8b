"""What SMR and MR share: new scores for each query's top-K, everything else below."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base_reranker import BaseReranker
from .ranking import order_candidates, place_below


class TopKReranker(BaseReranker):
    """A reranker that gives each row query's top-K candidates new scores.

    Subclasses compute the parts of the score (:meth:`components`, which must
    include the candidates' column ``indices``) and combine them
    (:meth:`candidate_scores`); the split lets a parameter study compute the
    parameter-free parts once. Every candidate outside the top-K keeps its raw
    order below them, so the reranking is fully described by the candidates
    (:meth:`candidates_rows`) and a dense matrix is built only on request
    (:meth:`rerank_rows`).

    Args:
        topk: ``K``, candidates reranked per query.
        chunk_elements: Matrix entries ranked at a time when computing
            backward ranks (bounds the working memory, ~8 bytes per entry).
    """

    def __init__(self, topk: int, chunk_elements: int = 1 << 25) -> None:
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        self.topk, self.chunk_elements = topk, chunk_elements

    @abstractmethod
    def components(self, sims: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parameter-free parts of the row queries' scores, each ``(N_q, K)``, with ``indices``."""

    @abstractmethod
    def candidate_scores(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The candidates' new scores ``(N_q, K)`` from :meth:`components`."""

    def rerank_rows(self, sims: torch.Tensor) -> torch.Tensor:
        parts = self.components(sims)
        return place_below(sims, parts['indices'], self.candidate_scores(parts))

    def candidates_rows(self, sims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = self.components(sims)
        return order_candidates(parts['indices'], self.candidate_scores(parts))

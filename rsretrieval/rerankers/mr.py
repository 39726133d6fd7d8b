"""MR: GaLR's multivariate rerank (the paper's baseline, Fig. 6)."""

from __future__ import annotations

import torch

from rsretrieval.registry import RERANKERS

from .ranking import backward_positions, safe_divisor, top_candidates
from .top_k_reranker import TopKReranker


@RERANKERS.register_module()
class MR(TopKReranker):
    """Rescore each query's top-K by significance, forward rank and backward rank.

    For a query ``q`` (t2i on the transpose) and its candidates ``c`` at
    1-based forward rank ``r_f``::

        score = wp1 * S[q, c] / sum_q' S[q', c]  +  exp(-0.05 r_f)  +  wp2 * exp(-0.05 r_b)

    where ``r_b`` is the candidate's 1-based place after the K candidates are
    re-sorted by their backward rank (the place of ``q`` in the candidate's own
    ranking of all queries; equal backward ranks keep the forward order).
    Candidates outside the top-K rank below every top-K candidate, in their
    original order. Column sums accumulate in float64 (they can be close to
    zero for centred similarities, which makes the term sensitive to rounding);
    a zero sum is replaced by 1e-12.

    Args:
        topk: Candidates reranked per query; GaLR reranks at least
            ``min_candidates`` (so ``K = max(min_candidates, topk)``, capped
            at the candidates present).
        wp1: Weight of the significance term.
        wp2: Weight of the backward-rank term.
        min_candidates: Lower bound of K (GaLR: 10).
        chunk_elements: Matrix entries ranked at a time (backward ranks).
    """

    def __init__(
        self,
        topk: int = 30,
        wp1: float = 1.0,
        wp2: float = 0.7,
        min_candidates: int = 10,
        chunk_elements: int = 1 << 25,
    ) -> None:
        super().__init__(topk, chunk_elements)
        self.wp1, self.wp2, self.min_candidates = wp1, wp2, min_candidates

    def components(self, sims: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms of the score for row queries, each ``(N_q, K)``:
        ``significance``, ``forward`` (``exp(-0.05 r_f)``), ``backward``
        (``exp(-0.05 r_b)``) and the candidates' column ``indices``."""
        n_q, n_c = sims.shape
        k = min(max(self.min_candidates, self.topk), n_c)
        values, indices = top_candidates(sims, k, self.chunk_elements)  # (N_q, K)
        r_f = torch.arange(1, k + 1, device=sims.device, dtype=sims.dtype).expand(n_q, k)
        backward = backward_positions(sims, indices, self.chunk_elements)  # (N_q, K)
        by_backward = backward.argsort(dim=1, stable=True)  # ties keep forward order
        r_b = torch.empty_like(r_f).scatter_(1, by_backward, r_f)  # 1-based place after re-sorting
        return dict(
            significance=values / safe_divisor(sims.sum(dim=0, dtype=torch.float64).to(sims.dtype))[indices],
            forward=torch.exp(-0.05 * r_f),
            backward=torch.exp(-0.05 * r_b),
            indices=indices,
        )

    def candidate_scores(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The candidates' new scores from :meth:`components`."""
        return self.wp1 * parts['significance'] + parts['forward'] + self.wp2 * parts['backward']

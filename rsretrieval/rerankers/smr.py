"""SMR: similarity matrix reweighting (paper §III-E, Eq. 10-16)."""

from __future__ import annotations

import torch

from rsretrieval.registry import RERANKERS

from .ranking import backward_positions, safe_divisor, top_candidates
from .top_k_reranker import TopKReranker


@RERANKERS.register_module()
class SMR(TopKReranker):
    """Reweight each query's top-K by forward rank, backward rank and extreme ratios.

    For a query ``q`` (an image for i2t; t2i is the same on the transpose) and
    its ``j``-th best candidate ``c`` (``j = 1..K``)::

        w_f = 1 - j / K                                   (forward rank, Eq. 11)
        w_b = 1 - k / N_q        k: 1-based place of q in c's own ranking of all queries (Eq. 13)
        w_d = S[q, c] / max_c' S[q, c'] + S[q, c] / max_q' S[q', c]   (extreme difference ratio, Eq. 14)
        W   = w_f + gamma1 * w_b + gamma2 * w_d                        (Eq. 15)
        S_opt[q, c] = W * S[q, c]                                      (Eq. 16)

    Candidates outside the top-K rank below every top-K candidate, in their
    original order. The denominators of ``w_d`` are assumed non-zero (a
    zero is replaced by 1e-12); with negative maxima the ratio changes sign,
    as the formula does.

    Args:
        topk: ``K``, candidates reranked per query (capped at the candidates present).
        gamma1: Weight of the backward-rank term (paper's best: 0.9).
        gamma2: Weight of the extreme-ratio term (paper's best: 1.9; 0 is the
            paper's "w/o extreme difference ratio" ablation).
        multiply_sim: Multiply ``W`` by the raw similarity (Eq. 16); False is
            the paper's "SMR w/o sim" ablation (``S_opt = W``).
        chunk_elements: Matrix entries ranked at a time when computing
            backward ranks (bounds the working memory, ~8 bytes per entry).
    """

    def __init__(
        self,
        topk: int = 30,
        gamma1: float = 0.9,
        gamma2: float = 1.9,
        multiply_sim: bool = True,
        chunk_elements: int = 1 << 25,
    ) -> None:
        super().__init__(topk, chunk_elements)
        self.gamma1, self.gamma2, self.multiply_sim = gamma1, gamma2, multiply_sim

    def components(self, sims: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parts of ``W`` for row queries, each ``(N_q, K)``: ``w_f``, ``w_b``,
        ``w_d``, and the candidates' raw ``values`` and column ``indices``.

        They do not depend on ``gamma1``/``gamma2``: a parameter study computes
        them once per K (see :mod:`rsretrieval.analysis.rerank_study`).
        """
        n_q, n_c = sims.shape
        k = min(self.topk, n_c)
        values, indices = top_candidates(sims, k, self.chunk_elements)  # (N_q, K)
        forward = torch.arange(1, k + 1, device=sims.device, dtype=sims.dtype)  # j
        w_f = (1 - forward / k).expand(n_q, k)
        backward = backward_positions(sims, indices, self.chunk_elements)  # (N_q, K)
        w_b = 1 - backward.to(sims.dtype) / n_q
        row_max = values[:, :1]  # the best candidate of each query
        col_max = sims.max(dim=0).values[indices]  # (N_q, K): best query of each candidate
        w_d = values / safe_divisor(row_max) + values / safe_divisor(col_max)
        return dict(w_f=w_f, w_b=w_b, w_d=w_d, values=values, indices=indices)

    def candidate_scores(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """``S_opt`` of the candidates (Eq. 15-16) from :meth:`components`."""
        w = parts['w_f'] + self.gamma1 * parts['w_b'] + self.gamma2 * parts['w_d']
        return w * parts['values'] if self.multiply_sim else w

"""A reranker from outside the library: dual-softmax rescoring of a similarity matrix."""

from __future__ import annotations

import torch

from rsretrieval.registry import RERANKERS
from rsretrieval.rerankers import BaseReranker


@RERANKERS.register_module()
class DualSoftmax(BaseReranker):
    """Weight each score by how strongly its candidate prefers the query over the other queries.

    The inference rescoring of the dual softmax loss (Cheng et al., "Improving
    Video-Text Retrieval by Multi-Stream Corpus Alignment and Dual Softmax Loss",
    2021): for row queries, ``sims[q, c] * softmax_q(sims[:, c] / temperature)``.
    A candidate that matches many queries equally well (a hub) is pushed down
    for all of them; one that matches the query better than any other query is
    kept near the top. Text queries are the same computation on the transpose.

    ``tools/test.py CONFIG CKPT --rerank DualSoftmax --rerank-options temperature=0.05``

    Args:
        temperature: Softmax temperature over the queries; smaller is sharper.
            The default suits cosine similarities (CLIP's 100x logit scale).
    """

    def __init__(self, temperature: float = 0.01) -> None:
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature

    def rerank_rows(self, sims: torch.Tensor) -> torch.Tensor:
        """``sims`` times the softmax over the queries (dim 0) of each candidate's column."""
        return sims * torch.softmax(sims / self.temperature, dim=0)

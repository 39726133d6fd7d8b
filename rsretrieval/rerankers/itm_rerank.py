"""ITM reranking: rescore each query's top-k with the fusion encoder (ALBEF's two stages)."""

from __future__ import annotations

import torch

from rsretrieval.registry import RERANKERS

from .base_reranker import BaseReranker
from .ranking import place_below, top_candidates


@RERANKERS.register_module()
class ITMRerank(BaseReranker):
    """Replace the scores of each query's ``topk`` candidates by the match probability.

    Stage one ranks by the embedding similarity; stage two runs the fusion
    encoder on the ``topk`` best pairs of every image query and of every
    caption query (``(N_img + N_txt) * topk`` fusion passes instead of
    ``N_img * N_txt``) and orders them by the match head's probability (plus
    ``sim_weight`` times the similarity); every other candidate ranks below,
    in its original order.

    It needs the model and its matching features, which the retrieval loops
    pass (``needs_features``): ``tools/test.py CONFIG CKPT --rerank itm``.

    Args:
        topk: Candidates rescored per query.
        sim_weight: Weight of the first-stage similarity added to the match
            probability (0: the match head alone, as ALBEF).
    """

    needs_features = True

    def __init__(self, topk: int = 16, sim_weight: float = 0.0) -> None:
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        self.topk, self.sim_weight = topk, sim_weight

    def rerank_both(
        self, sims: torch.Tensor, model=None, image_feats: dict | None = None, text_feats: dict | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if model is None or image_feats is None or text_feats is None:
            raise ValueError(
                'ITMRerank needs the model and its matching features (model=, image_feats=, text_feats=); '
                'the retrieval loops pass them: use tools/test.py --rerank itm'
            )

        def rescore(matrix: torch.Tensor, images_are_queries: bool) -> torch.Tensor:
            n_q, n_c = matrix.shape
            k = min(self.topk, n_c)
            values, indices = top_candidates(matrix, k)  # (N_q, k)
            device = image_feats['tokens'].device
            queries = torch.arange(n_q, device=device).repeat_interleave(k)
            candidates = indices.reshape(-1).to(device)
            img_idx, txt_idx = (queries, candidates) if images_are_queries else (candidates, queries)
            probs = model.match_scores(image_feats, text_feats, img_idx, txt_idx)
            scores = probs.to(matrix.device, matrix.dtype).view(n_q, k) + self.sim_weight * values
            return place_below(matrix, indices, scores)

        return rescore(sims, True), rescore(sims.T.contiguous(), False).T

    def rerank_rows(self, sims: torch.Tensor) -> torch.Tensor:
        raise TypeError('ITMRerank reranks both directions at once with the model: call it with its features')

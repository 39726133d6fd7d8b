"""Each query's best rank over its relevant targets, for each way the scores are held.

One core serves every recall: a :class:`~rsretrieval.evaluation.relevance.RelevantPairs`
relation says which targets answer which query, every pair is ranked in its
query's row (:func:`gt_ranks`; :func:`dense_pair_ranks`, :func:`blockwise_pair_ranks`,
:func:`reranked_pair_ranks` for the three ways of holding the scores), and a
query keeps its best pair (:func:`best_of_pairs`). Standard recall passes the
ground truth, caption-equivalent recall a wider relation; the ranking is the
same code. A pair's rank does not depend on the other pairs, so the ranks of a
wide relation also give those of any relation inside it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .relevance import RelevantPairs

#: ``score_block(i0, i1, t0, t1)``: scores of images ``i0:i1`` against captions ``t0:t1``.
ScoreBlock = Callable[[int, int, int, int], torch.Tensor]


def gt_ranks(scores: torch.Tensor, query_rows: torch.Tensor, gt_index: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """0-based rank of ``gt_index[q]`` within row ``query_rows[q]`` of ``scores``.

    Ties are broken by index: among equal scores the lower index ranks first,
    which is the order of a stable descending sort.

    Args:
        scores: ``(R, N)`` scores; a row holds one query's scores.
        query_rows: ``(Q,)`` row of each query (rows may repeat).
        gt_index: ``(Q,)`` index of the item whose rank is wanted.
        chunk: Rows processed at once (bounds memory to ``chunk x N``).

    Returns:
        ``(Q,)`` int64 ranks. Memory stays at ``chunk x N`` whatever ``Q``.
    """
    out = torch.empty(len(query_rows), dtype=torch.long)
    cols = torch.arange(scores.shape[1], device=scores.device)
    for start in range(0, len(query_rows), chunk):
        rows = scores[query_rows[start : start + chunk].to(scores.device)]
        gt = gt_index[start : start + chunk].to(scores.device)
        gt_score = rows.gather(1, gt[:, None])
        ahead = (rows > gt_score) | ((rows == gt_score) & (cols[None] < gt[:, None]))
        out[start : start + chunk] = ahead.sum(1).cpu()
    return out


def best_ranks(pair_ranks: torch.Tensor, queries: torch.Tensor, n_queries: int, n_targets: int) -> torch.Tensor:
    """``(n_queries,)`` the lowest of ``pair_ranks`` (``(P,)``) over each query's pairs (``queries``: ``(P,)``).

    A query without a pair would get ``n_targets`` (below every rank);
    :class:`RelevantPairs` guarantees there is none.
    """
    return torch.full((n_queries,), n_targets, dtype=torch.long).scatter_reduce(0, queries, pair_ranks, 'amin')


def best_of_pairs(
    pair_ranks: tuple[torch.Tensor, torch.Tensor], pairs: RelevantPairs
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's best rank: ``(N_img,)`` and ``(N_txt,)`` from the ``(P,)`` pair ranks of each direction."""
    i2t, t2i = pair_ranks
    return (
        best_ranks(i2t, pairs.images, pairs.n_img, pairs.n_txt),
        best_ranks(t2i, pairs.captions, pairs.n_txt, pairs.n_img),
    )


def _check_shape(shape: tuple[int, ...], pairs: RelevantPairs) -> None:
    if tuple(shape) != (pairs.n_img, pairs.n_txt):
        raise ValueError(
            f'ground truth has {pairs.n_img} images / {pairs.n_txt} captions, '
            f'the similarity matrix is {shape[0]} x {shape[1]}'
        )


def dense_pair_ranks(
    sims_i2t: torch.Tensor, sims_t2i: torch.Tensor, pairs: RelevantPairs
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair's rank in two whole matrices: ``sims_i2t`` ranked row-wise, ``sims_t2i`` column-wise.

    Returns:
        ``(i2t, t2i)``, each ``(P,)``: pair ``p``'s caption's 0-based rank in its
        image's row, and its image's rank in its caption's column.
    """
    _check_shape(tuple(sims_i2t.shape), pairs)
    _check_shape(tuple(sims_t2i.shape), pairs)
    i2t = gt_ranks(sims_i2t, pairs.images, pairs.captions)  # (P,)
    t2i = gt_ranks(sims_t2i.T, pairs.captions, pairs.images)  # (P,)
    return i2t, t2i


def _check_block(block: torch.Tensor, bounds: tuple[int, int, int, int]) -> torch.Tensor:
    i0, i1, t0, t1 = bounds
    if tuple(block.shape) != (i1 - i0, t1 - t0):
        raise ValueError(f'score_block{bounds} returned shape {tuple(block.shape)}, expected ({i1 - i0}, {t1 - t0})')
    return block


def blockwise_pair_ranks(
    score_block: ScoreBlock, pairs: RelevantPairs, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`dense_pair_ranks` of one raw matrix requested block by block, never held whole.

    Blocks of ``chunk`` images x all captions rank the image queries, blocks of
    all images x ``chunk`` captions the caption queries; each pair is ranked in
    the block that holds its query's row, so ranks and ties are those of the
    whole matrix.
    """
    n_img, n_txt = pairs.n_img, pairs.n_txt
    i2t = torch.empty(len(pairs), dtype=torch.long)
    for i0 in range(0, n_img, chunk):
        i1 = min(i0 + chunk, n_img)
        block = _check_block(score_block(i0, i1, 0, n_txt), (i0, i1, 0, n_txt))  # (c, N_txt)
        here = torch.nonzero((pairs.images >= i0) & (pairs.images < i1)).flatten()
        i2t[here] = gt_ranks(block, pairs.images[here] - i0, pairs.captions[here], chunk)
    t2i = torch.empty(len(pairs), dtype=torch.long)
    for t0 in range(0, n_txt, chunk):
        t1 = min(t0 + chunk, n_txt)
        block = _check_block(score_block(0, n_img, t0, t1), (0, n_img, t0, t1)).T  # (c, N_img): a caption per row
        here = torch.nonzero((pairs.captions >= t0) & (pairs.captions < t1)).flatten()
        t2i[here] = gt_ranks(block, pairs.captions[here] - t0, pairs.images[here], chunk)
    return i2t, t2i


def _placed(raw: torch.Tensor, candidates: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Each pair's reranked rank: its place among its query's ``candidates`` (``(P, K)``), else ``raw``."""
    hit = candidates == wanted[:, None]  # (P, K)
    return torch.where(hit.any(1), hit.int().argmax(1), raw)


def reranked_pair_ranks(
    sims: torch.Tensor, i2t_candidates: torch.Tensor, t2i_candidates: torch.Tensor, pairs: RelevantPairs
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair's rank after a top-K reranker, from the raw matrix and each query's reordered candidates.

    A top-K reranker reorders a query's raw top K and leaves the rest in raw
    order below them, so *every* target of the query, relevant or not, ranks
    either at its place in the candidates (if it is one) or at its raw rank
    (the K items ahead of it in raw order are still the K candidates, now
    reordered, and the others ahead of it have not moved). Hence any relation's
    pair ranks at ``_placed(raw rank, candidates, target)`` (and a query at
    the best of its pairs); the reranked matrices are never needed.

    Args:
        sims: ``(N_img, N_txt)`` raw scores.
        i2t_candidates: ``(N_img, K)`` caption indices of each image query, in reranked order.
        t2i_candidates: ``(N_txt, K)`` image indices of each caption query, in reranked order.
        pairs: The relation.
    """
    _check_shape(tuple(sims.shape), pairs)
    i2t_cand, t2i_cand = i2t_candidates.cpu(), t2i_candidates.cpu()
    if len(i2t_cand) != pairs.n_img or len(t2i_cand) != pairs.n_txt:
        raise ValueError(
            f'candidates cover {len(i2t_cand)} image and {len(t2i_cand)} caption queries, '
            f'the test set has {pairs.n_img} and {pairs.n_txt}'
        )
    i2t = _placed(gt_ranks(sims, pairs.images, pairs.captions), i2t_cand[pairs.images], pairs.captions)
    t2i = _placed(gt_ranks(sims.T, pairs.captions, pairs.images), t2i_cand[pairs.captions], pairs.images)
    return i2t, t2i

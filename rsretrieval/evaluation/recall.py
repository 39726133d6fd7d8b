"""Recall@K for cross-modal retrieval, as a pure function of scores and ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np
import torch

from .ranking import ScoreBlock, best_of_pairs, blockwise_pair_ranks, dense_pair_ranks, reranked_pair_ranks
from .relevance import RelevantPairs, check_ground_truth

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f'similarity must be a 2-D (N_img, N_txt) matrix, got shape {tuple(t.shape)}')
    return t


def similarity_pair(sims_i2t: ArrayLike, sims_t2i: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The two matrices a recall ranks, as tensors; each ``(N_img, N_txt)``.

    Raises:
        ValueError: One is not 2-D, or their shapes differ.
    """
    s_i2t, s_t2i = _as_tensor(sims_i2t), _as_tensor(sims_t2i)
    if s_i2t.shape != s_t2i.shape:
        raise ValueError(f'sims_i2t {tuple(s_i2t.shape)} and sims_t2i {tuple(s_t2i.shape)} differ in shape')
    return s_i2t, s_t2i


def recall_from_ranks(i2t: torch.Tensor, t2i: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K in percent from 0-based ranks: ``i2t`` (``(N_img,)``) each image query's
    best rank over its relevant captions, ``t2i`` (``(N_txt,)``) each caption
    query's best rank over its relevant images; ``mR`` is the mean of all of them."""
    result = {}
    for name, ranks in (('i2t', i2t), ('t2i', t2i)):
        for k in ks:
            result[f'{name}_R@{k}'] = float((ranks < k).double().mean() * 100)
    result['mR'] = float(np.mean(list(result.values())))
    return result


def recall_at_k(
    sims_i2t: ArrayLike,
    sims_t2i: ArrayLike,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K in both directions and their mean, in percent.

    Image-to-text ranks each row of ``sims_i2t``: a query image is a hit at K
    when any of its captions is in its top K. Text-to-image ranks each column
    of ``sims_t2i``: a hit when the caption's image is in the top K. Ties are
    broken by index (see :func:`~rsretrieval.evaluation.ranking.gt_ranks`).

    Args:
        sims_i2t: ``(N_img, N_txt)`` scores ranked row-wise.
        sims_t2i: ``(N_img, N_txt)`` scores ranked column-wise (the same
            matrix unless a reranker changed one direction).
        img2txt: ``img2txt[i]`` = caption indices of image ``i``.
        txt2img: ``txt2img[t]`` = image index of caption ``t``.
        ks: The K values.

    Returns:
        ``{'i2t_R@1', ..., 't2i_R@10', 'mR'}``: floats in percent; ``mR`` is the
        mean of all the others.
    """
    s_i2t, s_t2i = similarity_pair(sims_i2t, sims_t2i)
    check_ground_truth(img2txt, txt2img, *s_i2t.shape)
    pairs = RelevantPairs.ground_truth(txt2img, len(img2txt))
    return recall_from_ranks(*best_of_pairs(dense_pair_ranks(s_i2t, s_t2i, pairs), pairs), ks)


def recall_at_k_blockwise(
    score_block: ScoreBlock,
    n_img: int,
    n_txt: int,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk: int = 1024,
) -> dict[str, float]:
    """:func:`recall_at_k` without the whole similarity matrix.

    ``score_block(i0, i1, t0, t1)`` returns the scores of images ``i0:i1``
    against captions ``t0:t1``; blocks of ``chunk`` images x all captions and
    all images x ``chunk`` captions are requested, so memory stays at
    ``chunk x max(N_img, N_txt)`` scores (10,921 x 54,605 would be 2.4 GB as a
    matrix). Ranks, ties and results are those of :func:`recall_at_k` on the
    full matrix.
    """
    check_ground_truth(img2txt, txt2img, n_img, n_txt)
    pairs = RelevantPairs.ground_truth(txt2img, n_img)
    return recall_from_ranks(*best_of_pairs(blockwise_pair_ranks(score_block, pairs, chunk), pairs), ks)


def recall_at_k_reranked(
    sims: ArrayLike,
    i2t_candidates: torch.Tensor,
    t2i_candidates: torch.Tensor,
    img2txt: Sequence[Sequence[int]],
    txt2img: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """:func:`recall_at_k` of a top-K reranking, from the raw matrix and the candidates.

    A reranker that only reorders each query's top-K leaves every other item at
    its raw rank (the top-K are the raw top-K, and the rest keeps its order
    below them). So a ground-truth item among the query's candidates ranks at
    its place in ``*_candidates``, any other at its raw rank; the reranked
    matrices are never needed.

    Args:
        sims: ``(N_img, N_txt)`` raw scores.
        i2t_candidates: ``(N_img, K)`` caption indices of each image query, in
            reranked order (see ``BaseReranker.rerank_candidates``).
        t2i_candidates: ``(N_txt, K)`` image indices of each caption query.
    """
    s = _as_tensor(sims)
    check_ground_truth(img2txt, txt2img, *s.shape)
    pairs = RelevantPairs.ground_truth(txt2img, len(img2txt))
    ranks = reranked_pair_ranks(s, i2t_candidates, t2i_candidates, pairs)
    return recall_from_ranks(*best_of_pairs(ranks, pairs), ks)


def chance_recall(img2txt: Sequence[Sequence[int]], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Expected :func:`recall_at_k` of random scores (uniformly random rankings).

    For image ``i`` with ``c_i`` captions out of ``N_txt``, P(hit at K) =
    ``1 - C(N_txt - c_i, K) / C(N_txt, K)``; for a caption, P = ``K / N_img``.
    """
    n_img = len(img2txt)
    n_txt = sum(len(c) for c in img2txt)
    result = {}
    for k in ks:
        drawn = min(k, n_txt)  # a K beyond the test set's captions draws them all
        hits = [1 - comb(n_txt - len(c), drawn) / comb(n_txt, drawn) for c in img2txt]
        result[f'i2t_R@{k}'] = 100 * float(np.mean(hits))
    for k in ks:
        result[f't2i_R@{k}'] = 100 * min(k, n_img) / n_img
    result['mR'] = float(np.mean(list(result.values())))
    return result


def format_results_table(rows: dict[str, dict[str, float]], ks: Sequence[int] = (1, 5, 10)) -> str:
    """A markdown table of several result dicts (name -> recall_at_k output)."""
    keys = [f'i2t_R@{k}' for k in ks] + [f't2i_R@{k}' for k in ks] + ['mR']
    header = '| | ' + ' | '.join(keys) + ' |'
    lines = [header, '|' + '---|' * (len(keys) + 1)]
    for name, res in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(f'{res[k]:.2f}' for k in keys) + ' |')
    return '\n'.join(lines)

"""Recall@K for cross-modal retrieval, as a pure function of scores and ground truth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f'similarity must be a 2-D (N_img, N_txt) matrix, got shape {tuple(t.shape)}')
    return t


def check_ground_truth(img2txt: Sequence[Sequence[int]], txt2img: Sequence[int], n_img: int, n_txt: int) -> None:
    """Check that ``img2txt`` and ``txt2img`` describe the same pairs.

    Raises:
        ValueError: Sizes disagree with the matrix, an image has no caption, or
            the two maps contradict each other (the message names the index).
    """
    if len(img2txt) != n_img or len(txt2img) != n_txt:
        raise ValueError(
            f'ground truth has {len(img2txt)} images / {len(txt2img)} captions, '
            f'the similarity matrix is {n_img} x {n_txt}'
        )
    for i, caps in enumerate(img2txt):
        if len(caps) == 0:
            raise ValueError(f'image {i} has no caption in img2txt')
        for t in caps:
            if not 0 <= t < n_txt or txt2img[t] != i:
                raise ValueError(f'img2txt[{i}] lists caption {t}, but txt2img[{t}] is not {i}')
    counted = sum(len(c) for c in img2txt)
    if counted != n_txt:
        raise ValueError(f'img2txt lists {counted} captions, txt2img has {n_txt}')


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


def recall_from_ranks(i2t: torch.Tensor, t2i: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K in percent from 0-based ranks: ``i2t`` the best ground-truth caption's rank
    of each image, ``t2i`` the ground-truth image's rank of each caption; ``mR`` is
    the mean of all of them."""
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
    broken by index (see :func:`gt_ranks`).

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
    s_i2t, s_t2i = _as_tensor(sims_i2t), _as_tensor(sims_t2i)
    if s_i2t.shape != s_t2i.shape:
        raise ValueError(f'sims_i2t {tuple(s_i2t.shape)} and sims_t2i {tuple(s_t2i.shape)} differ in shape')
    n_img, n_txt = s_i2t.shape
    check_ground_truth(img2txt, txt2img, n_img, n_txt)
    txt2img_t = torch.as_tensor(list(txt2img), dtype=torch.long)

    # image -> text: rank of every gt caption in its image's row, best per image.
    caption_ranks = gt_ranks(s_i2t, txt2img_t, torch.arange(n_txt))
    i2t = torch.full((n_img,), n_txt, dtype=torch.long).scatter_reduce(0, txt2img_t, caption_ranks, 'amin')
    # text -> image: rank of the gt image in the caption's column.
    t2i = gt_ranks(s_t2i.T, torch.arange(n_txt), txt2img_t)

    return recall_from_ranks(i2t, t2i, ks)


def recall_at_k_blockwise(
    score_block: Callable[[int, int, int, int], torch.Tensor],
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
    txt2img_t = torch.as_tensor(list(txt2img), dtype=torch.long)
    caption_ranks = torch.empty(n_txt, dtype=torch.long)
    for i0 in range(0, n_img, chunk):
        i1 = min(i0 + chunk, n_img)
        block = score_block(i0, i1, 0, n_txt)  # (c, N_txt)
        captions = torch.nonzero((txt2img_t >= i0) & (txt2img_t < i1)).flatten()
        caption_ranks[captions] = gt_ranks(block, txt2img_t[captions] - i0, captions, chunk)
    i2t = torch.full((n_img,), n_txt, dtype=torch.long).scatter_reduce(0, txt2img_t, caption_ranks, 'amin')
    t2i = torch.empty(n_txt, dtype=torch.long)
    for t0 in range(0, n_txt, chunk):
        t1 = min(t0 + chunk, n_txt)
        block = score_block(0, n_img, t0, t1).T  # (c, N_img): one caption per row
        t2i[t0:t1] = gt_ranks(block, torch.arange(t1 - t0), txt2img_t[t0:t1], chunk)
    return recall_from_ranks(i2t, t2i, ks)


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
    n_img, n_txt = s.shape
    check_ground_truth(img2txt, txt2img, n_img, n_txt)
    txt2img_t = torch.as_tensor(list(txt2img), dtype=torch.long)
    captions = torch.arange(n_txt)
    i2t_cand, t2i_cand = i2t_candidates.cpu(), t2i_candidates.cpu()

    def reranked(raw: torch.Tensor, candidates: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        hit = candidates == wanted[:, None]  # (Q, K)
        return torch.where(hit.any(1), hit.int().argmax(1), raw)

    caption_ranks = reranked(gt_ranks(s, txt2img_t, captions), i2t_cand[txt2img_t], captions)
    i2t = torch.full((n_img,), n_txt, dtype=torch.long).scatter_reduce(0, txt2img_t, caption_ranks, 'amin')
    t2i = reranked(gt_ranks(s.T, captions, txt2img_t), t2i_cand, txt2img_t)
    return recall_from_ranks(i2t, t2i, ks)


def chance_recall(img2txt: Sequence[Sequence[int]], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Expected :func:`recall_at_k` of random scores (uniformly random rankings).

    For image ``i`` with ``c_i`` captions out of ``N_txt``, P(hit at K) =
    ``1 - C(N_txt - c_i, K) / C(N_txt, K)``; for a caption, P = ``K / N_img``.
    """
    n_img = len(img2txt)
    n_txt = sum(len(c) for c in img2txt)
    result = {}
    for k in ks:
        hits = [1 - comb(n_txt - len(c), k) / comb(n_txt, k) for c in img2txt]
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

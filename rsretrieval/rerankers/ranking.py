"""Vectorised ranking helpers shared by the rerankers.

Every ranking here is descending with ties broken by the lower index, the
order :func:`rsretrieval.evaluation.recall_at_k` uses.
"""

from __future__ import annotations

import torch


def top_candidates(sims: torch.Tensor, k: int, chunk_elements: int = 1 << 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` best columns, best first: ``(values, indices)``, both ``(N_q, k)``.

    Ties are broken by the lower column index, both in which entries enter the
    top ``k`` and in their order (``torch.topk`` promises neither); rows whose
    tied entries straddle the ``k``-th place are resolved by a full stable sort.
    Rows are processed in blocks of about ``chunk_elements`` entries, so a
    transposed view (column queries) is never copied whole.
    """
    n_q, n_c = sims.shape
    rows_per_chunk = max(1, chunk_elements // max(n_c, 1))
    values = torch.empty(n_q, k, dtype=sims.dtype, device=sims.device)
    indices = torch.empty(n_q, k, dtype=torch.long, device=sims.device)
    for r0 in range(0, n_q, rows_per_chunk):
        values[r0 : r0 + rows_per_chunk], indices[r0 : r0 + rows_per_chunk] = _top_candidates(
            sims[r0 : r0 + rows_per_chunk], k
        )
    return values, indices


def _top_candidates(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    values, indices = sims.topk(k, dim=1, sorted=True)  # (N_q, k)
    # reorder each row by (value desc, column asc): sort by column, then stably by value
    by_col = indices.argsort(dim=1)
    indices = indices.gather(1, by_col)
    order = (-sims.gather(1, indices)).argsort(dim=1, stable=True)
    indices = indices.gather(1, order)
    values = sims.gather(1, indices)
    kth = values[:, -1:]
    ambiguous = (sims >= kth).sum(1) > k  # another entry ties with the k-th value
    if bool(ambiguous.any()):
        rows = ambiguous.nonzero().squeeze(1)
        full = torch.sort(sims[rows], dim=1, descending=True, stable=True)
        values[rows], indices[rows] = full.values[:, :k], full.indices[:, :k]
    return values, indices


def order_candidates(indices: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row's candidates by new score, descending, ties by the lower column
    index (the order a dense reranked matrix would be ranked in)."""
    by_col = indices.argsort(dim=1)
    indices, scores = indices.gather(1, by_col), scores.gather(1, by_col)
    order = (-scores).argsort(dim=1, stable=True)
    return indices.gather(1, order), scores.gather(1, order)


def safe_divisor(den: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``den`` with entries of magnitude below ``eps`` replaced by ``eps``, so that dividing by it stays finite."""
    return torch.where(den.abs() < eps, torch.full_like(den, eps), den)


def place_below(sims: torch.Tensor, indices: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Reranked matrix: ``scores`` at ``indices``, every other entry below them.

    The entries outside each row's candidates keep their original order and
    are shifted so that the best of them is 1 below the row's lowest score.

    Args:
        sims: ``(N_q, N_c)`` raw scores.
        indices: ``(N_q, K)`` candidate columns of each row.
        scores: ``(N_q, K)`` their new scores.
    """
    offset = scores.min(1, keepdim=True).values - 1 - sims.max(1, keepdim=True).values  # (N_q, 1)
    out = sims + offset
    return out.scatter_(1, indices, scores)


def positions_in_columns(
    sims: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, chunk_elements: int = 1 << 25
) -> torch.Tensor:
    """1-based position of row ``rows[p]`` in the descending ranking of column ``cols[p]``.

    That is ``1 + #{i : S[i, c] > S[r, c]} + #{i < r : S[i, c] == S[r, c]}``,
    for every pair ``p`` at once. The columns are sorted (values only) in
    chunks of at most ``chunk_elements`` matrix entries; the pairs of each
    column are binary-searched in it, all columns of a chunk in one batched
    ``searchsorted``; exact ties, rare with real scores, are then counted
    explicitly for the pairs that have them.

    Args:
        sims: ``(N, M)`` matrix.
        rows, cols: ``(P,)`` long tensors of matrix indices.
        chunk_elements: Entries sorted at a time (about 8 bytes of working
            memory each, plus the pairs).

    Returns:
        ``(P,)`` long tensor of positions in ``[1, N]``.
    """
    n, m = sims.shape
    out = torch.empty_like(rows)
    values = sims[rows, cols]  # (P,)
    cols_per_chunk = max(1, chunk_elements // max(n, 1))
    order = cols.argsort(stable=True)  # pairs grouped by column
    edges = torch.arange(0, m + cols_per_chunk, cols_per_chunk, device=cols.device)
    bounds = torch.searchsorted(cols[order], edges).tolist()
    arange_n = torch.arange(n, device=sims.device)
    for c, start in enumerate(range(0, m, cols_per_chunk)):
        lo, hi = bounds[c], bounds[c + 1]
        if lo == hi:
            continue
        pairs = order[lo:hi]
        local = cols[pairs] - start  # (p,) non-decreasing
        block = sims[:, start : start + cols_per_chunk].T.contiguous()  # (C, N): row j = column start + j
        ascending = block.sort(dim=1).values
        # the pairs' values as a padded (C, slots) matrix: one row per column
        counts = torch.bincount(local, minlength=block.shape[0])
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(pairs), device=sims.device) - first[local]
        queries = torch.full((block.shape[0], int(counts.max())), float('inf'), dtype=sims.dtype, device=sims.device)
        queries[local, slot] = values[pairs]
        right = torch.searchsorted(ascending, queries, right=True)[local, slot]
        left = torch.searchsorted(ascending, queries, right=False)[local, slot]
        pos = n - right + 1  # 1 + entries strictly greater
        tied = ((right - left) > 1).nonzero().squeeze(1)  # another entry of the column has the same value
        step = max(1, chunk_elements // max(n, 1))
        for t0 in range(0, len(tied), step):
            t = tied[t0 : t0 + step]
            same = block[local[t]] == values[pairs[t], None]  # (t, N)
            pos[t] += (same & (arange_n[None, :] < rows[pairs[t], None])).sum(1)
        out[pairs] = pos
    return out


def backward_positions(sims: torch.Tensor, indices: torch.Tensor, chunk_elements: int = 1 << 25) -> torch.Tensor:
    """``(N_q, K)``: 1-based place of each query ``q`` in the ranking that its
    candidate ``indices[q, j]`` makes of all queries (column ``indices[q, j]``)."""
    n_q, k = indices.shape
    queries = torch.arange(n_q, device=sims.device)[:, None].expand(n_q, k)
    return positions_in_columns(sims, queries.reshape(-1), indices.reshape(-1), chunk_elements).view(n_q, k)

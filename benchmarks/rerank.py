"""Time of the vectorised SMR and MR against a per-query loop, on RSICD-sized matrices.

python benchmarks/rerank.py [--sizes 1093x5465 10921x54605] [--device cuda] [--loop-queries 40]

The matrices are cosine similarities of random unit embeddings in which each
caption is a noisy copy of its image (5 captions per image), so rankings have
the structure of a trained model's. The loop is the formulas read literally, one
query and one candidate at a time (numpy): forward ranking by sorting the
query's row, and each candidate's backward ranking by sorting that candidate's
column (row for text queries). It is timed on ``--loop-queries`` image queries
and as many caption queries, checked against the vectorised result on them,
and extrapolated linearly to every query (its cost is the same for every
query). Prints a markdown table with the peak memory (GPU: allocated; CPU: the
process's resident set, matrices included).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from rsretrieval.rerankers import MR, SMR


def make_sims(n_img: int, n_txt: int, dim: int = 256, seed: int = 0) -> np.ndarray:
    """``(n_img, n_txt)`` float32 cosine similarities with 5-ish captions per image."""
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((n_img, dim), dtype=np.float32)
    txt = img[np.arange(n_txt) % n_img] + 1.5 * rng.standard_normal((n_txt, dim), dtype=np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    return img @ txt.T


def _place(column: np.ndarray, q: int) -> int:
    """1-based place of entry ``q`` in ``column`` sorted descending (ties: lower index first)."""
    return int(np.nonzero(np.argsort(-column, kind='stable') == q)[0][0]) + 1


def smr_loop_row(S: np.ndarray, q: int, topk: int = 30, g1: float = 0.9, g2: float = 1.9) -> np.ndarray:
    """SMR candidate scores of row query ``q``, in forward order."""
    n_q, n_c = S.shape
    k = min(topk, n_c)
    top = np.argsort(-S[q], kind='stable')[:k]
    out = np.empty(k)
    for j, c in enumerate(top, start=1):
        w_f = 1 - j / k
        w_b = 1 - _place(S[:, c], q) / n_q
        w_d = S[q, c] / S[q].max() + S[q, c] / S[:, c].max()
        out[j - 1] = (w_f + g1 * w_b + g2 * w_d) * S[q, c]
    return out


def mr_loop_row(S: np.ndarray, q: int, topk: int = 30, wp1: float = 1.0, wp2: float = 0.7) -> np.ndarray:
    """MR candidate scores of row query ``q``, in forward order."""
    n_c = S.shape[1]
    k = min(max(10, topk), n_c)
    top = np.argsort(-S[q], kind='stable')[:k]
    back = [_place(S[:, c], q) - 1 for c in top]
    r_b = np.empty(k)
    r_b[np.argsort(back, kind='stable')] = np.arange(1, k + 1)
    out = np.empty(k)
    for j, c in enumerate(top, start=1):
        significance = S[q, c] / S[:, c].sum(dtype=np.float64)
        out[j - 1] = wp1 * significance + np.exp(-0.05 * j) + wp2 * np.exp(-0.05 * r_b[j - 1])
    return out


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def peak_memory_gb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on CPU."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def time_vectorised(reranker, sims: torch.Tensor) -> tuple[float, tuple[torch.Tensor, torch.Tensor]]:
    _sync(sims.device)
    start = time.perf_counter()
    out = reranker(sims)
    _sync(sims.device)
    return time.perf_counter() - start, out


def time_loop(loop_row, S: np.ndarray, n_queries: int, reranked: tuple[np.ndarray, np.ndarray]) -> float:
    """Seconds the loop would take for every query; checks the sampled queries on the way."""
    rng = np.random.default_rng(1)
    total = 0.0
    for matrix, result in ((S, reranked[0]), (np.ascontiguousarray(S.T), reranked[1].T)):
        queries = rng.choice(matrix.shape[0], size=min(n_queries, matrix.shape[0]), replace=False)
        start = time.perf_counter()
        scores = [loop_row(matrix, int(q)) for q in queries]
        per_query = (time.perf_counter() - start) / len(queries)
        total += per_query * matrix.shape[0]
        for q, s in zip(queries, scores):  # the loop and the vectorised code agree on the candidates
            top = np.argsort(-matrix[q], kind='stable')[: len(s)]
            np.testing.assert_allclose(result[q, top], s, rtol=1e-4, atol=1e-5)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['1093x5465', '10921x54605'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--loop-queries', type=int, default=40, help='queries per direction timed in the loop')
    parser.add_argument('--topk', type=int, default=30)
    parser.add_argument('--methods', nargs='+', default=['SMR', 'MR'], choices=['SMR', 'MR'])
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    rows = []
    for size in args.sizes:
        n_img, n_txt = (int(v) for v in size.lower().split('x'))
        S = make_sims(n_img, n_txt)
        sims = torch.from_numpy(S).to(device)
        for name, reranker, loop_row in (
            ('SMR', SMR(topk=args.topk), lambda M, q: smr_loop_row(M, q, args.topk)),
            ('MR', MR(topk=args.topk), lambda M, q: mr_loop_row(M, q, args.topk)),
        ):
            if name not in args.methods:
                continue
            reranker(sims[:8, :40])  # warm-up (allocator, kernels)
            seconds, (i2t, t2i) = time_vectorised(reranker, sims)
            peak = peak_memory_gb(device)
            loop_seconds = time_loop(loop_row, S, args.loop_queries, (i2t.cpu().numpy(), t2i.cpu().numpy()))
            rows.append((size, name, seconds, loop_seconds, peak))
            print(f'{size} {name}: vectorised {seconds:.2f} s, loop {loop_seconds:.1f} s (extrapolated)', flush=True)
    print(f'\ndevice: {device} ({threads} CPU threads), K = {args.topk}, float32\n')
    print('| matrix | reranker | vectorised (s) | loop, extrapolated (s) | speed-up | peak memory so far (GB) |')
    print('|---|---|---|---|---|---|')
    for size, name, seconds, loop_seconds, peak in rows:
        print(f'| {size} | {name} | {seconds:.2f} | {loop_seconds:.0f} | {loop_seconds / seconds:.0f}x | {peak:.1f} |')


if __name__ == '__main__':
    main()

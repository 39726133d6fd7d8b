"""The reranker parameter study of the paper's Fig. 6 on a saved similarity matrix.

    python tools/analysis_tools/rerank_study.py SIMS.npz [--topk 10 20 30] [--out-dir DIR]

``SIMS.npz`` is what ``tools/test.py ... --out SIMS.npz`` writes. For each K, the
grid gamma1, gamma2 in [0.5, 2.0] (step 0.1) is evaluated for SMR, for SMR
without the final multiplication by S ("w/o sim"), and for SMR with gamma2 = 0
("w/o extreme difference ratio"); MR runs on the same grid for (wp1, wp2). Every
result goes to ``rerank_study.csv``; ``fig6a_K{K}.png`` compares SMR and MR,
``fig6b_K{K}.png`` SMR with and without the similarity reweighting (legends outside
the axes, to their right, clear of the curves and the no-rerank line). The rank
components are computed once per K and direction, so a grid point costs one
combination and one recall computation.
"""

from __future__ import annotations

import argparse
import csv
import os
import os.path as osp
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from rsretrieval.evaluation import load_similarity, recall_at_k
from rsretrieval.rerankers import MR, SMR
from rsretrieval.rerankers.ranking import place_below

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

METRIC_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'mR')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SMR / MR parameter study (paper Fig. 6)')
    parser.add_argument('sims', help='.npz written by tools/test.py --out')
    parser.add_argument('--topk', type=int, nargs='+', default=[10, 20, 30], help='values of K')
    parser.add_argument('--grid', type=float, nargs=3, default=[0.5, 2.0, 0.1], metavar=('START', 'STOP', 'STEP'))
    parser.add_argument('--out-dir', help='default: beside SIMS.npz, in rerank_study/')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args()


def grid_values(start: float, stop: float, step: float) -> list[float]:
    n = int(round((stop - start) / step)) + 1
    return [round(start + i * step, 6) for i in range(n)]


class _Study:
    """Evaluates reranked matrices built from precomputed components."""

    def __init__(self, sims: torch.Tensor, img2txt: list, txt2img: list) -> None:
        self.sims, self.img2txt, self.txt2img = sims, img2txt, txt2img
        self.sims_t = sims.T.contiguous()

    def evaluate(self, reranker, parts_i2t: dict, parts_t2i: dict) -> dict[str, float]:
        i2t = place_below(self.sims, parts_i2t['indices'], reranker.candidate_scores(parts_i2t))
        t2i = place_below(self.sims_t, parts_t2i['indices'], reranker.candidate_scores(parts_t2i)).T
        return recall_at_k(i2t, t2i, self.img2txt, self.txt2img)


def run_study(
    sims: np.ndarray, img2txt: list, txt2img: list, topks: list[int], grid: list[float], device: str = 'cpu'
) -> tuple[list[dict], dict[str, float]]:
    """All grid results as rows (method, K, p1, p2, metrics) and the raw metrics."""
    s = torch.as_tensor(sims, dtype=torch.float32, device=device)
    study = _Study(s, img2txt, txt2img)
    raw = recall_at_k(s, s, img2txt, txt2img)
    rows = []
    for k in topks:
        smr, mr = SMR(topk=k), MR(topk=k, min_candidates=1)
        smr_parts = (smr.components(s), smr.components(study.sims_t))
        mr_parts = (mr.components(s), mr.components(study.sims_t))
        for p1 in grid:
            for method, reranker, parts, p2_values in (
                ('SMR', smr, smr_parts, grid),
                ('SMR w/o sim', smr, smr_parts, grid),
                ('SMR gamma2=0', smr, smr_parts, [0.0]),
                ('MR', mr, mr_parts, grid),
            ):
                for p2 in p2_values:
                    if method.startswith('SMR'):
                        reranker.gamma1, reranker.gamma2 = p1, p2
                        reranker.multiply_sim = method != 'SMR w/o sim'
                    else:
                        reranker.wp1, reranker.wp2 = p1, p2
                    rows.append(dict(method=method, K=k, p1=p1, p2=p2, **study.evaluate(reranker, *parts)))
    return rows, raw


def write_csv(rows: list[dict], raw: dict[str, float], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'K', 'gamma1_or_wp1', 'gamma2_or_wp2', *METRIC_KEYS])
        writer.writerow(['raw', '', '', '', *(f'{raw[m]:.4f}' for m in METRIC_KEYS)])
        for r in rows:
            writer.writerow([r['method'], r['K'], r['p1'], r['p2'], *(f'{r[m]:.4f}' for m in METRIC_KEYS)])


FIGSIZE = (9, 4.5)  # inches; the legend takes the right ~2 inches, outside the axes


def _series(rows: list[dict], k: int, method: str, p2: float) -> tuple[list[float], list[float]]:
    """mR against p1 for one method, K and p2."""
    pts = sorted((r['p1'], r['mR']) for r in rows if r['K'] == k and r['method'] == method and r['p2'] == p2)
    return [p for p, _ in pts], [m for _, m in pts]


def _shown_p2(rows: list[dict], k: int) -> list[float]:
    """The values of gamma2 / wp2 drawn as curves (the paper's, when in the grid)."""
    p2_all = sorted({r['p2'] for r in rows if r['K'] == k and r['method'] == 'SMR'})
    return [p for p in p2_all if any(abs(p - v) < 1e-6 for v in (0.5, 1.0, 1.5, 1.9, 2.0))] or p2_all[:4]


def _new_axes(title: str, xlabel: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout='constrained')
    ax = fig.add_subplot()
    ax.set(xlabel=xlabel, ylabel='mR (%)', title=title)
    return fig, ax


def _finish(ax: Axes, raw: dict[str, float]) -> None:
    """The no-rerank line, and the legend outside the axes, to their right."""
    ax.axhline(raw['mR'], color='grey', lw=0.8, label='no rerank')
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def fig6a(rows: list[dict], raw: dict[str, float], k: int) -> Figure:
    """Fig. 6a for one K: SMR (solid) vs MR (dashed) per gamma2 / wp2, SMR gamma2 = 0 dash-dotted."""
    fig, ax = _new_axes(f'SMR vs MR, K={k}', 'γ1 (SMR) / wp1 (MR)')
    for i, p2 in enumerate(_shown_p2(rows, k)):
        ax.plot(*_series(rows, k, 'SMR', p2), '-', color=f'C{i}', label=f'SMR γ2={p2:g}')
        ax.plot(*_series(rows, k, 'MR', p2), '--', color=f'C{i}', label=f'MR wp2={p2:g}')
    ax.plot(*_series(rows, k, 'SMR gamma2=0', 0.0), '-.', color='black', label='SMR γ2=0')
    _finish(ax, raw)
    return fig


def fig6b(rows: list[dict], raw: dict[str, float], k: int) -> Figure:
    """Fig. 6b for one K: SMR (solid) vs SMR without the multiplication by S (dotted)."""
    fig, ax = _new_axes(f'SMR with and without similarity reweighting, K={k}', 'γ1')
    for i, p2 in enumerate(_shown_p2(rows, k)):
        ax.plot(*_series(rows, k, 'SMR', p2), '-', color=f'C{i}', label=f'SMR γ2={p2:g}')
        ax.plot(*_series(rows, k, 'SMR w/o sim', p2), ':', color=f'C{i}', label=f'SMR w/o sim γ2={p2:g}')
    _finish(ax, raw)
    return fig


def plot(rows: list[dict], raw: dict[str, float], k: int, out_dir: str) -> list[str]:
    """Write ``fig6a_K{k}.png`` and ``fig6b_K{k}.png`` in ``out_dir``; returns their paths."""
    paths = []
    for name, build in (('fig6a', fig6a), ('fig6b', fig6b)):
        paths.append(osp.join(out_dir, f'{name}_K{k}.png'))
        build(rows, raw, k).savefig(paths[-1], dpi=120)
    return paths


def best_rows(rows: list[dict]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in rows:
        if r['method'] not in best or r['mR'] > best[r['method']]['mR']:
            best[r['method']] = r
    return best


def main() -> None:
    args = parse_args()
    data = load_similarity(args.sims)
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.sims)), 'rerank_study')
    os.makedirs(out_dir, exist_ok=True)
    grid = grid_values(*args.grid)
    start = time.perf_counter()
    rows, raw = run_study(data['sims'], data['img2txt'], data['txt2img'], args.topk, grid, args.device)
    elapsed = time.perf_counter() - start
    csv_path = osp.join(out_dir, 'rerank_study.csv')
    write_csv(rows, raw, csv_path)
    pngs = [p for k in args.topk for p in plot(rows, raw, k, out_dir)]
    n_img, n_txt = data['sims'].shape
    print(f'{len(rows)} settings on {n_img} x {n_txt} in {elapsed:.1f} s; raw mR {raw["mR"]:.2f}')
    paper = {'SMR': (0.9, 1.9), 'MR': (1.0, 0.7)}
    for method, r in best_rows(rows).items():
        print(f'best {method:13s} K={r["K"]:<3d} p1={r["p1"]:<4g} p2={r["p2"]:<4g} mR {r["mR"]:.2f}')
    for method, (p1, p2) in paper.items():
        for r in rows:
            if r['method'] == method and abs(r['p1'] - p1) < 1e-6 and abs(r['p2'] - p2) < 1e-6:
                print(f'paper default {method} K={r["K"]} ({p1:g}, {p2:g}): mR {r["mR"]:.2f}')
    print(f'wrote {csv_path} and {len(pngs)} plots in {out_dir}')


if __name__ == '__main__':
    main()

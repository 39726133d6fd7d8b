"""The reranker parameter study of the paper's Fig. 6 on a saved similarity matrix.

    python tools/analysis_tools/rerank_study.py SIMS.npz [--topk 10 20 30] [--out-dir DIR]

``SIMS.npz`` is what ``tools/test.py ... --out SIMS.npz`` writes. For each K, the
grid gamma1, gamma2 in [0.5, 2.0] (step 0.1) is evaluated for SMR, for SMR
without the final multiplication by S ("w/o sim"), and for SMR with gamma2 = 0
("w/o extreme difference ratio"); MR runs on the same grid for (wp1, wp2). Every
grid result goes to ``rerank_study.csv``; ``fig6a_K{K}.png`` compares SMR and MR,
``fig6b_K{K}.png`` SMR with and without the similarity reweighting. The paper's weights
(SMR 0.9, 1.9; MR 1.0, 0.7) are printed at every K, evaluated on their own where the grid
does not hold them. The study itself is :mod:`rsretrieval.analysis.rerank_study`.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import time

from rsretrieval.cli import check_inputs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SMR / MR parameter study (paper Fig. 6)')
    parser.add_argument('sims', help='.npz written by tools/test.py --out')
    parser.add_argument('--topk', type=int, nargs='+', default=[10, 20, 30], help='values of K')
    parser.add_argument('--grid', type=float, nargs=3, default=[0.5, 2.0, 0.1], metavar=('START', 'STOP', 'STEP'))
    parser.add_argument('--out-dir', help='default: beside SIMS.npz, in rerank_study/')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    check_inputs(files={args.sims: 'similarity file'})
    return args


def report(
    rows: list[dict], defaults: list[dict], raw: dict[str, float], shape: tuple[int, int], seconds: float
) -> None:
    """Print the study's size, each method's best setting and the paper's settings at every K."""
    from rsretrieval.analysis.rerank_study import best_rows

    print(f'{len(rows)} settings on {shape[0]} x {shape[1]} in {seconds:.1f} s; raw mR {raw["mR"]:.2f}')
    for method, r in best_rows(rows).items():
        print(f'best {method:13s} K={r["K"]:<3d} p1={r["p1"]:<4g} p2={r["p2"]:<4g} mR {r["mR"]:.2f}')
    for r in defaults:
        where = '' if r['on_grid'] else ' (off the grid, evaluated on its own)'
        print(f'paper default {r["method"]} K={r["K"]} ({r["p1"]:g}, {r["p2"]:g}): mR {r["mR"]:.2f}{where}')


def main() -> None:
    args = parse_args()
    from rsretrieval.analysis.rerank_study import grid_values, paper_default_rows, run_study, write_csv
    from rsretrieval.analysis.rerank_study_figures import save_study_figures
    from rsretrieval.evaluation import load_similarity

    data = load_similarity(args.sims)
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.sims)), 'rerank_study')
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    rows, raw = run_study(
        data['sims'], data['img2txt'], data['txt2img'], args.topk, grid_values(*args.grid), args.device
    )
    seconds = time.perf_counter() - start
    defaults = paper_default_rows(data['sims'], data['img2txt'], data['txt2img'], args.topk, rows, args.device)
    csv_path = osp.join(out_dir, 'rerank_study.csv')
    write_csv(rows, raw, csv_path)
    pngs = [p for k in args.topk for p in save_study_figures(rows, raw, k, out_dir)]
    report(rows, defaults, raw, data['sims'].shape, seconds)
    print(f'wrote {csv_path} and {len(pngs)} plots in {out_dir}')


if __name__ == '__main__':
    main()

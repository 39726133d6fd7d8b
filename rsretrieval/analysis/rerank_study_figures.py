"""The figures of the reranker parameter study (the paper's Fig. 6) from its rows.

``fig6a`` compares SMR and MR, ``fig6b`` SMR with and without the similarity
reweighting; both plot mR against the first weight, one curve per value of the
second, with the legend outside the axes, to their right, clear of the curves
and of the no-rerank line.
"""

from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE = (9, 4.5)  # inches; the legend takes the right ~2 inches, outside the axes
# Values of gamma2 / wp2 drawn as curves when the grid holds them: the paper's choices.
SHOWN_P2 = (0.5, 1.0, 1.5, 1.9, 2.0)


def _series(rows: list[dict], k: int, method: str, p2: float) -> tuple[list[float], list[float]]:
    """mR against p1 for one method, K and p2."""
    pts = sorted((r['p1'], r['mR']) for r in rows if r['K'] == k and r['method'] == method and r['p2'] == p2)
    return [p for p, _ in pts], [m for _, m in pts]


def _shown_p2(rows: list[dict], k: int) -> list[float]:
    """The values of gamma2 / wp2 drawn as curves (those of ``SHOWN_P2`` in the grid)."""
    p2_all = sorted({r['p2'] for r in rows if r['K'] == k and r['method'] == 'SMR'})
    return [p for p in p2_all if any(abs(p - v) < 1e-6 for v in SHOWN_P2)] or p2_all[:4]


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


def save_study_figures(rows: list[dict], raw: dict[str, float], k: int, out_dir: str) -> list[str]:
    """Write ``fig6a_K{k}.png`` and ``fig6b_K{k}.png`` in ``out_dir``; returns their paths."""
    paths = []
    for name, build in (('fig6a', fig6a), ('fig6b', fig6b)):
        paths.append(osp.join(out_dir, f'{name}_K{k}.png'))
        build(rows, raw, k).savefig(paths[-1], dpi=120)
    return paths

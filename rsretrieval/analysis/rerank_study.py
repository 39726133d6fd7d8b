"""The reranker parameter study of the paper's Fig. 6 on a saved similarity matrix.

For each K, the grid of two weights (p1, p2) is evaluated for SMR (gamma1,
gamma2), for SMR without the final multiplication by S ("w/o sim"), for SMR with
gamma2 = 0 ("w/o extreme difference ratio") and for MR (wp1, wp2). Every setting
is its own reranker, built from a config through ``RERANKERS``; the rank
components, which no weight changes, are computed once per K, reranker type and
direction, so a setting costs one combination and one recall computation. The
paper's own weights are evaluated at every K as well, on the grid or off it
(:func:`paper_default_rows`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rsretrieval.evaluation import recall_at_k
from rsretrieval.registry import RERANKERS
from rsretrieval.rerankers import TopKReranker
from rsretrieval.rerankers.ranking import place_below

METRIC_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'mR')

# Arguments, besides topk, of the reranker whose components a type's settings share:
# MR reranks exactly K candidates here, as SMR does (GaLR's lower bound of 10 would
# make every K below 10 the same setting).
COMPONENT_OPTIONS = {'SMR': {}, 'MR': {'min_candidates': 1}}


@dataclass(frozen=True)
class StudyMethod:
    """One family of curves: a registered reranker type and the two weights the grid sets.

    Attributes:
        name: Label of the method in the rows, the CSV and the legends.
        reranker: Registered reranker type (a key of ``COMPONENT_OPTIONS``).
        weights: Names of the reranker's arguments set to ``p1`` and ``p2``.
        p2_values: Values of ``p2``; ``None``: the grid.
        options: Further arguments; they change only how the components combine.
    """

    name: str
    reranker: str
    weights: tuple[str, str]
    p2_values: tuple[float, ...] | None = None
    options: dict = field(default_factory=dict)

    def config(self, k: int, p1: float, p2: float) -> dict:
        """The config of this method's reranker at ``K = k`` and weights ``(p1, p2)``."""
        first, second = self.weights
        options = {**COMPONENT_OPTIONS[self.reranker], **self.options}
        return dict(type=self.reranker, topk=k, **options, **{first: p1, second: p2})


METHODS = (
    StudyMethod('SMR', 'SMR', ('gamma1', 'gamma2')),
    StudyMethod('SMR w/o sim', 'SMR', ('gamma1', 'gamma2'), options={'multiply_sim': False}),
    StudyMethod('SMR gamma2=0', 'SMR', ('gamma1', 'gamma2'), p2_values=(0.0,)),
    StudyMethod('MR', 'MR', ('wp1', 'wp2')),
)

#: The paper's best weights ``(p1, p2)``: SMR's (gamma1, gamma2) and MR's (wp1, wp2).
PAPER_DEFAULTS = {'SMR': (0.9, 1.9), 'MR': (1.0, 0.7)}


def grid_values(start: float, stop: float, step: float) -> list[float]:
    """``start, start + step, ..., stop`` (both ends included), rounded to 6 decimals."""
    n = int(round((stop - start) / step)) + 1
    return [round(start + i * step, 6) for i in range(n)]


class _Study:
    """Evaluates rerankers on one matrix from components computed once per K and type."""

    def __init__(self, sims: torch.Tensor, img2txt: list, txt2img: list) -> None:
        self.sims, self.img2txt, self.txt2img = sims, img2txt, txt2img
        self.sims_t = sims.T.contiguous()

    def components(self, reranker: TopKReranker) -> tuple[dict, dict]:
        """The reranker's components for image queries and for caption queries."""
        return reranker.components(self.sims), reranker.components(self.sims_t)

    def evaluate(self, reranker: TopKReranker, parts_i2t: dict, parts_t2i: dict) -> dict[str, float]:
        """Recall of ``reranker`` from components that its type and K computed."""
        i2t = place_below(self.sims, parts_i2t['indices'], reranker.candidate_scores(parts_i2t))
        t2i = place_below(self.sims_t, parts_t2i['indices'], reranker.candidate_scores(parts_t2i)).T
        return recall_at_k(i2t, t2i, self.img2txt, self.txt2img)


def run_study(
    sims: np.ndarray,
    img2txt: list,
    txt2img: list,
    topks: Sequence[int],
    grid: Sequence[float],
    device: str = 'cpu',
) -> tuple[list[dict], dict[str, float]]:
    """Evaluate every method of :data:`METHODS` at every K and grid point.

    Args:
        sims: ``(N_img, N_txt)`` similarity matrix.
        img2txt: The captions of every image.
        txt2img: The image of every caption.
        topks: Values of K.
        grid: Values of ``p1`` (and of ``p2``, unless a method fixes it).
        device: Where the matrix is reranked.

    Returns:
        ``(rows, raw)``: one row per setting (``method``, ``K``, ``p1``, ``p2`` and
        the metrics), and the metrics without reranking.
    """
    s = torch.as_tensor(sims, dtype=torch.float32, device=device)
    study = _Study(s, img2txt, txt2img)
    raw = recall_at_k(s, s, img2txt, txt2img)
    rows = []
    for k in topks:
        parts = {
            name: study.components(RERANKERS.build(dict(type=name, topk=k, **options)))
            for name, options in COMPONENT_OPTIONS.items()
        }
        for p1 in grid:
            for method in METHODS:
                for p2 in grid if method.p2_values is None else method.p2_values:
                    reranker = RERANKERS.build(method.config(k, p1, p2))
                    metrics = study.evaluate(reranker, *parts[method.reranker])
                    rows.append(dict(method=method.name, K=k, p1=p1, p2=p2, **metrics))
    return rows, raw


def paper_default_rows(
    sims: np.ndarray,
    img2txt: list,
    txt2img: list,
    topks: Sequence[int],
    grid_rows: Sequence[dict] = (),
    device: str = 'cpu',
) -> list[dict]:
    """The paper's weights (:data:`PAPER_DEFAULTS`) at every K, evaluated on their own.

    The grid need not hold them (a coarser step or another range skips 0.9 and
    1.9), so each is a reranker of its own, as a grid setting is.

    Args:
        sims, img2txt, txt2img, topks, device: As for :func:`run_study`.
        grid_rows: The study's rows: a default they hold is marked ``on_grid``.

    Returns:
        One row per method and K: as :func:`run_study`'s, with ``on_grid``.
    """
    s = torch.as_tensor(sims, dtype=torch.float32, device=device)
    study = _Study(s, img2txt, txt2img)
    methods = {method.name: method for method in METHODS}
    rows = []
    for k in topks:
        for name, (p1, p2) in PAPER_DEFAULTS.items():
            reranker = RERANKERS.build(methods[name].config(k, p1, p2))
            metrics = study.evaluate(reranker, *study.components(reranker))
            on_grid = any(r['K'] == k for r in rows_at(list(grid_rows), name, p1, p2))
            rows.append(dict(method=name, K=k, p1=p1, p2=p2, on_grid=on_grid, **metrics))
    return rows


def write_csv(rows: list[dict], raw: dict[str, float], path: str) -> None:
    """The raw metrics, then one line per setting, metrics to 4 decimals."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'K', 'gamma1_or_wp1', 'gamma2_or_wp2', *METRIC_KEYS])
        writer.writerow(['raw', '', '', '', *(f'{raw[m]:.4f}' for m in METRIC_KEYS)])
        for r in rows:
            writer.writerow([r['method'], r['K'], r['p1'], r['p2'], *(f'{r[m]:.4f}' for m in METRIC_KEYS)])


def best_rows(rows: list[dict]) -> dict[str, dict]:
    """The highest-mR row of every method (the first one on ties)."""
    best: dict[str, dict] = {}
    for r in rows:
        if r['method'] not in best or r['mR'] > best[r['method']]['mR']:
            best[r['method']] = r
    return best


def rows_at(rows: list[dict], method: str, p1: float, p2: float) -> list[dict]:
    """The rows of ``method`` at weights ``(p1, p2)``, one per K in the study."""
    return [r for r in rows if r['method'] == method and abs(r['p1'] - p1) < 1e-6 and abs(r['p2'] - p2) < 1e-6]

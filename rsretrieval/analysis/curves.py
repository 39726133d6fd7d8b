"""Training curves from the scalars mmengine writes into a work dir.

mmengine's ``LocalVisBackend`` appends one JSON object per line to
``WORK_DIR/<timestamp>/vis_data/scalars.json``: training lines carry ``iter``
and the losses, validation lines the metrics and ``step`` = the epoch. A run that
was resumed has one timestamp folder per start; a test-only run (``tools/test.py``)
has a folder without training lines, which is not part of the curves.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Validation metrics, in the order they are drawn.
METRICS = ('mR', 'i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10')
#: Training scalars that are not losses and not worth a panel by default.
NOT_CURVES = {'iter', 'epoch', 'step', 'data_time', 'time', 'base_lr', 'memory'}
#: The fewest logged points a default moving average spans.
MIN_WINDOW = 3
#: The marker of each R@K line on the validation panel.
R_AT_K_MARKERS = {'1': 'v', '5': 's', '10': '^'}


class NoLogsError(FileNotFoundError):
    """A folder without the training logs mmengine writes."""


@dataclass
class RunScalars:
    """The scalars of one work dir.

    Attributes:
        name: Label of the run (its folder name).
        train: ``key -> (iterations, values)``, iterations increasing.
        val: ``key -> (epochs, values)``, epochs increasing.
    """

    name: str
    train: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    val: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def best_epoch(self, metric: str = 'mR') -> tuple[int, float] | None:
        """``(epoch, value)`` of the highest validation ``metric``, or None."""
        if metric not in self.val:
            return None
        epochs, values = self.val[metric]
        i = int(np.argmax(values))
        return int(epochs[i]), float(values[i])


def _read_lines(path: Path) -> list[dict]:
    """The JSON objects of a scalars file; a last line still being written is skipped."""
    rows = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a run that is still going may be writing this line
    return rows


def read_scalars(work_dir: str | os.PathLike, name: str | None = None) -> RunScalars:
    """Read every training start in ``work_dir`` into one history.

    Steps logged twice (a run resumed from a checkpoint older than its last
    logs) keep the later start's values.

    Raises:
        NoLogsError: No ``*/vis_data/scalars.json`` with training lines in ``work_dir``.
    """
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        raise NoLogsError(f'work dir not found: {work_dir}')
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))  # timestamp folders: chronological
    train: dict[str, dict[int, float]] = {}
    val: dict[str, dict[int, float]] = {}
    for path in files:
        rows = _read_lines(path)
        if not any('iter' in row for row in rows):
            continue  # a test-only run
        for row in rows:
            if 'iter' in row:
                target, x = train, int(row['iter'])
            elif 'step' in row and any(k in row for k in METRICS):
                target, x = val, int(row['step'])
            else:
                continue
            for key, value in row.items():
                if key not in NOT_CURVES and isinstance(value, (int, float)):
                    target.setdefault(key, {})[x] = float(value)
    if not train:
        raise NoLogsError(
            f'{work_dir} has no training logs (no */vis_data/scalars.json with training lines): '
            'give the work dir of a training run (tools/train.py --work-dir)'
        )

    def arrays(table: dict[str, dict[int, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key, points in table.items():
            xs = np.array(sorted(points))
            out[key] = (xs, np.array([points[x] for x in xs]))
        return out

    return RunScalars(name or work_dir.name, arrays(train), arrays(val))


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over the last ``window`` points (fewer at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumsum[1:] - cumsum[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def loss_keys(runs: list[RunScalars]) -> list[str]:
    """The loss terms present in any run: ``loss`` first, then its terms, then other scalars."""
    keys = {k for run in runs for k in run.train}
    losses = sorted(k for k in keys if k.startswith('loss') and k != 'loss')
    others = sorted(k for k in keys if not k.startswith('loss') and k not in ('lr', 'grad_norm'))
    return (['loss'] if 'loss' in keys else []) + losses + others + [k for k in ('lr', 'grad_norm') if k in keys]


def default_window(points: int) -> int:
    """The moving-average window for ``points`` logged values: 1/25 of them, at least
    3 so that a short run (the demo logs 27 points) is smoothed too, at most half of
    them so that the average still follows the curve (1 below 4 points: nothing to
    average)."""
    return max(1, min(max(MIN_WINDOW, round(points / 25)), points // 2))


def _label(run: RunScalars, what: str, several: bool) -> str:
    """A line's legend entry: what it draws, after the run's name where runs share the axes."""
    return f'{run.name}: {what}' if several else what


def _draw_training_panel(ax: Axes, key: str, runs: list[RunScalars], colours: list[str], window: int | None) -> None:
    """One training scalar per iteration: each run raw (faint) and its moving average."""
    several = len(runs) > 1
    for i, run in enumerate(runs):
        if key not in run.train:
            continue
        xs, ys = run.train[key]
        colour = colours[i % len(colours)]
        points = window if window is not None else default_window(len(ys))
        if points > 1:
            ax.plot(xs, ys, color=colour, alpha=0.25, linewidth=0.8, label=_label(run, 'logged', several))
            ax.plot(xs, smooth(ys, points), color=colour, linewidth=1.6,
                    label=_label(run, f'mean of {points} points', several))  # fmt: skip
        else:
            ax.plot(xs, ys, color=colour, linewidth=1.6, label=_label(run, 'logged', several))
    ax.set_title(key)
    ax.set_xlabel('iteration')
    if key in ('lr', 'grad_norm') or key.startswith('loss'):
        ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 4))
    ax.legend(fontsize=7)


def _metric_style(metric: str) -> dict:
    """mR thick with dots; each R@K thin, solid for image queries, dashed for caption queries,
    its K told by its marker, so that the seven lines of one run (one colour) stay apart."""
    if metric == 'mR':
        return dict(linewidth=2.0, marker='o', markersize=3)
    direction, _, k = metric.partition('_R@')
    linestyle = '-' if direction == 'i2t' else '--'
    return dict(linewidth=0.8, alpha=0.6, linestyle=linestyle, marker=R_AT_K_MARKERS.get(k, '.'), markersize=3)


def _draw_validation_panel(ax: Axes, runs: list[RunScalars], colours: list[str], metrics: tuple[str, ...]) -> None:
    """The validation metrics per epoch: mR thick, the others thin, each run's best mR starred."""
    from matplotlib.ticker import MaxNLocator

    several = len(runs) > 1
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        for metric in metrics:
            if metric in run.val:
                ax.plot(*run.val[metric], color=colour, label=_label(run, metric, several), **_metric_style(metric))
        best = run.best_epoch()
        if best is not None:
            ax.plot([best[0]], [best[1]], marker='*', markersize=14, color=colour, markeredgecolor='black',
                    linestyle='none', label=_label(run, 'best mR', several))  # fmt: skip
            ax.annotate(f'best {best[1]:.2f} (epoch {best[0]})', best, textcoords='offset points',
                        xytext=(4, 6), fontsize=8, color=colour)  # fmt: skip
    ax.set_title('validation: mR and R@1/5/10 (i2t solid, t2i dashed)')
    ax.set_xlabel('epoch')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=6, ncol=2 if several else 1, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def draw_curves(
    runs: list[RunScalars],
    keys: list[str] | None = None,
    window: int | None = None,
    metrics: tuple[str, ...] = METRICS,
) -> Figure:
    """The figure of :func:`plot_curves`, not saved (its panels are ``fig.axes``, in order)."""
    from matplotlib.figure import Figure

    keys = keys or loss_keys(runs)
    has_val = any(run.val for run in runs)
    panels = len(keys) + (1 if has_val else 0)
    cols = min(3, panels)
    rows = (panels + cols - 1) // cols
    fig = Figure(figsize=(5 * cols, 3.4 * rows), layout='constrained')
    axes = fig.subplots(rows, cols, squeeze=False)
    colours = [f'C{i}' for i in range(10)]
    for ax, key in zip(axes.flat, keys):
        _draw_training_panel(ax, key, runs, colours, window)
    if has_val:
        _draw_validation_panel(axes.flat[len(keys)], runs, colours, metrics)
    for ax in list(axes.flat)[panels:]:
        fig.delaxes(ax)
    return fig


def plot_curves(
    runs: list[RunScalars],
    out: str | os.PathLike,
    keys: list[str] | None = None,
    window: int | None = None,
    metrics: tuple[str, ...] = METRICS,
) -> list[str]:
    """Draw each training scalar on its own axes and the validation metrics per epoch.

    Every run has one colour in every panel and every line a legend entry on its
    panel; a training scalar is drawn raw (faint) and as a moving average over
    ``window`` logged points (default: :func:`default_window`; each logged value
    is already mmengine's average over its logging window); the metrics panel
    draws mR thick and the six R@K thin, and stars each run's best-mR epoch.

    Returns:
        The panel titles, in order.
    """
    keys = keys or loss_keys(runs)
    fig = draw_curves(runs, keys, window, metrics)
    fig.savefig(out, dpi=110)
    return list(keys) + (['validation'] if any(run.val for run in runs) else [])

"""Aggregate the metrics of runs that differ only in their random seed."""

from __future__ import annotations

import math
from collections.abc import Mapping

from .metric_keys import common_metric_keys


def aggregate_seeds(results: Mapping[int, Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (n - 1) of every metric over the seeds.

    Args:
        results: ``seed -> {metric: value}``; every seed must report the same
            metrics.

    Returns:
        ``metric -> (mean, std)`` in the first seed's metric order; ``std`` is
        0 for a single seed.

    Raises:
        ValueError: No results, or seeds that report different metrics.
    """
    if not results:
        raise ValueError('no results to aggregate')
    seeds = list(results)
    keys = common_metric_keys(results, lambda seed: f'seed {seed}')
    summary = {}
    for key in keys:
        values = [float(results[s][key]) for s in seeds]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        summary[key] = (mean, math.sqrt(var))
    return summary


def seeds_markdown(results: Mapping[int, Mapping[str, float]], title: str = '') -> str:
    """A markdown table: one row per metric, one column per seed, then mean ± std."""
    summary = aggregate_seeds(results)
    seeds = list(results)
    lines = [f'### {title}', ''] if title else []
    lines.append('| metric | ' + ' | '.join(f'seed {s}' for s in seeds) + ' | mean ± std |')
    lines.append('|---|' + '---|' * (len(seeds) + 1))
    for key, (mean, std) in summary.items():
        cells = ' | '.join(f'{results[s][key]:.2f}' for s in seeds)
        lines.append(f'| {key} | {cells} | {mean:.2f} ± {std:.2f} |')
    return '\n'.join(lines)

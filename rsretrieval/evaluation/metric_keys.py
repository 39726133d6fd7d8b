"""Checks on several metric dicts that are combined key by key (seeds, parts)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping


def common_metric_keys(
    results: Mapping[Hashable, Mapping[str, float]], describe: Callable[[Hashable], str]
) -> list[str]:
    """The metric keys every result reports, in the first result's order.

    Args:
        results: ``name -> {metric: value}`` (a seed, a part, ...).
        describe: How an error names a result (``lambda seed: f'seed {seed}'``).

    Raises:
        ValueError: A result reports other metrics than the first (the message
            names both and the keys they differ in).
    """
    names = list(results)
    keys = list(results[names[0]])
    for name in names[1:]:
        if set(results[name]) != set(keys):
            differing = sorted(set(keys) ^ set(results[name]))
            raise ValueError(f'{describe(name)} reports other metrics than {describe(names[0])}: {differing}')
    return keys

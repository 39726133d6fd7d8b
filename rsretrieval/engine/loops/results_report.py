"""The log lines a retrieval evaluation ends with: its results table and its phase timings."""

from __future__ import annotations

from collections.abc import Sequence

from rsretrieval.evaluation import chance_recall, format_results_table


def results_rows(
    phase: str,
    metrics: dict[str, float],
    img2txt: Sequence[Sequence[int]],
    raw: dict[str, float] | None = None,
    reranker_name: str | None = None,
) -> dict[str, dict[str, float]]:
    """The table's rows, in order: chance level, then the phase's results.

    With a reranker (``reranker_name`` and its ``raw`` metrics given) the raw
    and the reranked results each get a row, so the two read side by side.
    """
    rows = {'chance': chance_recall(img2txt)}
    if reranker_name is None:
        rows[phase] = metrics
    else:
        rows[f'{phase} (raw)'] = raw
        rows[f'{phase} + {reranker_name}'] = metrics
    return rows


def results_message(
    phase: str, rows: dict[str, dict[str, float]], shape: tuple[int, int], label: str | None = None
) -> str:
    """The results table under a line naming the phase, the ``label`` and the test set's size."""
    note = f' [{label}]' if label else ''
    header = f'{phase} retrieval results{note} ({shape[0]} images, {shape[1]} captions):'
    return f'{header}\n{format_results_table(rows)}'


def timings_message(phase: str, timings: dict[str, float], reranker_name: str | None = None) -> str:
    """One line of the phases' seconds (``images``, ``captions``, ``scores``, ``metrics``, ``total``)."""
    t = timings
    scores = f'scores + {reranker_name}' if reranker_name else 'scores'
    return (
        f'{phase} time: {t["total"]:.2f} s (images {t["images"]:.2f}, captions {t["captions"]:.2f}, '
        f'{scores} {t["scores"]:.2f}, metrics {t["metrics"]:.2f})'
    )

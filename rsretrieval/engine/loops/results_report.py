"""The log lines a retrieval evaluation ends with: its results tables, shared-caption counts and phase timings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rsretrieval.evaluation import chance_recall, format_results_table
from rsretrieval.evaluation.metrics.retrieval_recall import EQUIVALENT_PREFIX, SHARED_PREFIX

#: The row-name suffix of caption-equivalent recall.
EQUIVALENT_ROW = ', caption-equivalent'


def equivalent_part(metrics: Mapping[str, float]) -> dict[str, float] | None:
    """The ``equiv/<key>`` values of ``metrics`` under their plain keys (``None``: there are none)."""
    out = {k.removeprefix(EQUIVALENT_PREFIX): v for k, v in metrics.items() if k.startswith(EQUIVALENT_PREFIX)}
    return out or None


def results_rows(
    phase: str,
    metrics: dict[str, float],
    img2txt: Sequence[Sequence[int]],
    raw: dict[str, float] | None = None,
    reranker_name: str | None = None,
) -> dict[str, dict[str, float]]:
    """The table's rows, in order: chance level, the phase's results, then their caption-equivalent recall.

    With a reranker (``reranker_name`` and its ``raw`` metrics given) the raw
    and the reranked results each get a row, so the two read side by side.
    Where the metrics hold ``equiv/<key>`` values (``RetrievalRecall`` with
    ``caption_equivalent``), each results row gets a caption-equivalent row
    below the standard ones (``test (raw), caption-equivalent``); the chance
    row is the standard recall's.
    """
    rows = {'chance': chance_recall(img2txt)}
    if reranker_name is None:
        results = {phase: metrics}
    else:
        results = {f'{phase} (raw)': raw, f'{phase} + {reranker_name}': metrics}
    rows.update(results)
    for name, values in results.items():
        equivalent = equivalent_part(values)
        if equivalent is not None:
            rows[f'{name}{EQUIVALENT_ROW}'] = equivalent
    return rows


def shared_line(metrics: Mapping[str, float], shape: tuple[int, int]) -> str | None:
    """One line of the ``shared/`` counts of ``metrics`` (``None``: there are none)."""
    try:
        strings, texts, images = (
            int(metrics[f'{SHARED_PREFIX}{k}']) for k in ('caption_strings', 'text_queries', 'image_queries')
        )
    except KeyError:
        return None
    return (
        f'shared captions: {strings:,} strings on more than one image; {texts:,} of {shape[1]:,} text queries '
        f'and {images:,} of {shape[0]:,} image queries have more than one right answer '
        '(caption-equivalent rows count them)'
    )


def results_message(
    phase: str,
    rows: dict[str, dict[str, float]],
    shape: tuple[int, int],
    label: str | None = None,
    shared: Mapping[str, float] | None = None,
    part: str | None = None,
) -> str:
    """The results table under a line naming the phase, the ``part``, the ``label`` and the test set's size,
    and above the shared-caption line of ``shared`` (metrics holding the ``shared/`` counts)."""
    note = f' [{label}]' if label else ''
    where = f', part {part}' if part else ''
    header = f'{phase} retrieval results{where}{note} ({shape[0]} images, {shape[1]} captions):'
    lines = [header, format_results_table(rows)]
    counts = shared_line(shared, shape) if shared is not None else None
    if counts is not None:
        lines.append(counts)
    return '\n'.join(lines)


def parts_message(phase: str, per_part: dict[str, dict[str, float]], metrics: dict[str, float]) -> str:
    """The parts side by side and their mean (``metrics``: the unprefixed keys are the means over the parts)."""
    rows = dict(per_part)
    rows['mean over parts'] = metrics
    equivalent = equivalent_part(metrics)
    if equivalent is not None:
        rows[f'mean over parts{EQUIVALENT_ROW}'] = equivalent
    header = (
        f'{phase} retrieval results over {len(per_part)} parts, each ranked on its own; the returned unprefixed '
        f'metrics are the means over the parts (each part weighted alike), so mR = {metrics["mR"]:.2f}, the mean '
        "of the parts' mR, is what best-checkpoint selection reads:"
    )
    return f'{header}\n{format_results_table(rows)}'


def timings_message(phase: str, timings: dict[str, float], reranker_name: str | None = None) -> str:
    """One line of the phases' seconds (``images``, ``captions``, ``scores``, ``metrics``, ``total``)."""
    t = timings
    scores = f'scores + {reranker_name}' if reranker_name else 'scores'
    return (
        f'{phase} time: {t["total"]:.2f} s (images {t["images"]:.2f}, captions {t["captions"]:.2f}, '
        f'{scores} {t["scores"]:.2f}, metrics {t["metrics"]:.2f})'
    )

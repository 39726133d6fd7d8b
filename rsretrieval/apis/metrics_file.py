"""Reading retrieval metrics from a JSON file, for the card of an exported model."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

#: Metric names of ``RetrievalRecall`` (``raw/`` in front: before a reranker).
_METRIC_KEY = re.compile(r'^(raw/)?((i2t|t2i)_R@\d+|mR)$')


def read_metrics(source: str | os.PathLike) -> dict:
    """The retrieval metrics of a JSON file.

    Accepts ``tools/test.py --dump-metrics`` output (``{"mR": ..., "raw/mR": ...}``;
    with ``--rerank`` the plain keys are the reranked results and ``raw/`` ones
    the raw), and mmengine's JSON logs (one object per line: the last one
    holding retrieval metrics; ``test/`` or ``val/`` prefixes are removed). A
    string entry ``"reranker"`` (e.g. ``"SMR"``) names the reranked row.

    Args:
        source: The JSON file.

    Returns:
        The metrics by name (floats), and ``'reranker'`` where the file names one.

    Raises:
        ValueError: The file holds no retrieval metric.
    """
    text = Path(source).read_text(encoding='utf-8').strip()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in reversed(records):
        metrics = _retrieval_metrics(record) if isinstance(record, dict) else {}
        if metrics:
            if isinstance(record.get('reranker'), str):
                metrics['reranker'] = record['reranker']
            return metrics
    raise ValueError(f'{source}: no retrieval metric (i2t_R@K, t2i_R@K, mR) in it')


def _retrieval_metrics(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        name = re.sub(r'^(test|val)/', '', str(key))
        if _METRIC_KEY.match(name) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out

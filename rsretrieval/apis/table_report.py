"""A results table and its protocol card as markdown and JSON files.

``table.md``: the table (one row per model and test set: R@1/5/10 both ways and
mR on raw scores, mR with the reranker, caption-equivalent mR raw and reranked when
the metric reports them, notes), then the card in words. ``table.json``: the rows
with every metric the loop returned, and the card. ``protocol.json``: the card alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from rsretrieval.utils.atomic_files import atomic_write

from .protocol_card import SHARED_COUNTS

#: The recalls shown per row, on raw scores.
RECALL_KEYS = ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10')
#: Shown sha256 prefix in markdown (the JSON files hold the full digests).
SHORT_SHA = 12


def column_values(metrics: Mapping[str, float], reranked: bool) -> dict[str, float | None]:
    """A row's numbers by column: raw recalls and mR, reranked mR, caption-equivalent mR.

    ``reranked``: the pass ran a reranker, so the unprefixed keys are reranked and the
    raw ones are under ``raw/``.
    """

    def raw(key: str) -> float | None:
        return metrics.get(f'raw/{key}') if reranked else metrics.get(key)

    values = {key: raw(key) for key in (*RECALL_KEYS, 'mR')}
    values['mR reranked'] = metrics.get('mR') if reranked else None
    values['equiv mR'] = raw('equiv/mR')
    values['equiv mR reranked'] = metrics.get('equiv/mR') if reranked else None
    return values


def markdown_table(rows: Sequence[Mapping[str, Any]], reranker: Mapping | None) -> str:
    """The results table in markdown; reranker and caption-equivalent columns only where they have numbers."""
    name = (reranker or {}).get('type')
    values = [column_values(row['metrics'], bool(name)) for row in rows]
    columns = [*RECALL_KEYS, 'mR']
    headers = ['i2t R@1', 'i2t R@5', 'i2t R@10', 't2i R@1', 't2i R@5', 't2i R@10', 'mR']
    optional = [
        ('mR reranked', f'mR + {name}'),
        ('equiv mR', 'equiv. mR'),
        ('equiv mR reranked', f'equiv. mR + {name}'),
    ]
    for key, header in optional:
        if any(v[key] is not None for v in values):
            columns.append(key)
            headers.append(header)
    lines = [
        '| model | test set | ' + ' | '.join(headers) + ' | notes |',
        '|---|---|' + '---:|' * len(headers) + '---|',
    ]
    for row, value in zip(rows, values):
        numbers = ' | '.join('n/a' if value[c] is None else f'{value[c]:.2f}' for c in columns)
        lines.append(f'| {row["model"]} | {row["test_set"]} | {numbers} | {"; ".join(row["notes"])} |')
    return '\n'.join(lines)


def table_legend(reranker: Mapping | None, equivalent: bool) -> str:
    """What the columns are, under the table."""
    parts = ['R@K and mR: raw similarity scores (percent).']
    if reranker:
        parts.append(f'mR + {reranker["type"]}: the same scores reranked (settings in the protocol card).')
    if equivalent:
        parts.append(
            'equiv. mR: caption-equivalent recall, where any image carrying an identical caption answers a '
            'text query (and any identical caption an image query); reported beside the standard mR, never '
            'in its place.'
        )
    else:
        parts.append('No caption-equivalent columns: the metric returned no equiv/* keys.')
    return ' '.join(parts)


def card_markdown(card: Mapping[str, Any]) -> str:
    """The protocol card in words: test sets, models, run."""
    sections = ['## Protocol card', '', '### Test sets', '', _test_sets_table(card['test_sets']), '']
    sections += [_annotation_lines(t) for t in card['test_sets']]
    sections += ['', '### Models', '']
    sections += [_model_lines(m) for m in card['models']]
    sections += ['', '### Run', '', _run_lines(card)]
    return '\n'.join(sections)


def results_markdown(rows: Sequence[Mapping[str, Any]], card: Mapping[str, Any]) -> str:
    """``table.md``: the table, its legend and the protocol card."""
    equivalent = any('equiv/mR' in row['metrics'] for row in rows)
    return (
        '\n\n'.join(
            [
                '# Results table',
                markdown_table(rows, card.get('reranker')),
                table_legend(card.get('reranker'), equivalent),
                card_markdown(card),
            ]
        )
        + '\n'
    )


def write_results(out_dir: str, rows: Sequence[Mapping[str, Any]], card: Mapping[str, Any]) -> dict[str, str]:
    """Write ``table.md``, ``table.json`` and ``protocol.json`` into ``out_dir`` (each atomically).

    Returns:
        ``{'markdown': path, 'json': path, 'protocol': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        'markdown': os.path.join(out_dir, 'table.md'),
        'json': os.path.join(out_dir, 'table.json'),
        'protocol': os.path.join(out_dir, 'protocol.json'),
    }
    atomic_write(paths['markdown'], results_markdown(rows, card).encode())
    atomic_write(paths['json'], _json_bytes(dict(rows=list(rows), protocol=card)))
    atomic_write(paths['protocol'], _json_bytes(card))
    return paths


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=1, ensure_ascii=False) + '\n').encode()


def _test_sets_table(test_sets: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        '| test set | dataset | split | images | captions | caption strings on >1 image '
        '| text queries with >1 right image | image queries with >1 right caption |',
        '|---|---|---|---:|---:|---:|---:|---:|',
    ]
    for t in test_sets:
        shared = t.get('shared_captions')
        counts = ' | '.join(str(shared[k]) if shared else 'not reported' for k in SHARED_COUNTS)
        split = (t.get('split') or _split_when_unrecorded(t)) + _split_note(t)
        lines.append(f'| {t["name"]} | {t["dataset_type"]} | {split} | {t["images"]} | {t["captions"]} | {counts} |')
    return '\n'.join(lines)


def _split_when_unrecorded(test_set: Mapping[str, Any]) -> str:
    """A combined test set records a split per part (under its annotations); another dataset may record none."""
    return 'per part (below)' if any(a.get('part') for a in test_set['annotations']) else 'not recorded'


def _split_note(test_set: Mapping[str, Any]) -> str:
    notes = []
    holdout = test_set.get('holdout')
    if holdout:
        held = f'{holdout.get("num_images")} images of {holdout.get("split")}, seed {holdout.get("seed")}'
        notes.append(f'held out: {held}')
    if 'subset_of' in test_set:
        notes.append(f'subset of {test_set["subset_of"]} images')
    return f' ({"; ".join(notes)})' if notes else ''


def _annotation_lines(test_set: Mapping[str, Any]) -> str:
    lines = [f'- **{test_set["name"]}**: config `{test_set["config"]}` (sha256 {_short(test_set["config_sha256"])})']
    if test_set.get('options'):
        lines[0] += ', overrides ' + ', '.join(f'`{k}={v}`' for k, v in test_set['options'].items())
    for ann in test_set['annotations']:
        part = f' [{ann["part"]}, split {ann.get("split")}]' if ann.get('part') else ''
        if ann.get('path') is None:
            lines.append(f'  - annotations{part}: {ann["note"]}')
            continue
        files = ', '.join(f'`{f["path"]}` sha256 {_short(f["sha256"])}' for f in ann['files'])
        lines.append(f'  - annotations{part} ({ann["format"]}): {files}')
    return '\n'.join(lines)


def _model_lines(model: Mapping[str, Any]) -> str:
    selection = model['selection']
    lines = [
        f'- **{model["name"]}**: config `{model["config"]}` (sha256 {_short(model["config_sha256"])}), '
        f'weights `{model["weights"]}` (sha256 {_short(model["weights_sha256"])})',
        f'  - selection: {selection["text"]}',
        f'  - precision: {model["precision"]["dtype"]} ({model["precision"]["reason"]})',
    ]
    if model.get('exported_from'):
        lines.append(f'  - exported from: `{model["exported_from"]}`')
    for data in model['training_data']:
        exclusions = data['exclusions']
        if isinstance(exclusions, Mapping):
            exclusions = f'`{exclusions["file"]}` sha256 {exclusions["sha256"]}'
        lines.append(f'  - trained on: {data["data"]}; exclusion list: {exclusions}')
    return '\n'.join(lines)


def _run_lines(card: Mapping[str, Any]) -> str:
    env = card['environment']
    dirty = {True: ' (uncommitted changes)', False: ' (clean)', None: ''}[env.get('uncommitted_changes')]
    reranker = card.get('reranker')
    rerank_text = json.dumps(reranker) if reranker else 'none (raw scores only)'
    lines = [
        f'- reranker: {rerank_text}',
        f'- device: {env["device"]}',
        f'- versions: rsretrieval {env["rsretrieval"]}, torch {env["torch"]}, mmengine {env["mmengine"]}, '
        f'Python {env["python"]}',
        f'- source: commit {env["commit"]}{dirty}; {env["source"]}',
        f'- created: {card["created"]}',
    ]
    if card.get('command'):
        lines.append(f'- command: `{card["command"]}`')
    return '\n'.join(lines)


def _short(sha: str) -> str:
    return sha[:SHORT_SHA] if len(sha) == 64 else sha

"""The model card of an exported model: ``README.md`` with Hugging Face front matter."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from .export_metadata import META_FILE
from .export_source import file_sha256, training_data
from .inference import WEIGHTS_FILE

CARD_FILE = 'README.md'


def write_card(folder: Path, info: dict) -> None:
    """Write ``README.md``: front matter, model, training data, results, provenance, use.

    Args:
        folder: The model folder, its weights already written.
        info: What the export gathered: ``cfg`` (the exported config), ``name``
            (of the folder), ``parameters``, ``embed_dim``, ``source`` (see
            :func:`~rsretrieval.apis.export_source.export_source`), ``license``,
            ``dropped`` (training state left out) and ``metrics``.
    """
    cfg, source = info['cfg'], info['source']
    rows = training_data(cfg)
    commit = source['commit'] + (' (with uncommitted changes)' if source['uncommitted_changes'] else '')
    sections = [
        _front_matter(str(cfg.model.type), info['license'], _dataset_names(rows)),
        f'# {info["name"]}\n\n{cfg.model.type} model for remote-sensing text-image retrieval, '
        f'exported by rsretrieval {source["rsretrieval_version"]}.',
        _architecture_section(cfg.model, info),
        _data_section(rows),
        _metrics_section(info['metrics']),
        '## Provenance\n\n'
        f'- code: rsretrieval {source["rsretrieval_version"]}, git commit `{commit}`\n'
        f'- exported: {source["exported"][:10]}, from the config `{source["config"]}` and the checkpoint '
        f'`{source["checkpoint"]}` (sha256 `{source["checkpoint_sha256"]}`)\n'
        f'- `{WEIGHTS_FILE}` sha256: `{file_sha256(folder / WEIGHTS_FILE)}`\n'
        f'- every file and its sha256: `{META_FILE}`',
        _usage_section(info['name']),
    ]
    (folder / CARD_FILE).write_text('\n\n'.join(sections) + '\n', encoding='utf-8')


def _front_matter(model_type: str, license: str | None, datasets: list[str]) -> str:
    front = ['---', 'library_name: rsretrieval']
    if license:
        front.append(f'license: {json.dumps(license)}')
    tags = ['rsretrieval', 'remote-sensing', 'image-text-retrieval', 'cross-modal-retrieval', model_type]
    front += ['tags:', *(f'- {json.dumps(t.lower())}' for t in tags)]
    if datasets:
        front += ['datasets:', *(f'- {json.dumps(n)}' for n in datasets)]
    return '\n'.join([*front, '---'])


def _dataset_names(rows: list[dict]) -> list[str]:
    """Dataset names for the card's front matter: ``dataset_RSITMD.json`` -> ``rsitmd``."""
    names = []
    for row in rows:
        stem = Path(str(row.get('ann_file') or '')).stem
        name = stem[len('dataset_') :] if stem.startswith('dataset_') else (stem or str(row.get('type') or ''))
        if name and name.lower() not in names:
            names.append(name.lower())
    return names


def _describe(node: dict) -> str:
    """``Type (arg=value, ...)`` of a component config: its scalar arguments."""
    args = {k: v for k, v in node.items() if k != 'type' and not isinstance(v, (dict, list)) and v is not None}
    args.pop('tokenizer', None)
    bert = node.get('config') or {}
    for key in ('hidden_size', 'num_hidden_layers', 'vocab_size'):
        if key in bert and key not in args:
            args[key] = bert[key]
    inner = ', '.join(f'{k}={v}' for k, v in args.items())
    return f'{node["type"]} ({inner})' if inner else str(node['type'])


def _architecture_section(model_cfg: dict, info: dict) -> str:
    rows = [('architecture', str(model_cfg['type'])), ('parameters', f'{info["parameters"]:,}')]
    rows.append(('embedding width', str(info['embed_dim'])))
    for key, value in model_cfg.items():
        if isinstance(value, dict) and 'type' in value and key != 'data_preprocessor':
            rows.append((key, _describe(value)))
    table = '\n'.join(f'| {k} | {v} |' for k, v in rows)
    text = f'## Model\n\n| | |\n|---|---|\n{table}'
    dropped = info['dropped']
    if dropped:
        text += (
            f'\n\nLeft out as training state: the momentum encoders and the ITC queue '
            f'({", ".join(dropped["modules"])}); trained with queue_size={dropped.get("queue_size")}, '
            f'distill_alpha={dropped.get("distill_alpha")}. Retrieval never uses them. To fine-tune with them, '
            'set these back (`--cfg-options model.queue_size=...`): the momentum encoders start as copies of '
            'the encoders, the queue empty.'
        )
    return text


def _data_section(rows: list[dict]) -> str:
    if not rows:
        return '## Training data\n\nThe config names no dataset.'
    lines = ['| loader | dataset | annotations | split | data_root |', '|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["loader"]} | {r["type"]} | {r["ann_file"]} | {r["split"]} | {r["data_root"]} |')
    return (
        '## Training data\n\nAs in the training config (`config.py`); evaluating elsewhere: '
        '`--cfg-options data_root=PATH`.\n\n' + '\n'.join(lines)
    )


def _metric_order(name: str) -> tuple:
    direction = {'i2t': 0, 't2i': 1}.get(name[:3], 2)
    k = re.search(r'R@(\d+)', name)
    return direction, int(k.group(1)) if k else 0


def _metrics_section(metrics: Mapping | None) -> str:
    if not metrics:
        return '## Results\n\nNot evaluated: no metrics were given to the export.'
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    names = sorted({k.removeprefix('raw/') for k in numeric}, key=_metric_order)
    if any(k.startswith('raw/') for k in numeric):
        rows = [('raw', 'raw/'), (f'+ {metrics.get("reranker", "reranker")}', '')]
    else:
        rows = [('raw', '')]
    head = '| | ' + ' | '.join(names) + ' |\n|---|' + '---|' * len(names)
    body = []
    for label, prefix in rows:
        cells = [f'{numeric[prefix + n]:.2f}' if prefix + n in numeric else '-' for n in names]
        body.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '## Results\n\nRecall@K (%) and mR as given to the export.\n\n' + head + '\n' + '\n'.join(body)


def _usage_section(name: str) -> str:
    return (
        '## Use\n\n'
        '```python\n'
        'from rsretrieval.apis import embed_texts, init_model\n'
        f"model = init_model('{name}')  # this folder; or 'hf-hub:ORG/NAME' for its Hub copy\n"
        "embeddings = embed_texts(model, ['a bridge over a river'])  # (1, E), L2-normalised\n"
        '```\n\n'
        'Evaluate it, or index an image archive with it:\n\n'
        '```bash\n'
        f'python tools/test.py {name} --cfg-options data_root=PATH/TO/DATASET\n'
        f'rsretrieval-retrieve index {name} IMAGE_DIR INDEX_DIR\n'
        '```'
    )

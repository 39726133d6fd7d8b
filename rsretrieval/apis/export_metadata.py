"""The machine-readable metadata of an exported model: ``rsretrieval.json``."""

from __future__ import annotations

import json
from pathlib import Path

from .export_source import file_sha256, training_data

FORMAT = 'rsretrieval-model'
FORMAT_VERSION = 1
META_FILE = 'rsretrieval.json'


def write_metadata(folder: Path, info: dict) -> None:
    """Write ``rsretrieval.json``: versions, provenance, the sha256 of every other file, metrics.

    Args:
        folder: The model folder, every other file already written.
        info: What the export gathered: ``cfg`` (the exported config),
            ``embed_dim``, ``parameters``, ``source`` (see
            :func:`~rsretrieval.apis.export_source.export_source`), ``license``,
            ``dropped`` (training state left out), ``replaced`` (weight
            references) and ``metrics``.
    """
    files = sorted(p for p in folder.rglob('*') if p.is_file() and p.name != META_FILE)
    cfg = info['cfg']
    meta = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        model_type=str(cfg.model.type),
        embed_dim=info['embed_dim'],
        parameters=info['parameters'],
        **info['source'],
        license=info['license'],
        files={p.relative_to(folder).as_posix(): file_sha256(p) for p in files},
        training_state_left_out=info['dropped'] or None,
        weights_replaced=info['replaced'],
        data=training_data(cfg),
        metrics=info['metrics'],
    )
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + '\n', encoding='utf-8')

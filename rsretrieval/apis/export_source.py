"""Where an exported model came from: code commit, checkpoint hash, training data."""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

from mmengine.config import Config

from rsretrieval.version import __version__
from rsretrieval.weights.hashing import file_sha256


def export_source(config: str | os.PathLike, checkpoint: str | os.PathLike) -> dict:
    """The provenance entries of the metadata and the card.

    Args:
        config: The training config given to the export.
        checkpoint: The checkpoint given to the export.

    Returns:
        ``config``, ``checkpoint`` (its name), ``checkpoint_sha256``, ``commit``,
        ``uncommitted_changes``, ``rsretrieval_version`` and ``exported`` (UTC, ISO 8601).
    """
    commit, dirty = code_commit()
    return dict(
        config=str(config),
        checkpoint=Path(checkpoint).name,
        checkpoint_sha256=file_sha256(Path(checkpoint)),
        commit=commit,
        uncommitted_changes=dirty,
        rsretrieval_version=__version__,
        exported=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    )


def training_data(cfg: Config) -> list[dict]:
    """The datasets of the config's dataloaders.

    Args:
        cfg: The exported config.

    Returns:
        One dict per train/val/test dataloader with a dataset: ``loader``,
        ``type``, ``data_root``, ``ann_file`` and ``split``.
    """
    rows = []
    for split in ('train', 'val', 'test'):
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset') or {}
        if dataset:
            keys = ('type', 'data_root', 'ann_file', 'split')
            rows.append(dict(loader=split, **{k: dataset.get(k) for k in keys}))
    return rows


def code_commit() -> tuple[str, bool | None]:
    """``(git commit of the rsretrieval code, uncommitted changes)``; ``('unknown', None)``
    outside a git checkout (an installed package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / '.git').exists():
        return 'unknown', None
    run = dict(cwd=root, capture_output=True, text=True, timeout=30)
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], **run)
        status = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], **run)
    except (OSError, subprocess.SubprocessError):
        return 'unknown', None
    if head.returncode != 0:
        return 'unknown', None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None

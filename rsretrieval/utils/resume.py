"""Finding the checkpoint a run resumes from."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from .checkpoint_checks import checkpoint_problem


def find_resumable_checkpoint(work_dir: str | os.PathLike) -> tuple[str | None, list[str]]:
    """The newest checkpoint in ``work_dir`` that can be read, to resume from.

    Looks at the file ``last_checkpoint`` names, then at every periodic
    (``epoch_*.pth``) and preemption (``iter_*.pth``) checkpoint, newest first;
    best checkpoints hold no optimizer state and are not resumed from. A file
    that is cut short (no zip end record) or whose archive cannot be opened is
    passed over.

    Returns:
        ``(path or None, ["path: why it was passed over", ...])``.
    """
    skipped, seen = [], set()
    for path in _candidates(Path(work_dir)):
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        problem = checkpoint_problem(str(path)) or _archive_problem(path)
        if problem is None:
            return str(path), skipped
        skipped.append(problem)
    return None, skipped


def _candidates(work_dir: Path) -> list[Path]:
    """The checkpoint ``last_checkpoint`` names, then the periodic ones, newest first."""
    candidates: list[Path] = []
    pointer = work_dir / 'last_checkpoint'
    if pointer.is_file():
        named = pointer.read_text().strip()
        if named:
            candidates.append(Path(named))
    periodic = [*work_dir.glob('epoch_*.pth'), *work_dir.glob('iter_*.pth')]
    return candidates + sorted(periodic, key=lambda p: p.stat().st_mtime, reverse=True)


def _archive_problem(path: Path) -> str | None:
    """Why a zip checkpoint's archive cannot be opened, or None."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f'checkpoint is unreadable: {path} ({err})'
    return None

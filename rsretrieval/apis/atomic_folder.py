"""Writing a folder whole or not at all: under a temporary name beside it, synced, then renamed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rsretrieval.utils.atomic_files import fsync_folder


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``, renamed to ``out`` when the block succeeds.

    When the block fails, the temporary folder is removed with the parents of
    ``out`` that it created, and an existing ``out`` stays as it was.

    Args:
        out: The folder to write (absolute); an existing one is replaced.

    Yields:
        The temporary folder to write into.
    """
    created = _make_parents(out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.export-', dir=out.parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        _sync_to_disk(tmp)
        _publish(tmp, out)
        fsync_folder(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        for created in missing:
            with contextlib.suppress(OSError):
                created.rmdir()
        raise
    return missing


def _usual_permissions(folder: Path) -> None:
    """Give the folder and its files the permissions of any new file (``mkdtemp`` and
    safetensors create them private)."""
    umask = os.umask(0o022)  # reading the umask means setting it: it is put back at once
    os.umask(umask)
    for path in (folder, *folder.rglob('*')):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _sync_to_disk(folder: Path) -> None:
    """fsync every file and folder under ``folder``, so that the rename publishes content a power cut keeps."""
    for path in folder.rglob('*'):
        if path.is_file():
            with open(path, 'rb') as f:
                os.fsync(f.fileno())
        else:
            fsync_folder(path)
    fsync_folder(folder)


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished folder to ``out``; an existing ``out`` is swapped out, then removed."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f'.{out.name}.replaced-{os.getpid()}')
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)

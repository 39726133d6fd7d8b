"""Atomic file writes: a crash leaves either the old file or the new one, never a torn one.

Every file the package writes in place of an earlier one (checkpoints and their
pointer, archive-index shards and manifests, the digest beside a downloaded
weight file) goes through :func:`atomic_write`. torch-free, so that the weight
downloader stays cheap to import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .checkpoint_errors import CheckpointWriteError

#: Marks the temporary files of :func:`atomic_write`: ``.NAME.tmp-PID-RANDOM``.
_TEMPORARY_MARK = '.tmp-'


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden name beside ``path`` for writing it: unique per call, and carrying the
    process id so that :func:`remove_stale_temporaries` knows whether its writer still runs."""
    path = Path(path)
    return path.with_name(f'.{path.name}{_TEMPORARY_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}')


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (skipped where the file system cannot)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` so that a crash leaves either the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed and
    fsync'ed, then renamed over ``path`` (an atomic replacement on POSIX); the
    folder is fsync'ed so that the rename survives a power cut.

    Raises:
        CheckpointWriteError: The write failed (a full disk, a quota, a file
            size limit, ...): the message names the file, the bytes it needed
            and the free space; the temporary file is removed and ``path`` is
            left as it was.
    """
    payload = data.encode('utf-8') if isinstance(data, str) else data
    atomic_write_with(path, lambda f: f.write(payload), len(payload))


def atomic_write_with(path: str | os.PathLike, write: Callable[[BinaryIO], object], size: int | None = None) -> None:
    """:func:`atomic_write` for content that ``write`` streams into the open file (a large array, a faiss index).

    Args:
        path: The file to write.
        write: Writes the content into the binary file it is given.
        size: The bytes ``write`` produces, for the error message (None: unknown).

    Raises:
        CheckpointWriteError: As :func:`atomic_write`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(err, OSError):
            raise
        needs = f'it needs {size:,} bytes, ' if size is not None else ''
        raise CheckpointWriteError(
            f'could not write {path}: {needs}{_free_space(path.parent)} ({err.strerror or err}); '
            'nothing written before was changed'
        ) from err
    fsync_folder(path.parent)


def _free_space(folder: Path) -> str:
    try:
        return f'{shutil.disk_usage(folder).free:,} bytes free on its device'
    except OSError:
        return 'free space unknown'


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files of :func:`atomic_write` left by processes that died
    mid-write (their process id no longer runs); they are never valid files.

    Returns:
        The removed paths.
    """
    removed = []
    for path in Path(folder).glob(f'.*{_TEMPORARY_MARK}*'):
        pid = path.name.rsplit(_TEMPORARY_MARK, 1)[-1].split('-', 1)[0]
        if not pid.isdigit() or _process_runs(int(pid)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(str(path))
    return removed


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` is alive (another user's live process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

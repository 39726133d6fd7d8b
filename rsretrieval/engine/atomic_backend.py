"""Local file writes that a crash cannot tear: mmengine's LocalBackend, replaced atomically."""

from __future__ import annotations

from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io

from rsretrieval.utils.checkpoint import atomic_write


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` and ``put_text`` write a temporary file, fsync it and
    rename it over the target: a process killed mid-write (OOM killer, preemption past
    its grace period, node failure) leaves the previous file, never a truncated one; a
    full disk raises :class:`~rsretrieval.utils.CheckpointWriteError` naming the file,
    the bytes it needed and the free space, and removes the temporary file.

    Every checkpoint mmengine saves goes through ``put`` (``runner.save_checkpoint``
    serialises to bytes, then calls the backend of the target path).
    """

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


def use_atomic_local_backend() -> None:
    """Make mmengine's local-file backend the atomic one (idempotent)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # instances mmengine built before this call are cached per (prefix, arguments)
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mmengine_io.backend_instances[key]

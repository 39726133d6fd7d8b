"""Local file writes that a crash cannot tear: mmengine's LocalBackend, made atomic for a save."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io
from mmengine.fileio.backends import backends, prefix_to_backends

from rsretrieval.utils.atomic_files import atomic_write


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


@contextlib.contextmanager
def atomic_local_saves() -> Iterator[None]:
    """Inside the block, mmengine writes local files through :class:`AtomicLocalBackend`.

    ``runner.save_checkpoint`` looks its backend up in mmengine's process-wide
    backend table, so the atomic backend is registered for local paths on
    entry and the previous registration is restored on exit: mmengine is
    unchanged outside the saves of rsretrieval's hooks, for a program that
    only imports rsretrieval and for any other runner in the process.
    Nested blocks are allowed.
    """
    registered = backends['local'], prefix_to_backends['']
    cached_plain = _uncache(lambda backend: type(backend) is LocalBackend)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    try:
        yield
    finally:
        backends['local'], prefix_to_backends[''] = registered
        _uncache(lambda backend: isinstance(backend, AtomicLocalBackend))
        mmengine_io.backend_instances.update(cached_plain)


def _uncache(matches) -> dict:
    """Drop the backend instances mmengine cached (per prefix and arguments) that ``matches``
    accepts, so that the next lookup builds one from the registration in force; those dropped."""
    dropped = {key: backend for key, backend in mmengine_io.backend_instances.items() if matches(backend)}
    for key in dropped:
        del mmengine_io.backend_instances[key]
    return dropped

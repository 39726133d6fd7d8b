"""The errors of checkpoint reading and writing, importable without torch."""

from __future__ import annotations

import pickle


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, explained in one line that names the file."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file holds Python objects outside ``torch.load(weights_only=True)``'s allow-list."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint (or another file written atomically) could not be written; earlier files are intact."""

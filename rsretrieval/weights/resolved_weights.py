"""What resolving a spec gives: the local file or folder, and its main weight file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .hashing import file_sha256

#: Weight files of a Hugging Face model folder, in the order they are looked for.
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


@dataclass(frozen=True)
class ResolvedWeights:
    """Weights found on the local disk.

    Attributes:
        spec: The spec as given.
        name: The zoo name, or None.
        path: The local file or folder.
        source: The hf-hub:/URL/path/package it came from.
    """

    spec: str
    name: str | None
    path: Path
    source: str

    @property
    def weight_file(self) -> Path | None:
        """The file itself, or a folder's main weight file (None when it has none)."""
        return self.path if self.path.is_file() else main_weight_file(self.path)

    @property
    def sha256(self) -> str | None:
        """sha256 of :attr:`weight_file` (the HF blob name when it is one; memoised)."""
        file = self.weight_file
        return file_sha256(file) if file is not None else None


def main_weight_file(folder: Path) -> Path | None:
    """A folder's main weight file: ``model.safetensors``, ``pytorch_model.bin``,
    else its only ``*.safetensors``/``*.bin``/``*.pt``/``*.pth`` file, else None."""
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = [p for p in folder.glob('*') if p.suffix in ('.safetensors', '.bin', '.pt', '.pth') and p.is_file()]
    return found[0] if len(found) == 1 else None

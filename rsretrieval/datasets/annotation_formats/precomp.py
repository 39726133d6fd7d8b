"""AMFMN/GaLR "precomp" text: ``{split}_caps.txt`` and ``{split}_filename.txt`` in one folder.

The caption file holds one caption a line; the filename file one line per
caption (test files) or one line per image with ``k`` consecutive captions
each (train files, ``k = #captions / #filenames``).
"""

from __future__ import annotations

from pathlib import Path

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile, read_text_lines
from .base import AnnotationFormat, ImageRecord


@ANNOTATION_FORMATS.register_module('precomp')
class PrecompFormat(AnnotationFormat):
    """Precomp text files, detected as a folder or a ``.txt`` file (its folder is read)."""

    description = 'a folder of {split}_caps.txt and {split}_filename.txt, or one of those .txt files (precomp)'

    def detect(self, source: AnnotationFile) -> bool:
        return source.path.is_dir() or source.path.suffix == '.txt'

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        folder = source.path if source.path.is_dir() else source.path.parent
        caps_file, names_file = folder / f'{split}_caps.txt', folder / f'{split}_filename.txt'
        if not caps_file.is_file() or not names_file.is_file():
            available = sorted(p.name[: -len('_caps.txt')] for p in folder.glob('*_caps.txt'))
            raise AnnotationError(
                f'{folder}: unknown split {split!r} (needs {caps_file.name} and {names_file.name}); '
                f'splits present: {available}'
            )
        # An empty caption line is a caption slot (the RSITMD release has some);
        # the dataset decides what to do with empty captions.
        captions = read_text_lines(caps_file, allow_empty=True)
        names = read_text_lines(names_file, allow_empty=False)
        groups = _caption_lines_by_image(captions, names, caps_file, names_file)
        return [
            ImageRecord(name, tuple(captions[i] for i in lines), tuple(f'{caps_file}:{i + 1}' for i in lines))
            for name, lines in groups.items()
        ]


def _caption_lines_by_image(
    captions: list[str], names: list[str], caps_file: Path, names_file: Path
) -> dict[str, list[int]]:
    """Image name -> its caption line indices, in either layout of the filename file."""
    n_caps, n_names = len(captions), len(names)
    groups: dict[str, list[int]] = {}
    if n_caps == n_names:
        for line, name in enumerate(names):
            groups.setdefault(name, []).append(line)
    elif n_names and n_caps > n_names and n_caps % n_names == 0:
        per_image = n_caps // n_names
        for i, name in enumerate(names):
            if name in groups:
                raise AnnotationError(
                    f'{names_file}:{i + 1}: image {name!r} repeats line {groups[name][0] // per_image + 1}'
                )
            groups[name] = list(range(i * per_image, (i + 1) * per_image))
    else:
        raise AnnotationError(
            f'{caps_file} has {n_caps} captions but {names_file} has {n_names} filenames: '
            'expected one filename per caption or the same number of captions for every image'
        )
    return groups

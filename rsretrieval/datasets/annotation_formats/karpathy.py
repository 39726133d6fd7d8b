"""Karpathy JSON: ``dataset_rsicd.json``, ``dataset_RSITMD.json``, UCM/Sydney ``dataset.json``.

``{"images": [{"filename", "split", "sentences": [{"raw"} or {"tokens"}]}]}``;
one file holds every split.
"""

from __future__ import annotations

from pathlib import Path

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord, records_of_split
from .fields import describe, expect_dict, require_list, require_str, require_str_list


@ANNOTATION_FORMATS.register_module('karpathy')
class KarpathyFormat(AnnotationFormat):
    """Karpathy JSON, detected as a JSON object with an ``images`` key.

    Every entry is validated, whatever its split, so that a bad entry fails
    whichever split is built first: an entry that is not an object, a
    ``filename`` that is not a non-empty string, a ``split`` that is not a
    string, ``sentences`` that is not a list, or a sentence without a ``raw``
    string (or a ``tokens`` list of strings) raises :class:`AnnotationError`
    naming the file, the entry (index and file name) and the field.
    """

    description = 'a JSON object with an "images" list (Karpathy)'

    def detect(self, source: AnnotationFile) -> bool:
        if not source.looks_like_json():
            return False
        data = source.json()
        return isinstance(data, dict) and 'images' in data

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        path = source.path
        entries = _images(source.json(), path)
        return records_of_split((_read_entry(e, f'{path}[images][{i}]') for i, e in enumerate(entries)), split, path)


def _images(data: object, path: Path) -> list:
    """The ``images`` list of the top-level object."""
    if not isinstance(data, dict):
        raise AnnotationError(
            f'{path}: Karpathy format needs a top-level object with an "images" list, got {describe(data)}'
        )
    return require_list(data, 'images', str(path))


def _read_entry(entry: object, where: str) -> tuple[ImageRecord, str]:
    """The record of one ``images`` entry and its split, whatever the split built."""
    entry = expect_dict(entry, where)
    filename = require_str(entry, 'filename', where, non_empty=True)
    named = f'{where} ({filename})'
    entry_split = require_str(entry, 'split', named)
    sentences = require_list(entry, 'sentences', named)
    if not sentences:
        raise AnnotationError(f'{named}: image {filename!r} has no sentence')
    sources = tuple(f'{where}[sentences][{j}]' for j in range(len(sentences)))
    captions = tuple(_caption(sent, f'{source} ({filename})') for sent, source in zip(sentences, sources))
    return ImageRecord(filename, captions, sources), entry_split


def _caption(sentence: object, where: str) -> str:
    """A sentence's ``raw`` string; without one (absent or null), its ``tokens`` joined."""
    sentence = expect_dict(sentence, where)
    if sentence.get('raw') is None and 'tokens' in sentence:
        return ' '.join(require_str_list(sentence, 'tokens', where))
    return require_str(sentence, 'raw', where, label='key "raw" (or a "tokens" list)')

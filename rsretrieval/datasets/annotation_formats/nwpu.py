"""NWPU-Captions JSON (``dataset_nwpu.json``): an object keyed by scene class.

``{"airplane": [{"filename", "split", "raw", "raw_1", ..., "raw_4", "imgid",
"sentids", ...}], ...}``; the images lie in ``<class>/<filename>``.
"""

from __future__ import annotations

from collections.abc import Iterator

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord, records_of_split
from .fields import describe, expect_dict, require_str

#: The caption fields of an NWPU-Captions entry, in order; ``raw_5``, ``raw_6``, ...
#: are read too when present.
NWPU_CAPTION_KEYS = ('raw', 'raw_1', 'raw_2', 'raw_3', 'raw_4')
#: The split values an NWPU-Captions entry may hold.
NWPU_SPLITS = ('train', 'val', 'test')


@ANNOTATION_FORMATS.register_module('nwpu')
class NwpuFormat(AnnotationFormat):
    """NWPU-Captions JSON.

    Detected as a JSON object without ``images`` (that is Karpathy) whose
    values include a list whose first entry has ``raw`` or ``filename``: one
    class is enough, so that a file with a malformed class is still read as
    NWPU-Captions and the reader names the class at fault.

    Every entry of every class is validated, whatever its split, so that a bad
    entry fails whichever split is built first. A record's ``filename`` is
    ``<class>/<filename>`` (the release keeps each class in its own folder of
    ``NWPU_images``); its captions are ``raw``, ``raw_1``, ..., ``raw_4`` (and
    ``raw_5``, ... when present), and their sources read
    ``file[class][entry index][field]``. Empty captions are left to the dataset
    (``empty_captions``), as in the other formats. Records come class by class
    in file order.

    A class that is not a list, an entry that is not an object, a missing,
    empty or non-string ``filename``, a missing or non-string ``split`` or one
    that is not train/val/test, a missing or non-string caption field each
    raise :class:`AnnotationError` naming the file, class, entry and field; so
    does a ``split`` the file does not hold (the splits present are listed).
    """

    description = 'a JSON object of per-class lists of entries with "filename" and "raw" (NWPU-Captions)'

    def detect(self, source: AnnotationFile) -> bool:
        if not source.looks_like_json():
            return False
        data = source.json()
        return isinstance(data, dict) and 'images' not in data and any(_looks_like_entries(v) for v in data.values())

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        path, data = source.path, source.json()
        if not isinstance(data, dict):
            raise AnnotationError(
                f'{path}: NWPU-Captions format needs a top-level JSON object keyed by scene class, got {describe(data)}'
            )
        return records_of_split(_entries(data, path), split, path)


def _entries(data: dict, path: object) -> Iterator[tuple[ImageRecord, str]]:
    """Every image entry of every class, read, with its split."""
    for cls, entries in data.items():
        if not isinstance(entries, list):
            got = describe(entries)
            raise AnnotationError(f'{path}[{cls}]: class {cls!r} must hold a list of image entries, got {got}')
        for i, entry in enumerate(entries):
            yield _read_entry(entry, f'{path}[{cls}][{i}]', cls, i)


def _looks_like_entries(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and isinstance(value[0], dict)
        and ('raw' in value[0] or 'filename' in value[0])
    )


def _read_entry(entry: object, where: str, cls: str, index: int) -> tuple[ImageRecord, str]:
    """The record of one entry of class ``cls`` and its split, whatever the split built."""
    entry = expect_dict(entry, where)
    filename = _filename(entry, where, cls, index)
    named = f'{where} ({filename})'
    entry_split = require_str(entry, 'split', named)
    if entry_split not in NWPU_SPLITS:
        raise AnnotationError(f'{named}: unknown split value {entry_split!r}; expected one of {NWPU_SPLITS}')
    keys = _caption_keys(entry)
    captions = tuple(require_str(entry, key, named, label=f'caption field {key!r}') for key in keys)
    return ImageRecord(f'{cls}/{filename}', captions, tuple(f'{where}[{key}]' for key in keys)), entry_split


def _filename(entry: dict, where: str, cls: str, index: int) -> str:
    """The entry's ``filename``: a string that is not empty (an empty one would name the class folder)."""
    if 'filename' not in entry:
        raise AnnotationError(f'{where}: missing key "filename" (class {cls!r}, entry {index})')
    filename = require_str(entry, 'filename', where)
    if not filename.strip():
        raise AnnotationError(f'{where}: bad filename {filename!r} (class {cls!r}, entry {index})')
    return filename


def _caption_keys(entry: dict) -> list[str]:
    """``raw``, ``raw_1``, ..., ``raw_4``, then ``raw_5``, ... as long as the entry has them."""
    keys = list(NWPU_CAPTION_KEYS)
    while f'raw_{len(keys)}' in entry:
        keys.append(f'raw_{len(keys)}')
    return keys

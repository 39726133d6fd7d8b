"""Exclusion lists: the training images a leakage check found too close to held-out ones.

An exclusion list is a JSON file written by the leakage check
(``tools/analysis_tools/check_leaks.py``) and read by a training dataset
(``RSCaptionDataset(exclude=dict(file=..., source=...))``)::

    {
      "format": "rsretrieval-exclusions/1",
      "check": {...},                  # how the pairs were found (hash, threshold, inputs)
      "entries": [
        {"source": "ucm", "split": "train", "filename": "12.jpg",
         "sha256": "<sha256 of the image file's bytes>",
         "reason": "near-duplicate of rsitmd/test/airport_3.tif (distance 4)"}
      ]
    }

An entry names an image the way its annotation file does (``source`` is the
name the check gave the dataset, ``filename`` the path relative to the image
folder), so the list works wherever the data lives; ``sha256`` proves that the
image found is the one the check hashed. The list is identified by the
sha256 of the file itself (:attr:`ExclusionList.sha256`), which a protocol
card records.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from rsretrieval.utils.atomic_files import atomic_write

from .annotation_formats import AnnotationError

EXCLUSIONS_FORMAT = 'rsretrieval-exclusions/1'
_ENTRY_KEYS = ('source', 'split', 'filename', 'sha256', 'reason')


@dataclass(frozen=True)
class ExclusionEntry:
    """One training image to leave out.

    Attributes:
        source: The dataset's name in the check (``'ucm'``, ``'rsitmd'``, ...).
        split: The split the image is in (``'train'``).
        filename: Its path relative to the dataset's image folder, as the
            annotation file lists it (``/``-separated, see :func:`normalise_filename`).
        sha256: sha256 of the image file's bytes.
        reason: Why, for a reader (the held-out image it is close to and the distance).
    """

    source: str
    split: str
    filename: str
    sha256: str
    reason: str = ''


@dataclass(frozen=True)
class ExclusionList:
    """A read exclusion list.

    Attributes:
        path: The file.
        sha256: sha256 of the file's bytes: the list's identity in a protocol card.
        entries: Every entry, in file order.
        check: How the list was made (the check's parameters), as written.
    """

    path: str
    sha256: str
    entries: tuple[ExclusionEntry, ...]
    check: dict

    def for_split(self, source: str, split: str) -> dict[str, ExclusionEntry]:
        """The entries of ``source``'s ``split``, by normalised file name."""
        return {e.filename: e for e in self.entries if e.source == source and e.split == split}

    @property
    def sources(self) -> list[str]:
        """The dataset names the entries use, sorted."""
        return sorted({e.source for e in self.entries})


def normalise_filename(filename: str) -> str:
    """A file name relative to an image folder in one spelling: ``/``-separated, no ``./``."""
    return posixpath.normpath(filename.replace(os.sep, '/'))


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def exclusion_list_json(entries: Iterable[ExclusionEntry], check: dict) -> bytes:
    """The file's bytes for ``entries``: sorted, so the same findings give the same sha256."""
    rows = sorted((asdict(e) for e in entries), key=lambda e: (e['source'], e['split'], e['filename']))
    doc = dict(format=EXCLUSIONS_FORMAT, check=check, entries=rows)
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + '\n').encode()


def write_exclusion_list(path: str, entries: Iterable[ExclusionEntry], check: dict) -> str:
    """Write an exclusion list atomically; returns its sha256."""
    data = exclusion_list_json(entries, check)
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def read_exclusion_list(path: str) -> ExclusionList:
    """Read and check an exclusion list.

    Raises:
        AnnotationError: The file is missing, not JSON, of another format, or
            an entry lacks a key or has a non-string value (the message names
            the file and the entry).
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise AnnotationError(f'exclusion list {path}: {err.strerror or err}') from err
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f'exclusion list {path}: not JSON ({err})') from err
    if not isinstance(doc, dict) or doc.get('format') != EXCLUSIONS_FORMAT:
        found = doc.get('format') if isinstance(doc, dict) else type(doc).__name__
        raise AnnotationError(f'exclusion list {path}: format must be {EXCLUSIONS_FORMAT!r}, got {found!r}')
    rows = doc.get('entries')
    if not isinstance(rows, list):
        raise AnnotationError(f'exclusion list {path}: key "entries" must be a list')
    entries = []
    for i, row in enumerate(rows):
        where = f'exclusion list {path}[entries][{i}]'
        if not isinstance(row, dict):
            raise AnnotationError(f'{where}: must be an object, got {type(row).__name__}')
        missing = [k for k in _ENTRY_KEYS[:4] if k not in row]
        if missing:
            raise AnnotationError(f'{where}: missing key(s) {", ".join(missing)}')
        bad = [k for k in _ENTRY_KEYS if k in row and not isinstance(row[k], str)]
        if bad:
            raise AnnotationError(f'{where}: key "{bad[0]}" must be a string, got {type(row[bad[0]]).__name__}')
        values = {k: row[k] for k in _ENTRY_KEYS if k in row}
        values['filename'] = normalise_filename(values['filename'])
        entries.append(ExclusionEntry(**values))
    check = doc.get('check') if isinstance(doc.get('check'), dict) else {}
    return ExclusionList(os.path.abspath(path), hashlib.sha256(data).hexdigest(), tuple(entries), check)

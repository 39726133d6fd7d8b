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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from rsretrieval.utils.atomic_files import atomic_write
from rsretrieval.weights.hashing import file_sha256  # the project's one file hash (memoised by size and mtime)

from .annotation_formats import AnnotationError, ImageRecord

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

    @property
    def checked_splits(self) -> set[tuple[str, str]] | None:
        """The ``(source, split)`` pairs the check read, from ``check['groups']`` as the leakage
        check records them; None when the list does not say (made by other means)."""
        groups = self.check.get('groups')
        if not isinstance(groups, list):
            return None
        return {(g['source'], g['split']) for g in groups if isinstance(g, dict) and 'source' in g and 'split' in g}


def normalise_filename(filename: str) -> str:
    """A file name relative to an image folder in one spelling: ``/``-separated, no ``./``."""
    return posixpath.normpath(filename.replace(os.sep, '/'))


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


def split_excluded(
    records: Sequence[ImageRecord], entries: Mapping[str, ExclusionEntry], list_path: str, where: str
) -> tuple[list[ImageRecord], list[tuple[ImageRecord, ExclusionEntry]]]:
    """Separate the records an exclusion list names from the others.

    Args:
        records: One split's images, as its annotation file lists them.
        entries: The list's entries for that split, by normalised file name
            (:meth:`ExclusionList.for_split`).
        list_path: The list's file, for messages.
        where: The annotation file and split, for messages.

    Returns:
        ``(kept, excluded)``: the records the list does not name, in order, and
        each excluded record with its entry.

    Raises:
        AnnotationError: An entry names an image the split does not hold: the
            list was made from another annotation file, split or holdout.
    """
    kept, excluded = [], []
    found: set[str] = set()
    for record in records:
        entry = entries.get(normalise_filename(record.filename))
        if entry is None:
            kept.append(record)
        else:
            excluded.append((record, entry))
            found.add(entry.filename)
    unknown = sorted(set(entries) - found)
    if unknown:
        entry = entries[unknown[0]]
        raise AnnotationError(
            f'exclusion list {list_path}: {len(unknown)} entries of source {entry.source!r}, split {entry.split!r} '
            f'name images that {where} does not hold, e.g. {entry.filename!r}: the list was made from another '
            'annotation file, split or holdout'
        )
    return kept, excluded


def verify_excluded_files(
    excluded: Sequence[tuple[ImageRecord, ExclusionEntry]], image_root: str, list_path: str
) -> None:
    """Check that each excluded image's file has the sha256 its entry gives.

    Raises:
        FileNotFoundError: An excluded image's file is missing.
        AnnotationError: A file's sha256 differs: the list was made from another copy of the images.
    """
    for record, entry in excluded:
        path = os.path.join(image_root, record.filename)
        name = f'entry {entry.source}/{entry.split}/{entry.filename}'
        if not os.path.isfile(path):
            raise FileNotFoundError(f'exclusion list {list_path}: {name}: image not found: {path}')
        digest = file_sha256(path)
        if digest != entry.sha256.lower():
            raise AnnotationError(
                f'exclusion list {list_path}: {name} has sha256 {entry.sha256}, but {path} has {digest}: '
                'the list was made from another copy of the images'
            )

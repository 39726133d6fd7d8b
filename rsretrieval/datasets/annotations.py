"""Readers for the four annotation formats that RS caption datasets ship in.

1. Karpathy JSON (``dataset_rsicd.json``, ``dataset_RSITMD.json``, UCM/Sydney
   ``dataset.json``): ``{"images": [{"filename", "split", "sentences": [{"raw"}]}]}``.
2. AMFMN/GaLR "precomp" text: ``{split}_caps.txt`` (one caption a line) and
   ``{split}_filename.txt`` (one line per image, k captions each, or one line
   per caption).
3. ALBEF JSON: a list of ``{"image": str, "caption": str | [str]}``; the file
   holds one split.
4. NWPU-Captions JSON (``dataset_nwpu.json``): an object keyed by scene class,
   ``{"airplane": [{"filename", "split", "raw", "raw_1", ..., "raw_4", "imgid",
   "sentids", ...}], ...}``; the images lie in ``<class>/<filename>``.

Each reader returns :class:`ImageRecord` objects, one per image in file order,
with the raw captions and the place each came from (for error messages).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ANN_FORMATS = ('karpathy', 'precomp', 'albef', 'nwpu')

#: The caption fields of an NWPU-Captions entry, in order; ``raw_5``, ``raw_6``, ...
#: are read too when present.
NWPU_CAPTION_KEYS = ('raw', 'raw_1', 'raw_2', 'raw_3', 'raw_4')
#: The split values an NWPU-Captions entry may hold.
NWPU_SPLITS = ('train', 'val', 'test')


class AnnotationError(ValueError):
    """Malformed annotation; the message names the file (and line or entry)."""


@dataclass(frozen=True)
class ImageRecord:
    """One image and its captions.

    Attributes:
        filename: Image path relative to the image folder.
        captions: Raw captions, in file order.
        sources: Where each caption came from (``file:line`` or ``file[entry]``).
    """

    filename: str
    captions: tuple[str, ...]
    sources: tuple[str, ...]


def detect_format(ann_file: str | os.PathLike) -> str:
    """Guess the annotation format of ``ann_file``.

    A folder or a ``.txt`` file is precomp; a JSON object with ``images`` is
    Karpathy; a JSON list is ALBEF; a JSON object whose values are lists of
    entries with ``raw`` or ``filename`` is NWPU-Captions.

    Args:
        ann_file: The annotation file (or precomp folder).

    Returns:
        One of :data:`ANN_FORMATS`.

    Raises:
        AnnotationError: The file is not one of the four formats.
    """
    path = Path(ann_file)
    if path.is_dir() or path.suffix == '.txt':
        return 'precomp'
    data = _load_json(path)
    if isinstance(data, dict) and 'images' in data:
        return 'karpathy'
    if isinstance(data, list):
        return 'albef'
    if isinstance(data, dict) and _looks_like_nwpu(data):
        return 'nwpu'
    raise AnnotationError(
        f'{path}: cannot detect the annotation format: expected a JSON object with an '
        '"images" list (Karpathy), a JSON list (ALBEF), a JSON object of per-class lists of '
        'entries with "filename" and "raw" (NWPU-Captions) or a precomp folder/.txt file'
    )


def _looks_like_nwpu(data: dict) -> bool:
    """Whether some value of ``data`` is a list whose first entry has ``raw`` or ``filename``.

    One class is enough, so that a file with a malformed class is still read as
    NWPU-Captions and the reader names the class at fault.
    """
    return any(
        isinstance(v, list) and v and isinstance(v[0], dict) and ('raw' in v[0] or 'filename' in v[0])
        for v in data.values()
    )


def load_annotations(ann_file: str | os.PathLike, split: str, ann_format: str = 'auto') -> list[ImageRecord]:
    """Read the records of ``split`` from ``ann_file`` in the given format.

    Args:
        ann_file: Karpathy/ALBEF/NWPU-Captions JSON file, or the precomp
            folder (or one of its ``.txt`` files).
        split: ``train``, ``val`` or ``test`` (Karpathy files may hold others,
            e.g. ``restval``; they are accepted when present).
        ann_format: ``'auto'`` or one of :data:`ANN_FORMATS`.

    Raises:
        AnnotationError: Malformed content or unknown split, naming the file.
        FileNotFoundError: The annotation file does not exist.
    """
    path = Path(ann_file)
    if not path.exists():
        raise FileNotFoundError(f'Annotation file not found: {path}')
    if ann_format == 'auto':
        ann_format = detect_format(path)
    readers = {'karpathy': read_karpathy, 'precomp': read_precomp, 'albef': read_albef, 'nwpu': read_nwpu}
    if ann_format not in readers:
        raise AnnotationError(f"Unknown ann_format {ann_format!r}; use 'auto' or one of {ANN_FORMATS}")
    records = readers[ann_format](path, split)
    if not records:
        raise AnnotationError(f'{path}: split {split!r} holds no image')
    _check_unique_filenames(records, path)
    return records


def _load_json(path: Path) -> object:
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as err:
        raise AnnotationError(f'{path}: not UTF-8 text (byte {err.start})') from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(f'{path}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}') from err


def _check_unique_filenames(records: Sequence[ImageRecord], path: Path) -> None:
    seen: dict[str, str] = {}
    for rec in records:
        if rec.filename in seen:
            raise AnnotationError(
                f'{path}: image {rec.filename!r} is listed twice ({seen[rec.filename]} and '
                f'{rec.sources[0]}); merge its captions into one entry'
            )
        seen[rec.filename] = rec.sources[0]


def read_karpathy(path: Path, split: str) -> list[ImageRecord]:
    """Read a Karpathy-format JSON file (see module docstring)."""
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise AnnotationError(f'{path}: Karpathy format needs a top-level object with an "images" list')
    splits: set[str] = set()
    records = []
    for i, entry in enumerate(data['images']):
        where = f'{path}[images][{i}]'
        if not isinstance(entry, dict):
            raise AnnotationError(f'{where}: expected an object, got {type(entry).__name__}')
        for key in ('filename', 'split', 'sentences'):
            if key not in entry:
                raise AnnotationError(f'{where}: missing key {key!r}')
        splits.add(entry['split'])
        if entry['split'] != split:
            continue
        captions, sources = [], []
        for j, sent in enumerate(entry['sentences']):
            raw = sent.get('raw') if isinstance(sent, dict) else None
            if raw is None and isinstance(sent, dict) and 'tokens' in sent:
                raw = ' '.join(sent['tokens'])
            if not isinstance(raw, str):
                raise AnnotationError(f'{where}[sentences][{j}]: needs a "raw" string (or "tokens")')
            captions.append(raw)
            sources.append(f'{where}[sentences][{j}]')
        if not captions:
            raise AnnotationError(f'{where}: image {entry["filename"]!r} has no sentence')
        records.append(ImageRecord(entry['filename'], tuple(captions), tuple(sources)))
    if split not in splits:
        raise AnnotationError(f'{path}: unknown split {split!r}; the file has splits {sorted(splits)}')
    return records


def _read_lines(path: Path, allow_empty: bool) -> list[str]:
    """Stripped lines; trailing blank lines are dropped, inner ones kept if allowed."""
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b'\n') + 1
        raise AnnotationError(f'{path}:{line}: not UTF-8 text') from err
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        if not allow_empty and not line.strip():
            raise AnnotationError(f'{path}:{i + 1}: empty line')
    return [line.strip() for line in lines]


def read_precomp(path: Path, split: str) -> list[ImageRecord]:
    """Read AMFMN/GaLR precomp text files (see module docstring).

    Two layouts exist: one filename per caption (test files, grouped by name)
    and one filename per image with ``k`` consecutive captions each (train
    files, ``k = #captions / #filenames``).
    """
    folder = path if path.is_dir() else path.parent
    caps_file, names_file = folder / f'{split}_caps.txt', folder / f'{split}_filename.txt'
    if not caps_file.is_file() or not names_file.is_file():
        available = sorted(p.name[: -len('_caps.txt')] for p in folder.glob('*_caps.txt'))
        raise AnnotationError(
            f'{folder}: unknown split {split!r} (needs {caps_file.name} and {names_file.name}); '
            f'splits present: {available}'
        )
    # An empty caption line is a caption slot (the RSITMD release has some);
    # the dataset decides what to do with empty captions.
    captions, names = _read_lines(caps_file, allow_empty=True), _read_lines(names_file, allow_empty=False)
    n_caps, n_names = len(captions), len(names)
    groups: dict[str, list[int]] = {}
    if n_caps == n_names:
        for line, name in enumerate(names):
            groups.setdefault(name, []).append(line)
    elif n_names and n_caps % n_names == 0:
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
    return [
        ImageRecord(
            name,
            tuple(captions[i] for i in lines),
            tuple(f'{caps_file}:{i + 1}' for i in lines),
        )
        for name, lines in groups.items()
    ]


def read_albef(path: Path, split: str) -> list[ImageRecord]:
    """Read an ALBEF-style JSON list; entries naming the same image are merged.

    ALBEF files hold a single split, named by the file: ``split`` is checked
    to be a known split name but does not filter.
    """
    if split not in ('train', 'val', 'test'):
        raise AnnotationError(f'{path}: unknown split {split!r}; ALBEF files are train, val or test')
    data = _load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f'{path}: ALBEF format needs a top-level JSON list')
    caps: dict[str, list[str]] = {}
    srcs: dict[str, list[str]] = {}
    for i, entry in enumerate(data):
        where = f'{path}[{i}]'
        if not isinstance(entry, dict) or 'image' not in entry or 'caption' not in entry:
            raise AnnotationError(f'{where}: expected an object with "image" and "caption"')
        entry_caps = entry['caption']
        if isinstance(entry_caps, str):
            entry_caps = [entry_caps]
        if not isinstance(entry_caps, list) or not all(isinstance(c, str) for c in entry_caps):
            raise AnnotationError(f'{where}: "caption" must be a string or a list of strings')
        caps.setdefault(entry['image'], []).extend(entry_caps)
        srcs.setdefault(entry['image'], []).extend(f'{where}[caption][{j}]' for j in range(len(entry_caps)))
    return [ImageRecord(name, tuple(c), tuple(srcs[name])) for name, c in caps.items()]


def read_nwpu(path: Path, split: str) -> list[ImageRecord]:
    """Read an NWPU-Captions JSON file (see module docstring).

    Every entry of every class is validated, whatever its split, so that a bad
    entry fails whichever split is built first. A record's ``filename`` is
    ``<class>/<filename>`` (the release keeps each class in its own folder of
    ``NWPU_images``); its captions are ``raw``, ``raw_1``, ..., ``raw_4`` (and
    ``raw_5``, ... when present), and their sources read
    ``file[class][entry index][field]``. Empty captions are left to the dataset
    (``empty_captions``), as in the other formats.

    Args:
        path: The ``dataset_nwpu.json`` file.
        split: ``train``, ``val`` or ``test``.

    Returns:
        The records of ``split``, class by class in file order.

    Raises:
        AnnotationError: A class that is not a list, an entry that is not an
            object, a missing or empty ``filename``, a missing ``split`` or one
            that is not train/val/test, a missing or non-string caption field
            (each naming the file, class and entry), or a ``split`` the file
            does not hold (the splits present are listed).
    """
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(
            f'{path}: NWPU-Captions format needs a top-level JSON object keyed by scene class, '
            f'got {type(data).__name__}'
        )
    splits: set[str] = set()
    records = []
    for cls, entries in data.items():
        if not isinstance(entries, list):
            raise AnnotationError(
                f'{path}[{cls}]: class {cls!r} must hold a list of image entries, got {type(entries).__name__}'
            )
        for i, entry in enumerate(entries):
            where = f'{path}[{cls}][{i}]'
            if not isinstance(entry, dict):
                raise AnnotationError(f'{where}: expected an object, got {type(entry).__name__}')
            filename = entry.get('filename')
            if not isinstance(filename, str) or not filename.strip():
                problem = 'missing key "filename"' if 'filename' not in entry else f'bad filename {filename!r}'
                raise AnnotationError(f'{where}: {problem} (class {cls!r}, entry {i})')
            name = f'{where} ({filename})'
            if 'split' not in entry:
                raise AnnotationError(f'{name}: missing key "split"')
            if entry['split'] not in NWPU_SPLITS:
                raise AnnotationError(f'{name}: unknown split value {entry["split"]!r}; expected one of {NWPU_SPLITS}')
            keys = list(NWPU_CAPTION_KEYS)
            while f'raw_{len(keys)}' in entry:
                keys.append(f'raw_{len(keys)}')
            for key in keys:
                if key not in entry:
                    raise AnnotationError(f'{name}: missing caption field {key!r}')
                if not isinstance(entry[key], str):
                    raise AnnotationError(
                        f'{name}: caption field {key!r} must be a string, got {type(entry[key]).__name__}'
                    )
            splits.add(entry['split'])
            if entry['split'] == split:
                records.append(
                    ImageRecord(
                        f'{cls}/{filename}',
                        tuple(entry[key] for key in keys),
                        tuple(f'{where}[{key}]' for key in keys),
                    )
                )
    if split not in splits:
        raise AnnotationError(f'{path}: unknown split {split!r}; the file has splits {sorted(splits)}')
    return records

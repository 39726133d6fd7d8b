"""Reading an annotation file through the registered formats: lookup, detection, checks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord

#: The ``ann_format`` value that leaves the format to detection.
AUTO = 'auto'


def annotation_format_names() -> list[str]:
    """The registered annotation formats (built-ins and installed plugins), sorted."""
    return ANNOTATION_FORMATS.registered_names()


def check_annotation_format(ann_format: str) -> None:
    """Raise unless ``ann_format`` is ``'auto'`` or a registered format name.

    Raises:
        ValueError: Naming the value and the registered formats.
    """
    if ann_format != AUTO and (not isinstance(ann_format, str) or ANNOTATION_FORMATS.get(ann_format) is None):
        raise ValueError(f"ann_format must be 'auto' or one of {annotation_format_names()}, got {ann_format!r}")


def build_annotation_format(name: str) -> AnnotationFormat:
    """The registered format ``name``.

    Raises:
        AnnotationError: ``name`` is not registered (the registered formats are listed).
    """
    cls = ANNOTATION_FORMATS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise AnnotationError(f"Unknown ann_format {name!r}; use 'auto' or one of {annotation_format_names()}")
    return cls()


def detect_format(ann_file: str | os.PathLike | AnnotationFile) -> str:
    """The name of the one registered format whose detector recognises ``ann_file``.

    Args:
        ann_file: The annotation file (or precomp folder).

    Raises:
        AnnotationError: No format, or more than one, recognises the file; the
            message names the file and the registered formats.
    """
    source = ann_file if isinstance(ann_file, AnnotationFile) else AnnotationFile(ann_file)
    formats = {name: build_annotation_format(name) for name in annotation_format_names()}
    matches = [name for name, fmt in formats.items() if fmt.detect(source)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AnnotationError(
            f'{source.path}: matches several annotation formats ({", ".join(matches)}); '
            f'name one in the dataset config, e.g. ann_format={matches[0]!r}'
        )
    known = '; '.join(f'{name}: {fmt.description}' for name, fmt in formats.items())
    raise AnnotationError(f'{source.path}: cannot detect the annotation format; registered formats: {known}')


def load_annotations(ann_file: str | os.PathLike, split: str, ann_format: str = AUTO) -> list[ImageRecord]:
    """Read the records of ``split`` from ``ann_file`` in the given format.

    Args:
        ann_file: The annotation file (or precomp folder).
        split: ``train``, ``val`` or ``test`` (Karpathy files may hold others,
            e.g. ``restval``; they are accepted when present).
        ann_format: ``'auto'`` (detection) or a registered format name.

    Raises:
        AnnotationError: Malformed content, an unknown split or format, a
            split without images or an image without captions, naming the file.
        FileNotFoundError: The annotation file does not exist.
    """
    source = AnnotationFile(ann_file)
    if not source.path.exists():
        raise FileNotFoundError(f'Annotation file not found: {source.path}')
    if ann_format == AUTO:
        ann_format = detect_format(source)
    records = build_annotation_format(ann_format).read(source, split)
    if not records:
        raise AnnotationError(f'{source.path}: split {split!r} holds no image')
    _check_captioned(records, source.path)
    _check_unique_filenames(records, source.path)
    return records


def _check_captioned(records: Sequence[ImageRecord], path: Path) -> None:
    """Every image has a caption: the dataset names an image by its first caption's source."""
    for rec in records:
        if not rec.captions:
            raise AnnotationError(f'{path}: image {rec.filename!r} has no caption')


def _check_unique_filenames(records: Sequence[ImageRecord], path: Path) -> None:
    seen: dict[str, str] = {}
    for rec in records:
        if rec.filename in seen:
            raise AnnotationError(
                f'{path}: image {rec.filename!r} is listed twice ({seen[rec.filename]} and '
                f'{rec.sources[0]}); merge its captions into one entry'
            )
        seen[rec.filename] = rec.sources[0]

"""Karpathy JSON: ``dataset_rsicd.json``, ``dataset_RSITMD.json``, UCM/Sydney ``dataset.json``.

``{"images": [{"filename", "split", "sentences": [{"raw"} or {"tokens"}]}]}``;
one file holds every split.
"""

from __future__ import annotations

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord


@ANNOTATION_FORMATS.register_module('karpathy')
class KarpathyFormat(AnnotationFormat):
    """Karpathy JSON, detected as a JSON object with an ``images`` key."""

    description = 'a JSON object with an "images" list (Karpathy)'

    def detect(self, source: AnnotationFile) -> bool:
        if not source.looks_like_json():
            return False
        data = source.json()
        return isinstance(data, dict) and 'images' in data

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        path, data = source.path, source.json()
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
            if entry['split'] == split:
                records.append(_record(entry, where))
        if split not in splits:
            raise AnnotationError(f'{path}: unknown split {split!r}; the file has splits {sorted(splits)}')
        return records


def _record(entry: dict, where: str) -> ImageRecord:
    """The record of one ``images`` entry; a sentence gives ``raw``, or ``tokens`` joined."""
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
    return ImageRecord(entry['filename'], tuple(captions), tuple(sources))

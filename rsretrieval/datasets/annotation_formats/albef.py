"""ALBEF JSON: a list of ``{"image": str, "caption": str | [str]}``; the file holds one split."""

from __future__ import annotations

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord

#: The split names an ALBEF file may stand for.
ALBEF_SPLITS = ('train', 'val', 'test')


@ANNOTATION_FORMATS.register_module('albef')
class AlbefFormat(AnnotationFormat):
    """ALBEF-style JSON list, detected as a top-level JSON list.

    Entries naming the same image are merged. The file is one split, named by
    the file: ``split`` is checked to be a known split name but does not filter.
    """

    description = 'a JSON list of {"image", "caption"} (ALBEF)'

    def detect(self, source: AnnotationFile) -> bool:
        return source.looks_like_json() and isinstance(source.json(), list)

    def read(self, source: AnnotationFile, split: str) -> list[ImageRecord]:
        path = source.path
        if split not in ALBEF_SPLITS:
            raise AnnotationError(f'{path}: unknown split {split!r}; ALBEF files are train, val or test')
        data = source.json()
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

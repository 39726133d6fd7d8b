"""ALBEF JSON: a list of ``{"image": str, "caption": str | [str]}``; the file holds one split."""

from __future__ import annotations

from rsretrieval.registry import ANNOTATION_FORMATS

from .annotation_file import AnnotationError, AnnotationFile
from .base import AnnotationFormat, ImageRecord
from .fields import describe, expect_dict, require_str, require_str_list

#: The split names an ALBEF file may stand for.
ALBEF_SPLITS = ('train', 'val', 'test')


@ANNOTATION_FORMATS.register_module('albef')
class AlbefFormat(AnnotationFormat):
    """ALBEF-style JSON list, detected as a top-level JSON list.

    Entries naming the same image are merged. The file is one split, named by
    the file: ``split`` is checked to be a known split name but does not filter.
    An entry that is not an object, an ``image`` that is not a non-empty
    string, or a ``caption`` that is neither a string nor a non-empty list of
    strings raises :class:`AnnotationError` naming the file, the entry and the field.
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
            raise AnnotationError(f'{path}: ALBEF format needs a top-level JSON list, got {describe(data)}')
        caps: dict[str, list[str]] = {}
        srcs: dict[str, list[str]] = {}
        for i, entry in enumerate(data):
            where = f'{path}[{i}]'
            entry = expect_dict(entry, where)
            image = require_str(entry, 'image', where, non_empty=True)
            named = f'{where} ({image})'
            entry_caps = require_str_list(entry, 'caption', named, allow_str=True)
            if not entry_caps:
                raise AnnotationError(f'{named}: key "caption" holds no caption')
            caps.setdefault(image, []).extend(entry_caps)
            srcs.setdefault(image, []).extend(f'{where}[caption][{j}]' for j in range(len(entry_caps)))
        return [ImageRecord(name, tuple(c), tuple(srcs[name])) for name, c in caps.items()]

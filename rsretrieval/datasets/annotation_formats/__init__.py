"""Annotation formats of remote-sensing caption datasets, one registered class each.

Built in: ``karpathy`` (Karpathy JSON), ``precomp`` (AMFMN/GaLR text files),
``albef`` (ALBEF JSON lists) and ``nwpu`` (NWPU-Captions JSON). A plugin adds a
format by registering an :class:`AnnotationFormat` subclass in
``rsretrieval.registry.ANNOTATION_FORMATS``; a dataset config names it with
``ann_format=`` or leaves it to detection, which asks every registered format.
A format reads the fields of its entries through the typed accessors of
:mod:`.fields` (``require_str``, ``require_list``, ...), so that a value of the
wrong type fails naming the file, the entry and the field.
"""

from .albef import AlbefFormat
from .annotation_file import AnnotationError, AnnotationFile, read_json, read_text_lines
from .base import AnnotationFormat, ImageRecord
from .fields import describe, expect_dict, require_list, require_str, require_str_list
from .karpathy import KarpathyFormat
from .loading import (
    annotation_format_names,
    build_annotation_format,
    check_annotation_format,
    detect_format,
    load_annotations,
)
from .nwpu import NWPU_CAPTION_KEYS, NWPU_SPLITS, NwpuFormat
from .precomp import PrecompFormat

__all__ = [
    'AlbefFormat',
    'AnnotationError',
    'AnnotationFile',
    'AnnotationFormat',
    'ImageRecord',
    'KarpathyFormat',
    'NWPU_CAPTION_KEYS',
    'NWPU_SPLITS',
    'NwpuFormat',
    'PrecompFormat',
    'annotation_format_names',
    'build_annotation_format',
    'check_annotation_format',
    'describe',
    'detect_format',
    'expect_dict',
    'load_annotations',
    'read_json',
    'read_text_lines',
    'require_list',
    'require_str',
    'require_str_list',
]

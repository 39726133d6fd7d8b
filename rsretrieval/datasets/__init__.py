"""Datasets, annotation formats and transforms."""

from .annotation_formats import (
    NWPU_CAPTION_KEYS,
    NWPU_SPLITS,
    AnnotationError,
    AnnotationFile,
    AnnotationFormat,
    ImageRecord,
    annotation_format_names,
    detect_format,
    load_annotations,
)
from .caption_dataset import BaseCaptionDataset, RSCaptionDataset
from .combined_dataset import CombinedCaptionDataset, DatasetPart
from .exclusions import ExclusionEntry, ExclusionList, read_exclusion_list, write_exclusion_list
from .samplers import ReproducibleSampler, sample_seed
from .synthetic import DemoSceneDataset, make_demo_dataset
from .text import clean_caption

__all__ = [
    'AnnotationError',
    'AnnotationFile',
    'AnnotationFormat',
    'BaseCaptionDataset',
    'CombinedCaptionDataset',
    'DatasetPart',
    'DemoSceneDataset',
    'ExclusionEntry',
    'ExclusionList',
    'ImageRecord',
    'NWPU_CAPTION_KEYS',
    'NWPU_SPLITS',
    'RSCaptionDataset',
    'ReproducibleSampler',
    'annotation_format_names',
    'clean_caption',
    'detect_format',
    'load_annotations',
    'make_demo_dataset',
    'read_exclusion_list',
    'sample_seed',
    'write_exclusion_list',
]

"""Datasets, annotation readers and transforms."""

from .annotations import (
    ANN_FORMATS,
    NWPU_CAPTION_KEYS,
    NWPU_SPLITS,
    AnnotationError,
    ImageRecord,
    detect_format,
    load_annotations,
)
from .caption_dataset import RSCaptionDataset
from .samplers import ReproducibleSampler, sample_seed
from .synthetic import DemoSceneDataset, make_demo_dataset
from .text import clean_caption

__all__ = [
    'ANN_FORMATS',
    'AnnotationError',
    'DemoSceneDataset',
    'ImageRecord',
    'NWPU_CAPTION_KEYS',
    'NWPU_SPLITS',
    'RSCaptionDataset',
    'ReproducibleSampler',
    'clean_caption',
    'detect_format',
    'load_annotations',
    'make_demo_dataset',
    'sample_seed',
]

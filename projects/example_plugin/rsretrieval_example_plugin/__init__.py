"""An rsretrieval plugin: importing it registers its components."""

from .annotation_format import CaptionTableFormat
from .convnext import ConvNeXtBackbone
from .reranker import DualSoftmax

__all__ = ['CaptionTableFormat', 'ConvNeXtBackbone', 'DualSoftmax']

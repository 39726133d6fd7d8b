"""An rsretrieval plugin: importing it registers its components."""

from .convnext import ConvNeXtBackbone

__all__ = ['ConvNeXtBackbone']

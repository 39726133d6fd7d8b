"""Image backbones: ``forward(images) -> (B, 1 + N, D)``, global token first."""

from .gcvit import GCViT
from .gswin import Gswin
from .open_clip_vision import OpenCLIPVision
from .swin import Swin
from .timm_backbone import TimmBackbone
from .vit import ViT

__all__ = ['GCViT', 'Gswin', 'OpenCLIPVision', 'Swin', 'TimmBackbone', 'ViT']

"""Image backbones: ``forward(images) -> (B, 1 + N, D)``, global token first."""

from .gcvit import GCViT
from .gswin import Gswin
from .swin import Swin
from .timm_backbone import TimmBackbone
from .vit import ViT

__all__ = ['GCViT', 'Gswin', 'Swin', 'TimmBackbone', 'ViT']

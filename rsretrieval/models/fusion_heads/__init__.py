"""Fusion heads: multimodal encoders over image and text tokens."""

from .base_fusion_head import BertFusionHead
from .bert_fusion_layers import BertFusionLayers
from .pre_aligned_fusion import PreAlignedFusion
from .standard_fusion import StandardFusion

__all__ = ['BertFusionHead', 'BertFusionLayers', 'PreAlignedFusion', 'StandardFusion']

from .base import BaseRetriever
from .dual_encoder import DualEncoderRetriever

__all__ = ['BaseRetriever', 'DualEncoderRetriever']

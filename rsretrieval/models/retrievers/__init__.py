from .base import BaseRetriever
from .cmpagl import CMPAGL
from .dual_encoder import DualEncoderRetriever

__all__ = ['BaseRetriever', 'CMPAGL', 'DualEncoderRetriever']

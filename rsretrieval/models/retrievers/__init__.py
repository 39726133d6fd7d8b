from .base import BaseRetriever
from .cmpagl import CMPAGL
from .dual_encoder import DualEncoderRetriever
from .two_tower import TwoTowerRetriever

__all__ = ['BaseRetriever', 'CMPAGL', 'DualEncoderRetriever', 'TwoTowerRetriever']

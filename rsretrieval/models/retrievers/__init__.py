from .base import BaseRetriever
from .clip_retriever import CLIPRetriever
from .cmpagl import CMPAGL
from .dual_encoder import DualEncoderRetriever
from .two_tower import TwoTowerRetriever

__all__ = ['BaseRetriever', 'CLIPRetriever', 'CMPAGL', 'DualEncoderRetriever', 'TwoTowerRetriever']

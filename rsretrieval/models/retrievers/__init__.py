from .base import BaseRetriever
from .clip_retriever import CLIPRetriever
from .cmpagl import CMPAGL
from .dual_encoder import DualEncoderRetriever
from .joint_embedding import JointEmbeddingRetriever
from .pre_alignment import PreAlignment

__all__ = [
    'BaseRetriever',
    'CLIPRetriever',
    'CMPAGL',
    'DualEncoderRetriever',
    'JointEmbeddingRetriever',
    'PreAlignment',
]

from .encode import encode_images, encode_texts, gather_by_index, gather_features
from .retrieval_loops import RetrievalTestLoop, RetrievalValLoop

__all__ = [
    'RetrievalTestLoop',
    'RetrievalValLoop',
    'encode_images',
    'encode_texts',
    'gather_by_index',
    'gather_features',
]

from .encode import encode_images, encode_texts, gather_by_index, gather_features
from .loader_faults import LoaderWorkerError
from .retrieval_loops import RetrievalTestLoop, RetrievalValLoop
from .train_loop import RetrievalTrainLoop

__all__ = [
    'LoaderWorkerError',
    'RetrievalTestLoop',
    'RetrievalTrainLoop',
    'RetrievalValLoop',
    'encode_images',
    'encode_texts',
    'gather_by_index',
    'gather_features',
]

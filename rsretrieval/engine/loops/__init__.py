from .encode import encode_images, encode_texts, gather_by_index, gather_features
from .loader_faults import LoaderWorkerError
from .retrieval_loops import RetrievalTestLoop, RetrievalValLoop
from .scoring import Scoring, choose_scoring, score_pairs
from .train_loop import RetrievalTrainLoop

__all__ = [
    'LoaderWorkerError',
    'RetrievalTestLoop',
    'RetrievalTrainLoop',
    'RetrievalValLoop',
    'Scoring',
    'choose_scoring',
    'encode_images',
    'encode_texts',
    'gather_by_index',
    'gather_features',
    'score_pairs',
]

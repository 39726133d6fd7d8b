"""Evaluation: pure metric functions, typed scoring results and their mmengine wrappers."""

from .caption_equivalence import (
    SharedCaptions,
    equivalent_pairs,
    normalise_caption,
    recall_at_k_equivalent,
    shared_captions,
)
from .metrics import RetrievalRecall
from .parts import check_parts, metrics_over_parts, part_ground_truth
from .ranking import ScoreBlock, gt_ranks
from .recall import (
    chance_recall,
    format_results_table,
    recall_at_k,
    recall_at_k_blockwise,
    recall_at_k_reranked,
)
from .relevance import RelevantPairs, check_ground_truth
from .scores import BlockwiseScores, CandidateScores, DenseScores, RetrievalScores
from .seeds import aggregate_seeds, seeds_markdown
from .similarity_io import load_similarity, save_scores, save_similarity

__all__ = [
    'BlockwiseScores',
    'CandidateScores',
    'DenseScores',
    'RelevantPairs',
    'RetrievalRecall',
    'RetrievalScores',
    'ScoreBlock',
    'SharedCaptions',
    'aggregate_seeds',
    'chance_recall',
    'check_ground_truth',
    'check_parts',
    'equivalent_pairs',
    'format_results_table',
    'gt_ranks',
    'load_similarity',
    'metrics_over_parts',
    'normalise_caption',
    'part_ground_truth',
    'recall_at_k',
    'recall_at_k_blockwise',
    'recall_at_k_equivalent',
    'recall_at_k_reranked',
    'save_scores',
    'save_similarity',
    'seeds_markdown',
    'shared_captions',
]

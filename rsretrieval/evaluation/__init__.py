"""Evaluation: pure metric functions, typed scoring results and their mmengine wrappers."""

from .metrics import RetrievalRecall
from .recall import (
    chance_recall,
    check_ground_truth,
    format_results_table,
    gt_ranks,
    recall_at_k,
    recall_at_k_blockwise,
    recall_at_k_reranked,
)
from .scores import BlockwiseScores, CandidateScores, DenseScores, RetrievalScores, ScoreBlock
from .seeds import aggregate_seeds, seeds_markdown
from .similarity_io import load_similarity, save_scores, save_similarity

__all__ = [
    'BlockwiseScores',
    'CandidateScores',
    'DenseScores',
    'RetrievalRecall',
    'RetrievalScores',
    'ScoreBlock',
    'aggregate_seeds',
    'chance_recall',
    'check_ground_truth',
    'format_results_table',
    'gt_ranks',
    'load_similarity',
    'recall_at_k',
    'recall_at_k_blockwise',
    'recall_at_k_reranked',
    'save_scores',
    'save_similarity',
    'seeds_markdown',
]

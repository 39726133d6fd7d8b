"""Rerankers: functions of a similarity matrix (paper §III-E)."""

from .base_reranker import BaseReranker
from .itm_rerank import ITMRerank
from .mr import MR
from .no_rerank import NoRerank
from .smr import SMR
from .top_k_reranker import TopKReranker

__all__ = ['BaseReranker', 'ITMRerank', 'MR', 'NoRerank', 'SMR', 'TopKReranker']

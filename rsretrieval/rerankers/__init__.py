"""Rerankers: functions of a similarity matrix (paper §III-E)."""

from .no_rerank import NoRerank

__all__ = ['NoRerank']

from .retrieval_recall import RetrievalRecall

__all__ = ['RetrievalRecall']

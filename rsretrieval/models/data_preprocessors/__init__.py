from .retrieval_preprocessor import RetrievalDataPreprocessor

__all__ = ['RetrievalDataPreprocessor']

from .bert import BertTextEncoder

__all__ = ['BertTextEncoder']

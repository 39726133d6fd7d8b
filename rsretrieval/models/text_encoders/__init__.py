from .bert import BertTextEncoder, load_bert

__all__ = ['BertTextEncoder', 'load_bert']

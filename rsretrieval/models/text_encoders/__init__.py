from .bert import BertTextEncoder, load_bert
from .open_clip_text import OpenCLIPText, OpenCLIPTokenizer

__all__ = ['BertTextEncoder', 'OpenCLIPText', 'OpenCLIPTokenizer', 'load_bert']

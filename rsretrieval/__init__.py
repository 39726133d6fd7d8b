"""rsretrieval: remote-sensing cross-modal text-image retrieval on mmengine."""

from .version import __version__

__all__ = ['__version__']

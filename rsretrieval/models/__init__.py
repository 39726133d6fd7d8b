"""Models: retrievers and their components (backbones, text encoders, losses)."""

from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .fusion_heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .retrievers import *  # noqa: F401,F403
from .text_encoders import *  # noqa: F401,F403

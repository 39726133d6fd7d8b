"""Training/evaluation machinery for mmengine's Runner: loops and hooks."""

from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403

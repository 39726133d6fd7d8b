"""Training/evaluation machinery for mmengine's Runner: loops, hooks, optimizer wrappers."""

from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403

"""Training/evaluation machinery for mmengine's Runner: loops, hooks, optimizer wrappers.

Importing it changes no global state: the atomic local-file backend is in force
only while rsretrieval's hooks save a checkpoint (:func:`atomic_local_saves`).
"""

from .atomic_backend import AtomicLocalBackend, atomic_local_saves  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403

"""Training/evaluation machinery for mmengine's Runner: loops, hooks, optimizer wrappers."""

from .atomic_backend import AtomicLocalBackend, use_atomic_local_backend  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403

# every local file mmengine writes (checkpoints, their pointers) is replaced atomically
use_atomic_local_backend()

"""Keeping freed CPU memory in the process for the next batch of a long encoding run."""

from __future__ import annotations

import ctypes
import platform

from .env_switches import env_switch

#: Environment variable that turns :func:`keep_freed_cpu_memory` off (``0``).
KEEP_FREED_MEMORY_ENV = 'RSRETRIEVAL_KEEP_FREED_MEMORY'

# mallopt parameters of glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# mallopt takes an int: the largest free top of the heap kept before it is given back
_KEEP_AT_MOST = 2**31 - 1


def keep_freed_cpu_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse instead of giving it back (process-wide).

    glibc maps every block above its mmap threshold (32 MiB at most) afresh and
    unmaps it when freed, so each batch of a paper-size Gswin page-faults its
    25-200 MB activations in again, 4 KiB at a time, zero-filled by the kernel.
    Serving all blocks from the heap and never trimming it lets the next batch
    reuse the pages: measured on a 2-core AMD EPYC (Zen 4), the K=96 linear
    layers of Gswin's first stage ran 1.5-1.8x faster, the whole encoder
    about 1.3x (docs/retrieval.md). This is what preloading jemalloc or tcmalloc
    does for PyTorch on CPUs, done from inside the process. The cost: the
    process keeps its peak heap until it exits.

    Commands that encode many images call it; importing rsretrieval never does.
    ``RSRETRIEVAL_KEEP_FREED_MEMORY=0`` turns it off.

    Returns:
        True when applied; False with another C library or when turned off.

    Raises:
        ValueError: The environment variable is set to something other than 0 or 1.
    """
    if env_switch(KEEP_FREED_MEMORY_ENV) is False or platform.libc_ver()[0] != 'glibc':
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _KEEP_AT_MOST) == 1

"""mmengine's FileClient deprecation warnings, dropped where our hooks cannot act on them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rsretrieval.utils.quiet_logging import logger_filter

# What mmengine 0.10.7's FileClient constructor and its 'disk' backend log when created.
FILE_CLIENT_DEPRECATIONS = ('"FileClient" will be deprecated', '"HardDiskBackend" is the alias of "LocalBackend"')


class _DropFileClientDeprecations(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(FILE_CLIENT_DEPRECATIONS)


@contextlib.contextmanager
def file_client_deprecations_dropped(enabled: bool = True) -> Iterator[None]:
    """Drop the two FileClient deprecation warnings from the current mmengine logger inside the block.

    mmengine 0.10.7 builds a FileClient, and so logs them, in ``CheckpointHook.before_train``
    and in every ``save_checkpoint`` even when no ``file_client_args`` is set, and then never
    uses it (kept "for backward compatibility"): the warnings are about mmengine's own code,
    and no config can act on them. Every other record passes.

    Args:
        enabled: Drop them; False where a config sets ``file_client_args``, which the
            warnings are then about.
    """
    if not enabled:
        yield
        return
    with logger_filter(_DropFileClientDeprecations()):
        yield

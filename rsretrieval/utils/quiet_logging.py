"""Holding mmengine's log back while a tool builds what it reports on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mmengine.config import Config
from mmengine.logging import MMLogger


@contextlib.contextmanager
def quiet_runner(cfg: Config, enabled: bool = True) -> Iterator[None]:
    """Build a Runner without mmengine's environment dump, config and hook table.

    Tools that evaluate, search or draw print their result first: the Runner is
    built at ``WARNING`` level, then its logger returns to the config's level
    (``INFO``) for what the tool itself reports. ``enabled=False`` (``--verbose``)
    keeps mmengine's full log.
    """
    if not enabled:
        yield
        return
    level = cfg.get('log_level', 'INFO')
    cfg.log_level = 'WARNING'
    try:
        yield
    finally:
        cfg.log_level = level
        numeric = logging.getLevelName(level) if isinstance(level, str) else level
        logger = MMLogger.get_current_instance()
        logger.setLevel(numeric)
        for handler in logger.handlers:
            handler.setLevel(numeric)


@contextlib.contextmanager
def quiet_logs(enabled: bool = True) -> Iterator[None]:
    """Hold the current mmengine logger (and its handlers) at ``WARNING`` inside the block.

    For tools that build a model and then load a checkpoint into it: the
    build's notes about pretrained initialisation are noise before their result.
    """
    if not enabled:
        yield
        return
    logger = MMLogger.get_current_instance()
    levels = [logger.level, *(h.level for h in logger.handlers)]
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(levels[0])
        for handler, level in zip(logger.handlers, levels[1:]):
            handler.setLevel(level)

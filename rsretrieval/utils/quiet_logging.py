"""Holding mmengine's log back while a tool builds what it reports on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner


class _QuietConsoleRunner(Runner):
    """mmengine's Runner whose console takes only warnings until training begins.

    The console handlers of the logger it builds are raised to ``WARNING`` at once,
    before the environment dump, the config and the hook table are logged; the log
    file keeps its level and records them. A hook lowers them again at the first
    training iteration (:func:`build_runner`).
    """

    held_back: list[tuple[logging.Handler, int]]

    def build_logger(self, *args, **kwargs) -> MMLogger:
        logger = super().build_logger(*args, **kwargs)
        self.held_back = [(handler, handler.level) for handler in _console_handlers(logger)]
        for handler, level in self.held_back:
            handler.setLevel(max(level, logging.WARNING))
        return logger


class _ConsoleRelease(Hook):
    """Gives the console handlers their levels back before the first training iteration."""

    priority = 'HIGHEST'  # before any hook of the iteration logs

    def __init__(self, held_back: list[tuple[logging.Handler, int]]) -> None:
        self.held_back = held_back

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: object = None) -> None:
        for handler, level in self.held_back:
            handler.setLevel(level)
        self.held_back = []


def build_runner(cfg: Config, quiet_console: bool = False) -> Runner:
    """``Runner.from_cfg(cfg)``; with ``quiet_console``, a console that stays quiet until training begins.

    A quiet console leaves out mmengine's environment dump, config and hook
    table, and what is logged below ``WARNING`` while the optimizer, the loops and
    the datasets are built (one line per parameter group option, dataset notes,
    the initial weights): from the first iteration it shows training progress and
    validation results again. Warnings always show. The log file in the work dir
    records everything either way, so that the run can be reproduced from it.
    """
    if not quiet_console:
        return Runner.from_cfg(cfg)
    runner = _QuietConsoleRunner.from_cfg(cfg)
    runner.register_hook(_ConsoleRelease(runner.held_back))
    return runner


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers that write to a terminal stream, not to a file."""
    return [
        handler
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


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
def quiet_logs(enabled: bool = True, level: int = logging.WARNING) -> Iterator[None]:
    """Hold the current mmengine logger (and its handlers) at ``level`` inside the block.

    For tools that build a model and then load a checkpoint into it: the
    build's notes about pretrained initialisation are noise before their result.
    ``level=logging.ERROR`` also holds back warnings that a later step repeats.
    """
    if not enabled:
        yield
        return
    logger = MMLogger.get_current_instance()
    levels = [logger.level, *(h.level for h in logger.handlers)]
    logger.setLevel(level)
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, level))
    try:
        yield
    finally:
        logger.setLevel(levels[0])
        for handler, previous in zip(logger.handlers, levels[1:]):
            handler.setLevel(previous)


@contextlib.contextmanager
def logger_filter(record_filter: logging.Filter) -> Iterator[logging.Filter]:
    """``record_filter`` on the current mmengine logger inside the block (it sees, and may drop, every record)."""
    logger = MMLogger.get_current_instance()
    logger.addFilter(record_filter)
    try:
        yield record_filter
    finally:
        logger.removeFilter(record_filter)

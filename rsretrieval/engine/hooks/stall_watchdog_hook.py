"""Say so when training stops making progress, instead of staying silent."""

from __future__ import annotations

import os
import statistics
import threading
import time

from mmengine.hooks import Hook

from rsretrieval.registry import HOOKS


@HOOKS.register_module()
class StallWatchdogHook(Hook):
    """Warn when no training iteration has finished for a long time.

    A background thread watches the training loop. When no iteration has
    finished for ``max(timeout, factor x median iteration time)`` seconds it
    logs a warning that says where the loop is waiting: for the data loader
    (a stuck or very slow worker, an unreachable file system) or inside the
    step (a deadlock between processes, a device that stopped responding), with
    the process id to inspect (``py-spy dump --pid PID``). The warning repeats
    once per further period while the stall lasts; validation pauses the watch
    (the evaluation loops log their own progress).

    Args:
        timeout: Least seconds without a finished iteration before a warning.
        factor: Multiple of the median iteration time that also must pass.
        poll: Seconds between the thread's checks.
    """

    priority = 'VERY_LOW'

    def __init__(self, timeout: float = 300.0, factor: float = 10.0, poll: float = 5.0) -> None:
        if timeout <= 0 or factor <= 0 or poll <= 0:
            raise ValueError('timeout, factor and poll must be positive')
        self.timeout, self.factor, self.poll = timeout, factor, poll
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = 0.0
        self._phase = 'data'  # 'data': waiting for a batch; 'step': inside an iteration; 'paused'
        self._durations: list[float] = []
        self._iter_start = 0.0
        self._warned_at = 0.0
        self._runner = None

    # ----------------------------------------------------------- loop events
    def before_train(self, runner) -> None:
        self._runner = runner
        self._mark('data')
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name='stall-watchdog', daemon=True)
        self._thread.start()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._iter_start = time.monotonic()
        self._mark('step')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        now = time.monotonic()
        with self._lock:
            self._durations = (self._durations + [now - self._iter_start])[-50:]
        self._mark('data')

    def before_val(self, runner) -> None:
        self._mark('paused')

    def after_val(self, runner) -> None:
        self._mark('data')

    def after_train(self, runner) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll + 1)
            self._thread = None

    # --------------------------------------------------------------- watching
    def _mark(self, phase: str) -> None:
        with self._lock:
            self._phase, self._last, self._warned_at = phase, time.monotonic(), 0.0

    def limit(self) -> float:
        """Seconds without progress before a warning."""
        with self._lock:
            typical = statistics.median(self._durations) if self._durations else 0.0
        return max(self.timeout, self.factor * typical)

    def check(self, now: float | None = None) -> str | None:
        """The warning due at ``now`` (and remember it), or None."""
        now = time.monotonic() if now is None else now
        limit = self.limit()
        with self._lock:
            if self._phase == 'paused':
                return None
            silent = now - self._last
            since_warning = now - self._warned_at if self._warned_at else None
            if silent < limit or (since_warning is not None and since_warning < limit):
                return None
            self._warned_at = now
            phase = self._phase
        runner = self._runner
        where = (
            'waiting for the data loader (a stuck or very slow worker, or slow storage?)'
            if phase == 'data'
            else 'inside the training step (a deadlock between processes, or a device that stopped responding?)'
        )
        position = f'after iteration {runner.iter} of {runner.max_iters}' if runner is not None else ''
        return (
            f'No training iteration has finished for {silent:.0f} s ({position}), {where}. '
            f'See where the process is with: py-spy dump --pid {os.getpid()}'
        )

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            message = self.check()
            if message and self._runner is not None:
                self._runner.logger.warning(message)

"""Progress of long loops: a bar on a terminal, or a log line every so often in a log."""

from __future__ import annotations

import time

from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar


class Progress:
    """Report ``update()`` calls towards ``total``.

    ``bar=True`` draws mmengine's progress bar (interactive use: ``tools/test.py``);
    otherwise a log line (``what``: done/total, percent, elapsed, ETA) is written
    whenever ``every`` seconds have passed since the last one, so a long
    evaluation inside training is never silent and a short one writes nothing.
    ``enabled=False`` reports nothing (ranks other than 0).

    Args:
        total: Units of work.
        what: What is counted, for the log line (``'val: images'``).
        bar: Draw a bar instead of log lines.
        every: Seconds between log lines.
        enabled: Report at all.
    """

    def __init__(self, total: int, what: str, bar: bool = False, every: float = 30.0, enabled: bool = True) -> None:
        self.total, self.what, self.every = total, what, every
        self.done = 0
        self.enabled = enabled and total > 0
        self._bar = ProgressBar(total) if self.enabled and bar else None
        self._start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            for _ in range(n):
                self._bar.update()
            return
        now = time.monotonic()
        if now - self._last >= self.every and self.done < self.total:
            elapsed = now - self._start
            eta = elapsed / self.done * (self.total - self.done)
            MMLogger.get_current_instance().info(
                f'{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f} %), '
                f'{elapsed:.0f} s, ETA {eta:.0f} s'
            )
            self._last = now

    def close(self) -> None:
        """End the bar's line."""
        if self._bar is not None:
            print()
            self._bar = None

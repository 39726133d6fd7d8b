"""Progress of long loops: a bar on a terminal, or a line every so often in a log or a stream."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar


def format_duration(seconds: float) -> str:
    """``'41 s'`` (up to 99 s), ``'12 min 05 s'``, ``'3 h 02 min'``."""
    s = max(0, round(seconds))
    if s < 100:
        return f'{s} s'
    if s < 3600:
        return f'{s // 60} min {s % 60:02d} s'
    return f'{s // 3600} h {s % 3600 // 60:02d} min'


class Progress:
    """Report ``update()`` calls towards ``total``.

    With ``bar`` it draws mmengine's progress bar (interactive use: ``tools/test.py``,
    the search CLI on a terminal); otherwise it writes a line (done/total, elapsed,
    ETA) whenever ``every`` seconds have passed since the last one, so a long loop
    is never silent and a short one writes nothing. Lines go to the mmengine logger
    (evaluation inside training), or to ``stream`` when one is given.

    The line is ``'val: image batches: 3/10 (30 %), 41 s, ETA 48 s'``, or with a
    ``unit`` ``'indexed 320/704 images, 41 s, ETA 48 s'`` (``what`` is then a verb).

    Args:
        total: Units when the loop is over, ``done`` included.
        what: What is counted (``'val: image batches'``), or with ``unit`` what is
            done to a unit (``'indexed'``).
        bar: Draw a bar instead of lines; None: when ``stream`` is a terminal.
        every: Seconds between two lines.
        enabled: Report at all (False on ranks other than 0).
        done: Units done before this run (counted, but not in the rate).
        unit: The units' name, for the second form of the line.
        stream: Where lines go instead of the logger; a bar goes there too
            (default: standard output).
        final_line: Write a last line at :meth:`close` (without a bar).
        clock: Seconds, monotonic (tests replace it).
    """

    def __init__(
        self,
        total: int,
        what: str,
        bar: bool | None = False,
        every: float = 30.0,
        enabled: bool = True,
        *,
        done: int = 0,
        unit: str | None = None,
        stream: TextIO | None = None,
        final_line: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.what, self.every, self.done = total, what, every, done
        self.unit, self.stream, self.final_line, self.clock = unit, stream, final_line, clock
        self._first = done
        self._start = self._last = clock()
        self._active = enabled and total > done
        if bar is None:
            bar = bool(getattr(stream, 'isatty', lambda: False)())
        self._bar = ProgressBar(total - done, file=stream or sys.stdout) if self._active and bar else None

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._active and self.clock() - self._last >= self.every and self.done < self.total:
            self._write()

    def line(self) -> str:
        """The progress line now (no ETA once done)."""
        elapsed = self.clock() - self._start
        if self.unit is None:
            text = f'{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f} %), '
        else:
            text = f'{self.what} {self.done}/{self.total} {self.unit}, '
        text += format_duration(elapsed)
        new = self.done - self._first
        if 0 < new and self.done < self.total:
            text += f', ETA {format_duration(elapsed / new * (self.total - self.done))}'
        return text

    def _write(self) -> None:
        if self.stream is None:
            MMLogger.get_current_instance().info(self.line())
        else:
            print(self.line(), file=self.stream, flush=True)
        self._last = self.clock()

    def close(self) -> None:
        """End the bar's line, or write the last line (``final_line``); only once."""
        if self._bar is not None:
            print(file=self.stream or sys.stdout, flush=True)
        elif self._active and self.final_line:
            self._write()
        self._bar, self._active = None, False

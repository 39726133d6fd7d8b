"""Progress of long loops: a bar on a terminal, or a line every so often in a log or a stream."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar

STEPS = 10  # lines per loop where a bar was asked for but the stream is not a terminal


def format_duration(seconds: float) -> str:
    """``'41 s'`` (up to 99 s), ``'12 min 05 s'``, ``'3 h 02 min'``."""
    s = max(0, round(seconds))
    if s < 100:
        return f'{s} s'
    if s < 3600:
        return f'{s // 60} min {s % 60:02d} s'
    return f'{s // 3600} h {s % 3600 // 60:02d} min'


def _is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is an interactive terminal (None is not)."""
    return bool(getattr(stream, 'isatty', lambda: False)())


class Progress:
    """Report ``update()`` calls towards ``total``.

    With ``bar`` it draws mmengine's progress bar (interactive use: ``tools/test.py``,
    the search CLI on a terminal) where its stream is a terminal; where it is a pipe
    or a file, the bar's carriage returns would pile up in the log, so it writes a
    plain line at every tenth of the loop instead (the last one at 100 %).
    Otherwise it writes a line (done/total, elapsed, ETA) whenever ``every`` seconds
    have passed since the last one, so a long loop is never silent and a short one
    writes nothing. Lines go to the mmengine logger (evaluation inside training),
    or to ``stream`` when one is given.

    The line is ``'val: image batches: 3/10 (30 %), 41 s, ETA 48 s'``, or with a
    ``unit`` ``'indexed 320/704 images, 41 s, ETA 48 s'`` (``what`` is then a verb).

    Args:
        total: Units when the loop is over, ``done`` included.
        what: What is counted (``'val: image batches'``), or with ``unit`` what is
            done to a unit (``'indexed'``).
        bar: Draw a bar instead of timed lines (a line per tenth off a terminal);
            None: a bar when ``stream`` is a terminal, timed lines otherwise.
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
        self._first = self._written = done
        self._start = self._last = clock()
        self._active = enabled and total > done
        if bar is None:
            bar = _is_terminal(stream)
        # a bar was asked for but its stream is a pipe or a file: a line per tenth instead
        self._steps = bool(bar) and not _is_terminal(stream or sys.stdout)
        self._next_step = self._step_after(done)
        draw = self._active and bar and not self._steps
        self._bar = ProgressBar(total - done, file=stream or sys.stdout) if draw else None

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._steps:
            if self._active and self.done >= self._next_step:
                self._write(stream=self.stream or sys.stdout)
                self._next_step = self._step_after(self.done)
        elif self._active and self.clock() - self._last >= self.every and self.done < self.total:
            self._write()

    def _step_after(self, done: int) -> int:
        """The first count past ``done`` that completes a tenth of ``total`` (``total`` at the end)."""
        tenths = STEPS * done // self.total + 1 if self.total > 0 else STEPS
        return min(self.total, -(-self.total * tenths // STEPS))  # integer ceiling: no rounding error

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

    def _write(self, stream: TextIO | None = None) -> None:
        """The line now, to ``stream``, else to :attr:`stream`, else to the logger."""
        stream = stream or self.stream
        if stream is None:
            MMLogger.get_current_instance().info(self.line())
        else:
            print(self.line(), file=stream, flush=True)
        self._last, self._written = self.clock(), self.done

    def close(self) -> None:
        """End the bar's line, or write the last line (``final_line``; off a terminal, where
        a bar was asked for, the count reached unless its line was written); only once."""
        if self._bar is not None:
            print(file=self.stream or sys.stdout, flush=True)
        elif self._active and self._steps and self._written != self.done:
            self._write(stream=self.stream or sys.stdout)
        elif self._active and self.final_line and not self._steps:
            self._write()
        self._bar, self._active = None, False

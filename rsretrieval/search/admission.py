"""A bounded line in front of one serial worker: the search server's model and index.

The server searches one query at a time. Without a bound, every query that
arrives while it is busy waits on a lock, holding a thread and its request,
so a burst grows the server without limit and every answer comes late. Here a
query first asks for a place (:meth:`AdmissionQueue.admit`, which never
blocks): at most ``max_queue + 1`` queries hold one at once, and the one
refused is told how long the line takes to drain (:class:`QueueFull`), which
the server sends as ``503`` with ``Retry-After``::

    queue = AdmissionQueue(max_queue=16)
    try:
        place = queue.admit()
    except QueueFull as full:
        ...  # 503, Retry-After: full.retry_after
    with place:  # gives the place back, served or not
        with place.turn(abandoned=client_gone):  # first in line (FIFO), the worker to itself
            hits = search(query)

Thread-safe: ``admit`` may be called from the event loop, ``turn`` blocks the
calling (worker) thread only.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SMOOTHING = 0.2  # weight of the newest service time in the running mean


class QueueFull(Exception):
    """No place is free: ``retry_after`` seconds (at least 1) is about how long the line takes to drain.

    Attributes:
        retry_after: Whole seconds to wait before retrying.
        held: Places held when the query was refused (``max_queue + 1``).
    """

    def __init__(self, retry_after: int, held: int) -> None:
        super().__init__(f'{held} queries are in line; retry in {retry_after} s')
        self.retry_after = retry_after
        self.held = held


class Abandoned(Exception):
    """The query's client went away while it waited: it was not served."""


class AdmissionQueue:
    """At most ``max_queue`` queries waiting for the worker plus the one it serves.

    Args:
        max_queue: Queries that may wait while one is served (0: none wait).
        smoothing: Weight of the newest service time in the running mean that
            ``retry_after`` is computed from.

    Raises:
        ValueError: ``max_queue`` is negative or ``smoothing`` not in (0, 1].
    """

    def __init__(self, max_queue: int, smoothing: float = SMOOTHING) -> None:
        if max_queue < 0:
            raise ValueError(f'max_queue must be 0 or more, got {max_queue}')
        if not 0 < smoothing <= 1:
            raise ValueError(f'smoothing must be in (0, 1], got {smoothing}')
        self.max_queue = max_queue
        self.smoothing = smoothing
        self._cond = threading.Condition()
        self._line: deque[Place] = deque()  # waiting for their turn, first served first
        self._held = 0  # places given and not given back (waiting, served, or past their turn)
        self._serving: Place | None = None
        self._service_s: float | None = None  # running mean of the time one turn takes
        self._peak_held = 0

    # ------------------------------------------------------------------ state
    @property
    def capacity(self) -> int:
        """Places that may be held at once: ``max_queue`` waiting and one served."""
        return self.max_queue + 1

    @property
    def held(self) -> int:
        """Places held now."""
        with self._cond:
            return self._held

    @property
    def waiting(self) -> int:
        """Queries waiting for their turn now."""
        with self._cond:
            return len(self._line)

    @property
    def peak_held(self) -> int:
        """The most places ever held at once (never above :attr:`capacity`)."""
        with self._cond:
            return self._peak_held

    @property
    def service_s(self) -> float | None:
        """The running mean of a turn's duration in seconds (None before the first turn)."""
        with self._cond:
            return self._service_s

    def retry_after(self) -> int:
        """Whole seconds for the places held now to be served (at least 1)."""
        with self._cond:
            return self._retry_after()

    def _retry_after(self) -> int:
        service = self._service_s or 0.0
        return max(1, math.ceil(service * self._held))

    # ---------------------------------------------------------------- places
    def admit(self) -> Place:
        """A place for one query; never blocks.

        Raises:
            QueueFull: All :attr:`capacity` places are held.
        """
        with self._cond:
            if self._held >= self.capacity:
                raise QueueFull(self._retry_after(), self._held)
            self._held += 1
            self._peak_held = max(self._peak_held, self._held)
            return Place(self)

    def _wait_turn(self, place: Place) -> None:
        with self._cond:
            self._line.append(place)
            try:
                while self._serving is not None or self._line[0] is not place:
                    self._cond.wait()
            except BaseException:
                self._line.remove(place)
                self._cond.notify_all()
                raise
            self._line.popleft()
            self._serving = place

    def _end_turn(self, place: Place, seconds: float | None) -> None:
        with self._cond:
            if self._serving is place:
                self._serving = None
            if seconds is not None:
                old = self._service_s
                self._service_s = seconds if old is None else old + self.smoothing * (seconds - old)
            self._cond.notify_all()

    def _give_back(self) -> None:
        with self._cond:
            self._held -= 1
            self._cond.notify_all()


class Place:
    """A query's place in an :class:`AdmissionQueue`, from :meth:`AdmissionQueue.admit`.

    A context manager: leaving the block gives the place back (once, however
    often :meth:`leave` is called).
    """

    def __init__(self, queue: AdmissionQueue) -> None:
        self._queue = queue
        self._held = True
        self._lock = threading.Lock()

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.leave()

    def leave(self) -> None:
        """Give the place back (idempotent)."""
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._queue._give_back()

    @contextmanager
    def turn(self, abandoned: Callable[[], bool] | None = None) -> Iterator[None]:
        """Wait until this place is first in line and the worker is free, then hold it for the block.

        Args:
            abandoned: Asked once when the turn comes; True (the client went
                away) gives the turn up at once, unserved.

        Raises:
            Abandoned: ``abandoned()`` was true; the block did not run.
            RuntimeError: The place was given back already.
        """
        if not self._held:
            raise RuntimeError('this place was given back: admit the query again')
        self._queue._wait_turn(self)
        try:
            if abandoned is not None and abandoned():
                raise Abandoned('the client went away while the query waited')
        except BaseException:
            self._queue._end_turn(self, None)
            raise
        start = time.perf_counter()
        try:
            yield
        finally:
            self._queue._end_turn(self, time.perf_counter() - start)

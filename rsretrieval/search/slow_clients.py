"""Deadlines for slow clients, which uvicorn's HTTP/1.1 protocol (h11) does not set.

uvicorn serves every connection from one event loop, so a slow client never
blocks another client's request; what it can do is hold a connection (a file
descriptor, its buffers, for an image the open file) for ever:

- uvicorn starts no timer before a request's headers are complete: a client that
  connects and sends nothing, or half a request line, keeps its connection open
  indefinitely (its keep-alive timeout, ``timeout_keep_alive``, only runs between
  a response and the next request);
- a client that stops reading a response leaves it waiting for the socket to
  drain, indefinitely (TCP keeps a connection whose peer advertises a zero window).

:func:`guarded_h11` makes an h11 protocol class with both deadlines: the
request's headers must arrive within ``request_timeout`` seconds of the first
byte awaited (the connection is closed otherwise), and a response that the
client stops reading is dropped after ``write_timeout`` seconds without
progress (its buffer above the high-water mark all that time). A client that
reads slowly but steadily is not cut off.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT_S = 10.0  # from a connection (or the end of keep-alive idling) to a complete request head
WRITE_TIMEOUT_S = 30.0  # a response the client does not read at all


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a stalled-write deadline."""

    request_timeout: float = REQUEST_TIMEOUT_S
    write_timeout: float = WRITE_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._request_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_timer = _cancel(self._request_timer)
        self._write_timer = _cancel(self._write_timer)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._drop_stalled)

    def resume_writing(self) -> None:
        self._write_timer = _cancel(self._write_timer)
        super().resume_writing()

    def _watch_request(self) -> None:
        # h11 stays IDLE until a request head is complete; the deadline runs from the first
        # byte awaited, so a client dripping a byte at a time does not move it
        awaiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not awaiting:
            self._request_timer = _cancel(self._request_timer)
        elif self._request_timer is None and self.timeout_keep_alive_task is None:
            self._request_timer = self.loop.call_later(self.request_timeout, self._drop_idle)

    def _drop_idle(self) -> None:
        self._request_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def _drop_stalled(self) -> None:
        self._write_timer = None
        self.transport.abort()  # close() would wait for the buffer to drain, which it never does


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    if timer is not None:
        timer.cancel()


def guarded_h11(
    request_timeout: float = REQUEST_TIMEOUT_S, write_timeout: float = WRITE_TIMEOUT_S
) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with these deadlines (uvicorn's ``http=`` takes a class).

    Args:
        request_timeout: Seconds for a request head to arrive, from the connection
            (or from the first byte after a keep-alive pause).
        write_timeout: Seconds a response may go unread before the connection is dropped.

    Raises:
        ValueError: A deadline is not positive.
    """
    if request_timeout <= 0 or write_timeout <= 0:
        raise ValueError(f'deadlines must be positive, got {request_timeout} and {write_timeout}')
    return type(
        'GuardedH11Protocol', (GuardedH11Protocol,), dict(request_timeout=request_timeout, write_timeout=write_timeout)
    )

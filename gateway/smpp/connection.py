"""The thin asyncio adapter around ``protocols.smpp.SmppSession`` (one TCP connection, either role).

It feeds received bytes to the engine, hands events to an owner callback, writes what the engine
queued once per event-loop iteration (so a burst of PDUs becomes one ``write``), and keeps one
timer armed at ``engine.get_timer()``. Both the ESME client and the SMSC simulator use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from gateway.timers import EngineTimer
from protocols.errors import RemoteProtocolError
from protocols.smpp.events import ConnectionClosed, Event
from protocols.smpp.session import SmppSession

__all__ = ["SessionProtocol"]

log = logging.getLogger(__name__)
_SLICE = 4096  # octets of input handled between two writes


class SessionProtocol(asyncio.Protocol):
    """asyncio transport <-> SMPP engine. ``on_event`` runs synchronously for each engine event."""

    def __init__(
        self,
        session: SmppSession,
        on_event: Callable[[SessionProtocol, Event], None],
        *,
        on_connection_lost: Callable[[SessionProtocol], None] | None = None,
    ) -> None:
        self.session = session
        self.on_event = on_event
        self.on_connection_lost = on_connection_lost
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.closed = asyncio.Event()
        self.peer: str = ""
        self._flush_pending = False
        self._timer = EngineTimer(self.loop, session.get_timer, self._on_timer)
        self._paused = False
        self._resume_waiters: list[asyncio.Future[None]] = []

    # --- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only compatible with them
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.session.connection_made(self.loop.time())
        self._timer.arm()

    def data_received(self, data: bytes) -> None:
        # A big read is handled in slices, writing the answers to each slice before reading the
        # next: the peer gets them sooner and refills its window while we work, so both sides
        # stay busy instead of taking turns.
        size = len(data)
        step = _SLICE if size > _SLICE else size
        now = self.loop.time()
        for start in range(0, size, step):
            try:
                self.session.receive_data(data[start : start + step] if step < size else data, now)
            except RemoteProtocolError as exc:
                log.warning("SMPP peer %s broke the protocol: %s; closing", self.peer, exc)
                self._drain_events()
                self.flush()
                self.close()
                return
            self._drain_events()
            self.flush()
            if not self.session.is_open:
                return

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        if self.session.is_open:
            self.session.receive_data(b"", self.loop.time())
            self._drain_events()
        else:
            self.on_event(self, ConnectionClosed())
        for waiter in self._resume_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._resume_waiters.clear()
        self.closed.set()
        if self.on_connection_lost is not None:
            self.on_connection_lost(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for waiter in self._resume_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._resume_waiters.clear()

    # --- engine plumbing -----------------------------------------------------------------------------

    def _drain_events(self) -> None:
        next_event = self.session.next_event
        on_event = self.on_event
        while (event := next_event()) is not None:
            on_event(self, event)

    def schedule_flush(self) -> None:
        """Write what the engine queued at the end of this loop iteration (one write per burst)."""
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        # events raised by our own sends (e.g. BindCompleted when the SMSC answers a bind)
        if self.session.has_events:
            self._drain_events()
            data = self.session.data_to_send()
            if data and self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)
        self._timer.arm()

    @property
    def writing_paused(self) -> bool:
        return self._paused

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._paused and self.transport is not None and not self.transport.is_closing():
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._resume_waiters.append(waiter)
            await waiter

    def _on_timer(self, now: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.session.handle_timer(now)
        self._drain_events()
        self.flush()

    def close(self) -> None:
        """Close after writing what the engine still queued (an unbind_resp, a generic_nack)."""
        if self.transport is not None and not self.transport.is_closing():
            data = self.session.data_to_send()
            if data:
                self.transport.write(data)
            self.transport.close()

"""One event-loop timer kept at a sans-I/O engine's ``get_timer()`` (DESIGN.md, engine shape).

The adapters of every engine need the same thing: after each call into the engine, make sure one
``loop.call_at`` is armed for the engine's next deadline, and when it fires hand the engine the
time. ``EngineTimer`` is that, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["EngineTimer"]


class EngineTimer:
    """Keeps one timer armed at ``get_timer()``; ``fire(now)`` runs when it is due."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        get_timer: Callable[[], float | None],
        fire: Callable[[float], None],
    ) -> None:
        self._loop = loop
        self._get_timer = get_timer
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def arm(self) -> None:
        """Call after every engine call: (re)arms for the engine's earliest deadline."""
        at = self._get_timer()
        if at is None:
            return
        if self._handle is not None:
            if self._at is not None and self._at <= at:
                return  # the armed timer fires first; it re-arms for what remains
            self._handle.cancel()
        self._at = at
        self._handle = self._loop.call_at(at, self._on_due)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = None

    def _on_due(self) -> None:
        at = self._at or 0.0
        self._handle = None
        self._at = None
        # call_at may run a hair early (clock resolution): the deadline itself is due
        self._fire(max(self._loop.time(), at))

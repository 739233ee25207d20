"""Usage ingestion (issue #6): the Diameter peer (Gx, Gy, Sy), DPI events over MQTT and HTTP, and
the pipeline that journals them durably and runs trigger detection.

Every adapter hands ``UsageEvent`` batches to an ``EventSink``; ``await sink.take(events)`` returns
once the events are durably taken (journaled), which is when an adapter may acknowledge them on
its wire (CCA / SNA, MQTT PUBACK, HTTP 2xx).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from campaign_core.usage import UsageEvent

__all__ = ["EventSink"]


class EventSink(Protocol):
    """Where ingest adapters put usage events."""

    async def take(self, events: Sequence[UsageEvent]) -> None:
        """Return once ``events`` are durably taken; raise ``TransportError`` when they could not be."""
        ...

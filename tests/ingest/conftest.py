"""Fixtures for the DPI ingest tests: a real Mosquitto broker, and the ingest pipeline over a real
SQLite journal in ``tmp_path`` with the real trigger detector, recording the triggers it raises.

Nothing here is autouse: the Diameter tests in this directory are untouched by it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mosquitto import Mosquitto

from campaign_core.triggers import TriggerDetector
from campaign_core.usage import Trigger, UsageEvent, UsageKind
from gateway.ingest.journal import IngestJournal
from gateway.ingest.pipeline import IngestPipeline

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z


class FakeClock:
    """A settable clock: ``clock()`` reads it, ``clock.now = ...`` / ``clock.advance(s)`` move it."""

    def __init__(self, now: float = T0 + 1.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class PipelineRig:
    """A pipeline over a real journal file, and the triggers it handed over."""

    path: Path
    clock: FakeClock
    journal: IngestJournal
    pipeline: IngestPipeline
    triggers: list[Trigger] = field(default_factory=list)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_rig(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """``await make_rig(**pipeline_kwargs)``: a pipeline on ``tmp_path/ingest.sqlite`` (the same file
    every call, so a second rig is the gateway restarted); the caller closes or abandons it."""

    async def make(**kwargs: Any) -> PipelineRig:
        path = tmp_path / "ingest.sqlite"
        journal = IngestJournal(path, clock=clock)
        await journal.open()
        triggers: list[Trigger] = []
        pipeline = IngestPipeline(
            journal, TriggerDetector(thresholds=(90,)), triggers.append, clock=clock, **kwargs
        )
        return PipelineRig(path, clock, journal, pipeline, triggers)

    yield make


@pytest.fixture
async def rig(make_rig: Callable[..., Any]) -> AsyncIterator[PipelineRig]:
    """One pipeline (default settings) with its journal, closed after the test."""
    made: PipelineRig = await make_rig()
    yield made
    await made.pipeline.close(timeout=5)
    await made.journal.close()


@pytest.fixture
def mosquitto(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Mosquitto]:
    """A real Mosquitto broker on a free loopback port (fails, never skips, when not installed)."""
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    broker = Mosquitto(directory, free_port())
    broker.start()
    yield broker
    broker.stop()


def dpi_event(
    event_id: str,
    *,
    msisdn: str = "46701234567",
    kind: str = "usage",
    package_id: str = "pkg-5GB",
    timestamp: float | str = T0,
    **extra: Any,
) -> dict[str, Any]:
    """A DPI JSON event as a dict (``extra``: sequence, used_bytes, quota_bytes, percent, period...)."""
    return {
        "event_id": event_id,
        "msisdn": msisdn,
        "kind": kind,
        "package_id": package_id,
        "timestamp": timestamp,
        **extra,
    }


def dpi_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def usage_event(
    event_id: str,
    *,
    msisdn: str = "46701234567",
    kind: UsageKind = UsageKind.USAGE,
    package_id: str = "pkg-5GB",
    event_time: float = T0,
    source: str = "test",
    **extra: Any,
) -> UsageEvent:
    return UsageEvent(event_id, msisdn, kind, package_id, event_time, source, **extra)


@pytest.fixture
def make_dpi() -> Callable[..., dict[str, Any]]:
    """The ``dpi_event`` factory."""
    return dpi_event


@pytest.fixture
def make_usage() -> Callable[..., UsageEvent]:
    """The ``usage_event`` factory."""
    return usage_event

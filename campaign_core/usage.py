"""Usage notifications and the triggers they raise: the typed facts every ingest path produces.

The network reports usage in several dialects (Diameter Gy/Ro CCR with Reporting-Reason of
3GPP TS 32.299 section 7.2.175, Gx Usage-Monitoring-Report of TS 29.212 section 4.5.17, Sy
Policy-Counter-Status-Report of TS 29.219 section 4.5.3, DPI JSON events). Each ingest adapter turns
its dialect into ``UsageEvent``; the trigger detector (``campaign_core.triggers``) turns those into
``Trigger`` once per subscriber, package and package period.

Times are floats (seconds since the epoch) carried from the event itself, so the trigger-to-send
latency is measured from the moment the network saw the usage, not from when we did.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Trigger", "TriggerKind", "UsageEvent", "UsageKind"]


class UsageKind(StrEnum):
    """What a usage notification says about a subscriber's package."""

    USAGE = "usage"
    """Plain metering (interim report): no threshold crossed by itself; percent may say one was."""
    THRESHOLD = "threshold"
    """A quota threshold was reached (``percent`` says which, e.g. 90)."""
    EXHAUSTED = "exhausted"
    """The package's quota is used up."""
    PAYG_STARTED = "payg_started"
    """The subscriber was switched to pay-as-you-go (the package is exhausted)."""
    RENEWED = "renewed"
    """The package was renewed or bought again: a new package period starts."""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One usage notification from the network, whatever the path it came by.

    ``event_id`` is unique per notification at its source (a DPI event id; for Diameter the
    Session-Id with the CC-Request-Number and report index), so a re-delivery is recognised.
    ``sequence`` orders the notifications of one subscriber and package when the source numbers
    them (CC-Request-Number, a DPI sequence); ``event_time`` orders them otherwise.
    ``period`` names the package period when the source knows it (a renewal date, a bundle
    instance id); None means "the current one".
    """

    event_id: str
    msisdn: str
    kind: UsageKind
    package_id: str
    event_time: float
    source: str
    sequence: int | None = None
    used_bytes: int | None = None
    quota_bytes: int | None = None
    percent: float | None = None
    period: str | None = None


class TriggerKind(StrEnum):
    """The campaign triggers usage can raise."""

    THRESHOLD = "threshold"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class Trigger:
    """A campaign trigger: raised at most once per subscriber, package, period and kind/level.

    ``level`` is the threshold percentage for THRESHOLD (90) and 100 for EXHAUSTED.
    ``event_time`` is the usage event's own time; ``detected_at`` the ``now`` the detector was
    given, so ``detected_at - event_time`` is the network-to-trigger latency.
    """

    kind: TriggerKind
    msisdn: str
    package_id: str
    period: str | None
    level: int
    event_id: str
    event_time: float
    detected_at: float
    source: str

"""Trigger detection: usage events in, campaign triggers out, once per subscriber, package and period.

The reports come from 3GPP TS 32.299 section 7.2.175 (Gy Reporting-Reason THRESHOLD / QUOTA_EXHAUSTED),
TS 29.212 section 4.5.17 (Gx usage monitoring), TS 29.219 section 4.5.3 (Sy policy counter status) and
DPI JSON, all already turned into ``UsageEvent`` by the ingest adapters. Pure and deterministic: no
clock, no I/O; ``now`` is passed in and only stamped on the triggers (``detected_at``), so replaying an
event log gives the same triggers.

State, per (msisdn, package_id)
    the current package period: its name (None while no event named it), its *start* (the event_time
    at which it was first seen) and whether that start is a known boundary; the named period before
    it; the highest level already triggered in the period (0 none, a threshold percentage, 100
    exhausted) and the event_time of the event that raised it. 96 bytes of slots per package.

Rules
    * THRESHOLD events (``percent`` p), and USAGE events whose percent is known (``percent``, else
      ``used_bytes * 100 / quota_bytes``), trigger THRESHOLD at the highest configured level <= p when
      that level is above the level already triggered. Crossing 90 and 95 at once gives one trigger at
      95, and 90 is then done too. A THRESHOLD or USAGE event never triggers EXHAUSTED, even at 100 %:
      exhaustion is the network's decision (Final-Unit-Indication, pay-as-you-go). A THRESHOLD event
      without a percentage says nothing we can place, so it triggers nothing.
    * EXHAUSTED and PAYG_STARTED trigger EXHAUSTED (level 100) once per period, and every threshold is
      then done: a late 90 % after exhaustion never triggers.
    * RENEWED starts a new period: its ``period``, or when None an unnamed period labelled
      ``f"t{event_time!r}"`` after the event's own time. Deriving it from the event (not from a
      counter) makes a re-delivered or replayed RENEWED land on the same period, so it changes nothing.
      A RENEWED itself triggers nothing.
    * Levels only go up within a period, so a duplicate (same event_id, or same sequence) or a
      reordered event (lower sequence, older event_time) can never trigger twice, nor trigger a level
      at or below one already triggered. That is the whole deduplication: no set of seen event ids, so
      the memory per tracked package is fixed. Hence sequences are not compared (they number one
      source's reports, CC-Request-Number restarts with each Diameter session, and a renewal often
      comes from another source): a late event carrying a level above the one triggered is news and
      triggers it.

Periods
    Periods are compared by the event_time at which each was first seen (names are opaque: "2",
    "2024-06", a bundle instance id). Only the current period and the named one before it are kept.

    * An event naming the current period applies to it, whatever its time.
    * An event naming the previous period, or naming another period with an event_time before the
      current start, is a straggler of a finished period: ignored (a finished period never reopens).
    * An event naming another period, at or after the current start, starts that period.
    * An event with ``period`` None belongs to the current period, unless its event_time is before a
      start that is a known boundary (set by a RENEWED, or by a switch from a period we saw): then it
      is a straggler from before the renewal, ignored. The start of a period first seen through a
      report (not a RENEWED) is only an upper bound of the real one, so it drops nothing.
    * A RENEWED with ``period`` None starts a new period when its event_time is after the current start;
      at or before it, it is a duplicate or an older renewal: ignored. A RENEWED naming the current
      period moves its start back to the renewal's time (and makes it a known boundary).
    * A period without a name (first seen through events without a period, or started by a RENEWED
      without one) takes the name of the first event that names a period, rather than starting a new
      period: sources that name periods and sources that do not can report the same package. A
      RENEWED naming a period at exactly an unnamed renewal's time names it too (the same renewal).
    * When a new period starts at time T, levels reset, except that a level raised by an event at or
      after T stays: that event (a report that overtook the renewal) already belonged to the new period,
      and its trigger was already raised. The implicit first period starts at -inf.

    Events with ``period`` None that say nothing (a USAGE below every threshold) create no state:
    ``len()`` counts only the packages with something to remember.

Trigger fields: ``event_id``, ``event_time`` and ``source`` of the event that raised it,
``detected_at`` = ``now``, ``level``, and ``period``: the period's name, ``f"t{start!r}"`` for an
unnamed period a RENEWED started, None for the implicit first period.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from campaign_core.usage import Trigger, TriggerKind, UsageEvent, UsageKind
from protocols.errors import ConfigError

__all__ = ["EXHAUSTED_LEVEL", "SNAPSHOT_VERSION", "TriggerDetector"]

EXHAUSTED_LEVEL = 100
"""The ``level`` of an EXHAUSTED trigger; also the level that marks every threshold done."""

SNAPSHOT_VERSION = 1

_NEVER = -math.inf  # start of the implicit first period: before any event
_USAGE = UsageKind.USAGE
_THRESHOLD = UsageKind.THRESHOLD
_RENEWED = UsageKind.RENEWED
_EXHAUSTED = TriggerKind.EXHAUSTED
_THRESHOLD_TRIGGER = TriggerKind.THRESHOLD

# Trigger is a frozen slots dataclass: its __init__ goes through object.__setattr__ once per field
# (1.5-1.9 us a trigger). The slots' own setters do the same in 0.7 us, which matters with a trigger
# every other event. Every field must be set: tests/campaign/test_triggers.py compares the result
# with Trigger(...) field by field, and the import fails if the fields change.
_new_trigger = object.__new__
_TRIGGER_FIELDS = (
    "kind", "msisdn", "package_id", "period", "level", "event_id", "event_time", "detected_at", "source"
)  # fmt: skip
if set(_TRIGGER_FIELDS) != {field.name for field in dataclasses.fields(Trigger)}:
    raise ImportError("campaign_core.triggers: Trigger's fields changed; update its setters")
(
    _set_kind,
    _set_msisdn,
    _set_package_id,
    _set_period,
    _set_level,
    _set_event_id,
    _set_event_time,
    _set_detected_at,
    _set_source,
) = (getattr(Trigger, name).__set__ for name in _TRIGGER_FIELDS)


class _Package:
    """The state of one subscriber's package; ``next`` chains a subscriber's other packages.

    Slots instead of a dataclass keep it at 96 bytes: this exists once per tracked package (1M+).
    """

    __slots__ = ("bounded", "level", "next", "package_id", "period", "previous", "raised_at", "start")

    def __init__(
        self, package_id: str, period: str | None, start: float, bounded: bool, next_: _Package | None
    ) -> None:
        self.package_id = package_id
        self.period = period
        self.previous: str | None = None
        self.start = start
        self.bounded = bounded
        self.level = 0
        self.raised_at: float | None = None
        self.next = next_

    def label(self) -> str | None:
        if self.period is not None:
            return self.period
        return None if self.start == _NEVER else f"t{self.start!r}"

    def begin(self, period: str | None, start: float) -> None:
        """A new period starting at ``start``; keeps a level raised at or after it (see module doc)."""
        if self.period is not None:
            self.previous = self.period
        self.period = period
        self.start = start
        self.bounded = True
        raised_at = self.raised_at
        if raised_at is None or raised_at < start:
            self.level = 0
            self.raised_at = None


def _intern(name: str | None) -> str | None:
    # Period and package names repeat across subscribers ("2", "pkg-5GB"): one copy each.
    return None if name is None else sys.intern(name)


def _renew(package: _Package, period: str | None, time: float) -> None:
    """A RENEWED event for an already tracked package (rules of the module docstring)."""
    if period is None:
        if time > package.start:
            package.begin(None, time)
        return
    if period == package.period:
        # the renewal that began a period we may first have seen through later reports
        package.start = min(package.start, time)
        package.bounded = True
        return
    if period == package.previous or time < package.start:
        return  # a finished period
    if package.period is None and time == package.start:
        package.period = sys.intern(period)  # the unnamed renewal at this instant, now named
        return
    package.begin(sys.intern(period), time)


class TriggerDetector:
    """Turns ``UsageEvent`` into ``Trigger`` per the rules of the module docstring."""

    __slots__ = ("_count", "_descending", "_packages", "thresholds")

    def __init__(self, thresholds: Sequence[int] = (90,)) -> None:
        for level in thresholds:
            if isinstance(level, bool) or not isinstance(level, int) or not 0 < level < EXHAUSTED_LEVEL:
                raise ConfigError(f"trigger threshold {level!r} is not a whole percentage in 1..99")
        self.thresholds: tuple[int, ...] = tuple(sorted(set(thresholds)))
        self._descending = self.thresholds[::-1]
        self._packages: dict[str, _Package] = {}
        self._count = 0

    def __len__(self) -> int:
        """Tracked (msisdn, package_id) pairs."""
        return self._count

    def forget(self, msisdn: str) -> None:
        """Drop every package of ``msisdn`` (the subscriber left, or asked to be forgotten)."""
        package = self._packages.pop(msisdn, None)
        while package is not None:
            self._count -= 1
            package = package.next

    def handle(self, event: UsageEvent, now: float) -> list[Trigger]:
        """The triggers ``event`` raises (none, or one); ``now`` only becomes ``detected_at``."""
        kind = event.kind
        if kind is _USAGE or kind is _THRESHOLD:
            percent = event.percent
            if percent is None:
                if kind is _THRESHOLD:
                    return []
                quota = event.quota_bytes
                used = event.used_bytes
                if quota is None or used is None or quota <= 0:
                    return []
                percent = used * 100 / quota
            for level in self._descending:
                if level <= percent:
                    break
            else:
                if event.period is None:
                    return []  # below every threshold, no period to learn: changes nothing (fast path)
                level = 0  # nothing to trigger, but the period name may be news
        else:
            level = EXHAUSTED_LEVEL  # (unused for RENEWED)
        msisdn = event.msisdn
        first = self._packages.get(msisdn)
        package = first
        package_id = event.package_id
        while package is not None and package.package_id != package_id:
            package = package.next
        period = event.period
        if package is None:
            if kind is _RENEWED or period is not None:
                # a RENEWED's time is a known boundary; a report's is only an upper bound of the start
                start, bounded = float(event.event_time), kind is _RENEWED
            elif level:
                start, bounded = _NEVER, False
            else:
                return []  # nothing to remember
            package = _Package(sys.intern(package_id), _intern(period), start, bounded, first)
            self._packages[msisdn] = package
            self._count += 1
            if kind is _RENEWED:
                return []
        elif kind is _RENEWED:
            _renew(package, period, float(event.event_time))
            return []
        elif period is None:
            if package.bounded and event.event_time < package.start:
                return []  # from before the renewal that started the current period
        elif period != package.period:
            time = float(event.event_time)
            if period == package.previous or time < package.start:
                return []  # a finished period
            if package.period is None:
                package.period = sys.intern(period)  # the current period, named at last
                if package.start == _NEVER:
                    package.start = time
            else:
                package.begin(sys.intern(period), time)
        if level <= package.level:
            return []
        package.level = level
        package.raised_at = float(event.event_time)
        trigger = _new_trigger(Trigger)
        _set_kind(trigger, _EXHAUSTED if level == EXHAUSTED_LEVEL else _THRESHOLD_TRIGGER)
        _set_msisdn(trigger, msisdn)
        _set_package_id(trigger, package_id)
        _set_period(trigger, package.label())
        _set_level(trigger, level)
        _set_event_id(trigger, event.event_id)
        _set_event_time(trigger, event.event_time)
        _set_detected_at(trigger, now)
        _set_source(trigger, event.source)
        return [trigger]

    # --- checkpoint -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (``json.dumps`` it; no infinities, no pickle).

        ``packages`` rows: [msisdn, package_id, period, previous, start, bounded, level, raised_at],
        ``start`` None for the implicit first period. A restored detector snapshots identically.
        """
        rows: list[list[Any]] = []
        for msisdn, first in self._packages.items():
            chain: list[_Package] = []
            package: _Package | None = first
            while package is not None:
                chain.append(package)
                package = package.next
            for package in reversed(chain):  # oldest first: restore rebuilds the same chain
                rows.append(
                    [
                        msisdn,
                        package.package_id,
                        package.period,
                        package.previous,
                        None if package.start == _NEVER else package.start,
                        package.bounded,
                        package.level,
                        package.raised_at,
                    ]
                )
        return {"version": SNAPSHOT_VERSION, "thresholds": list(self.thresholds), "packages": rows}

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the state with one ``snapshot()`` returned (possibly through JSON).

        The thresholds stay this detector's own: a snapshot taken with other thresholds still
        restores, and the levels it recorded keep meaning "done up to here". Raises ``ConfigError``
        saying what is wrong, and then leaves the state unchanged.
        """
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            raise ConfigError(f"trigger snapshot: not a version {SNAPSHOT_VERSION} snapshot")
        rows = snapshot.get("packages")
        if not isinstance(rows, list):
            raise ConfigError("trigger snapshot: packages is not a list")
        packages: dict[str, _Package] = {}
        for index, row in enumerate(rows):
            msisdn, package = _from_row(index, row)
            first = packages.get(msisdn)
            seen = first
            while seen is not None:
                if seen.package_id == package.package_id:
                    raise ConfigError(f"trigger snapshot: row {index} repeats {msisdn} {package.package_id}")
                seen = seen.next
            package.next = first
            packages[msisdn] = package
        self._packages = packages
        self._count = len(rows)

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> TriggerDetector:
        """A detector with the snapshot's thresholds and state."""
        thresholds = snapshot.get("thresholds") if isinstance(snapshot, Mapping) else None
        if not isinstance(thresholds, list):
            raise ConfigError("trigger snapshot: thresholds is not a list")
        detector = cls(thresholds)
        detector.restore(snapshot)
        return detector


def _from_row(index: int, row: object) -> tuple[str, _Package]:
    if not isinstance(row, list) or len(row) != 8:
        raise ConfigError(f"trigger snapshot: row {index} is not a list of 8 fields")
    msisdn, package_id, period, previous, start, bounded, level, raised_at = row
    if not isinstance(msisdn, str) or not isinstance(package_id, str):
        raise ConfigError(f"trigger snapshot: row {index}: msisdn and package_id must be strings")
    if not all(name is None or isinstance(name, str) for name in (period, previous)):
        raise ConfigError(f"trigger snapshot: row {index}: period names must be strings or null")
    if not (_is_time(start) and _is_time(raised_at) and isinstance(bounded, bool)):
        raise ConfigError(f"trigger snapshot: row {index}: bad start, bounded or raised_at")
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= EXHAUSTED_LEVEL:
        raise ConfigError(f"trigger snapshot: row {index}: level must be 0..{EXHAUSTED_LEVEL}")
    if (level == 0) != (raised_at is None):
        raise ConfigError(f"trigger snapshot: row {index}: raised_at must be given exactly when level > 0")
    package = _Package(
        sys.intern(package_id), _intern(period), _NEVER if start is None else float(start), bounded, None
    )
    package.previous = _intern(previous)
    package.level = level
    package.raised_at = None if raised_at is None else float(raised_at)
    return msisdn, package


def _is_time(value: object) -> bool:
    """None or a finite number (JSON has no infinities)."""
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""Contact policy (issue #7): may we contact this subscriber now, on this channel, for this purpose?

One versioned object built from the ``policy`` file (``campaign_core.config.PolicyConfig``): caps per
channel and purpose per period, quiet hours in the subscriber's time zone (defer or drop), the
do-not-disturb list, and separate budgets for the contacts the subscriber started and the pushes we
start. ``check`` answers ``Allowed``, ``Deferred`` or ``Suppressed`` (with the reason and the rule, for
the decision trail); the engine records ``version`` with every decision and calls ``record`` for each
contact it makes. Pure: ``now`` (epoch seconds) and the zone are passed in; local times come from
``zoneinfo`` converting the given ``now``, never from a clock.

Purposes
    ``promotional`` (pushes we start: offers, reminders), ``subscriber_initiated`` (answers in a session
    the subscriber started: a USSD reply, the confirmation of an activation they dialled) and
    ``transactional`` (the receipt of what they bought). Any other purpose is a ``ValueError``.

Rules, in this order
    1. Do not disturb (the file's list, plus ``add_do_not_disturb`` / ``remove_do_not_disturb`` at run
       time, e.g. a STOP reply): promotional -> ``Suppressed("do not disturb", "do_not_disturb")``; the
       other purposes pass.
    2. Quiet hours, promotional only: local time (``timezone``, else ``default_timezone``; a name
       zoneinfo does not know also means the default zone) in ``[start, end)``, spanning midnight when
       start > end, taken to the second. Action ``defer`` -> ``Deferred(until, "quiet hours")`` with
       ``until`` the epoch second of the next local ``end`` that is out of quiet hours. On a DST-change
       day ``end`` is when the local clock shows it: the first pass when the clock goes back over it
       (an instant in the second pass waits for the second), and the instant of the jump when the
       clock goes forward past it. A check at ``until`` is out of quiet hours. (A clock going back out
       of quiet hours and into them again, e.g. 03:00 -> 02:00 with quiet hours 02:30-04:00, still
       defers to the end.) Action ``drop`` -> ``Suppressed("quiet hours", "quiet_hours")``. A deferred
       contact is checked again at ``until``, so caps are judged in the period it really goes out in.
    3. Caps: a ``CapRule`` counts the contacts of its ``purpose`` on its ``channel`` (None: every
       channel) in the calendar ``hour`` / ``day`` / ISO ``week`` (from Monday 00:00) of the
       subscriber's local zone. When one more contact would exceed ``max``: ``Suppressed("cap: 2
       promotional sms per day", "caps[0]")``, naming the first such rule in file order. Purposes are
       separate budgets: a rule counts only its own purpose, so promotional pushes never use up the
       subscriber_initiated budget, nor the reverse; a purpose without rules is never capped.
    Periods follow the local clock across DST changes: the day is 23 or 25 hours long on those days,
    and a repeated hour (02:00-03:00 when the clock goes back) is two hours, each with its own count.
    (Where the clock goes back at a quarter to the hour, Pacific/Chatham 03:45 -> 02:45, the 45 and 15
    minutes on either side of the change share one count: one real hour.)

State
    ``check`` decides without changing anything (it only memoises, per zone name, the local periods
    and quiet-hours state of the current local hour: one entry per name seen, unknown names included).
    ``record`` counts a contact made. Per subscriber the policy keeps one tuple: the start (epoch
    second, local period start) of the latest hour / day / week it counted in (only the period kinds
    some rule uses), then one count per distinct (channel, purpose, period) of the rules. The period
    starts are the int objects of the zone memo, shared by every subscriber of the zone, and counts are
    small ints, so a subscriber costs the dict entry plus ``40 + 8 * (periods + counters)`` bytes.
    Contacts of a purpose and channel no rule counts are not stored: a subscriber with nothing to
    remember takes no memory. Counting into the latest period is conservative when ``now`` goes back or
    the subscriber's zone changes: a contact or check at or before the latest counted period uses that
    period's count, so nothing is ever under-counted. ``prune(now)`` drops subscribers whose every
    period is over (changing no later decision); ``forget`` drops one.

Measured (CPython 3.11, x86-64, a script outside the test suite; tests never time anything): 100,000
subscribers with 2 promotional SMS each under caps ``sms/promotional/day``, ``*/promotional/week`` and
``*/subscriber_initiated/day`` (2 period kinds, 3 counters): 120 B per subscriber by tracemalloc (dict
entry and tuple; msisdn strings allocated by the caller not counted), 181 B when the policy is what keeps
fresh msisdn strings alive. ``check`` of a promotional SMS against quiet hours and those caps, zone memo
current: 0.6-0.7 us (0.2 us for a purpose no rule concerns); ``record``: 1.0 us. A memo miss (the first
call in a zone each local hour) costs about 10 us, about 40 us in quiet hours (it finds the end).

Snapshot (``snapshot`` / ``restore``, JSON-able, version 1): the counters and period kinds by name, a row
``[msisdn, [period starts], [counts]]`` per subscriber, and the run-time do-not-disturb changes
relative to the file's list. Restoring under another policy version maps counters and periods by name
(a counter new in the policy starts at 0) and applies the run-time changes over the new file's list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaign_core.config import PolicyConfig
from campaign_core.model import Channel
from protocols.errors import ConfigError

__all__ = [
    "ALLOWED",
    "PURPOSES",
    "SNAPSHOT_VERSION",
    "Allowed",
    "ContactPlan",
    "ContactPolicy",
    "Deferred",
    "Suppressed",
    "Verdict",
]

SNAPSHOT_VERSION = 1
PURPOSES: Final = ("promotional", "subscriber_initiated", "transactional")


@dataclass(frozen=True, slots=True)
class Allowed:
    """Go ahead (and ``record`` the contact once made)."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """Quiet hours with action ``defer``: check again at ``until`` (epoch seconds)."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Not now, not later: ``reason`` for the trail, ``rule`` names the policy rule (``caps[0]``)."""

    reason: str
    rule: str


Verdict = Allowed | Deferred | Suppressed

ALLOWED: Final = Allowed()
_DO_NOT_DISTURB: Final = Suppressed("do not disturb", "do_not_disturb")
_QUIET_DROP: Final = Suppressed("quiet hours", "quiet_hours")
_QUIET_REASON: Final = "quiet hours"

_PERIODS: Final = ("hour", "day", "week")
_LENGTH: Final = {"hour": 3600, "day": 86400, "week": 7 * 86400}
_SLACK: Final = 86400  # prune: a local period lasts at most its length + a DST shift; a day is plenty
_HOUR: Final = 3600


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _midnight(day: date, zone: ZoneInfo) -> int:
    """Epoch second of local 00:00 of ``day`` (the first one; the instant the clock jumps if none)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


class _Calendar:
    """One zone's local periods around the last instant asked about; every field holds in ``[lo, hi)``.

    ``keys`` are the starts of the current hour / day / week (those the rules use), ``quiet`` whether
    the local time is in quiet hours and ``deferred`` the verdict that says until when.
    """

    __slots__ = ("deferred", "hi", "keys", "lo", "periods", "quiet", "quiet_hours", "zone")

    def __init__(
        self,
        zone: ZoneInfo,
        periods: tuple[str, ...],
        quiet_hours: tuple[int, int, time_of_day, bool] | None,
    ) -> None:
        self.zone = zone
        self.periods = periods
        self.quiet_hours = quiet_hours  # (start second of day, end second of day, end, defer)
        self.lo = 1.0
        self.hi = 0.0  # empty: the first call refreshes
        self.keys: tuple[int, ...] = ()
        self.quiet = False
        self.deferred: Deferred | None = None

    def refresh(self, now: float) -> None:
        zone = self.zone
        # Every local period starts on a whole second (zone offsets are whole seconds), so ``now`` is
        # in the same periods as its whole second.
        second = math.floor(now)
        local = datetime.fromtimestamp(second, zone)
        offset = local.utcoffset()
        into_hour = local.minute * 60 + local.second
        hour_start = second - into_hour
        lo, hi = hour_start, hour_start + _HOUR
        if (
            datetime.fromtimestamp(lo, zone).utcoffset() != offset
            or datetime.fromtimestamp(hi - 1, zone).utcoffset() != offset
        ):
            lo, hi = second, second + 1  # the offset changes within this local hour: hold one second
        day = local.date()
        keys: list[int] = []
        for period in self.periods:
            if period == "hour":
                keys.append(hour_start)
            elif period == "day":
                keys.append(_midnight(day, zone))
            else:
                keys.append(_midnight(day - timedelta(days=day.weekday()), zone))
        quiet = False
        deferred = None
        if self.quiet_hours is not None:
            start, end, end_time, defer = self.quiet_hours
            wall = local.hour * _HOUR + into_hour
            quiet = _in_window(wall, start, end)
            hour_wall = local.hour * _HOUR
            for boundary in (start, end):
                if hour_wall < boundary < hour_wall + _HOUR:  # quiet hours begin or end within this hour
                    if boundary <= wall:
                        lo = max(lo, second - (wall - boundary))
                    else:
                        hi = min(hi, second + (boundary - wall))
            if quiet and defer:
                deferred = Deferred(float(self._next_end(second, day, end_time)), _QUIET_REASON)
        self.keys = tuple(keys)
        self.quiet = quiet
        self.deferred = deferred
        self.lo = lo
        self.hi = hi

    def _quiet_at(self, second: int) -> bool:
        assert self.quiet_hours is not None
        local = datetime.fromtimestamp(second, self.zone)
        start, end = self.quiet_hours[:2]
        return _in_window(local.hour * _HOUR + local.minute * 60 + local.second, start, end)

    def _next_end(self, second: int, day: date, end_time: time_of_day) -> int:
        """The next local ``end`` after ``second`` (in quiet hours) that is out of quiet hours.

        Each day's ``end`` is the instant the clock shows it: twice when the clock goes back over it (an
        instant between the two passes waits for the second), and the instant of the jump when the clock
        goes forward past it. A later day's ``end`` is out of quiet hours, so two days ahead suffice.
        """
        zone = self.zone
        candidates: list[int] = []
        for days in (0, 1, 2):
            local_end = datetime.combine(day + timedelta(days=days), end_time, tzinfo=zone)
            first, last = (int(local_end.replace(fold=fold).timestamp()) for fold in (0, 1))
            if datetime.fromtimestamp(first, zone).time() == end_time:
                candidates += (first, last)
            else:  # skipped: fold 1 reads it with the offset after the jump, fold 0 with the one before
                candidates.append(self._jump(min(first, last), max(first, last)))
        return min(c for c in candidates if c > second and not self._quiet_at(c))

    def _jump(self, before: int, after: int) -> int:
        """The first second with ``after``'s UTC offset (``before`` has another): the clock's jump."""
        zone = self.zone
        offset = datetime.fromtimestamp(after, zone).utcoffset()
        while after - before > 1:
            middle = (before + after) // 2
            if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
                after = middle
            else:
                before = middle
        return after


def _in_window(wall: int, start: int, end: int) -> bool:
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


class ContactPlan:
    """What ``check`` and ``record`` do for one (channel, purpose): ``ContactPolicy.contact_plan``, for
    ``check_planned`` / ``record_planned`` (the engine resolves one per journey step, once)."""

    __slots__ = ("caps", "counts", "first", "first_zero", "promotional", "uses_calendar")

    def __init__(
        self,
        promotional: bool,
        quiet: bool,
        caps: tuple[tuple[int, int, int, Suppressed], ...],
        counts: tuple[int, ...],
        first: tuple[int, ...],
    ) -> None:
        self.promotional = promotional
        self.caps = caps  # (state position of the count, position of its period start, max, verdict)
        self.counts = counts  # state positions ``record`` adds one to
        self.first = first  # the counts of a subscriber's first recorded contact (after the period starts)
        self.first_zero = next((verdict for _, _, limit, verdict in caps if limit <= 0), None)
        self.uses_calendar = (promotional and quiet) or bool(caps)


def _counter_name(channel: Channel | None, purpose: str, per: str) -> str:
    return f"{'*' if channel is None else channel.value}/{purpose}/{per}"


class ContactPolicy:
    """The contact policy of one ``PolicyConfig`` (rules of the module docstring)."""

    __slots__ = (
        "_added",
        "_base_dnd",
        "_calendars",
        "_config",
        "_counter_period",
        "_counters",
        "_dnd",
        "_period_counters",
        "_periods",
        "_plans",
        "_quiet",
        "_removed",
        "_state",
        "_version",
    )

    def __init__(self, config: PolicyConfig) -> None:
        self._config = config
        self._version = config.version
        periods = tuple(p for p in _PERIODS if any(rule.per == p for rule in config.caps))
        counters: list[str] = []
        for rule in config.caps:
            name = _counter_name(rule.channel, rule.purpose, rule.per)
            if name not in counters:
                counters.append(name)
        self._periods = periods
        self._counters = tuple(counters)
        # the state tuple: period starts (one per period kind used), then counts (one per counter)
        self._counter_period = tuple(periods.index(name.rsplit("/", 1)[1]) for name in counters)
        self._period_counters = tuple(
            tuple(len(periods) + j for j, p in enumerate(self._counter_period) if p == i)
            for i in range(len(periods))
        )
        quiet = config.quiet_hours
        quiet_hours = None
        if quiet is not None:
            end_time = quiet.end.replace(microsecond=0, tzinfo=None)
            quiet_hours = (
                quiet.start.hour * _HOUR + quiet.start.minute * 60 + quiet.start.second,
                end_time.hour * _HOUR + end_time.minute * 60 + end_time.second,
                end_time,
                quiet.action == "defer",
            )
        self._quiet = quiet_hours is not None
        default = ZoneInfo(config.default_timezone)
        default_calendar = _Calendar(default, periods, quiet_hours)
        self._calendars: dict[str | None, _Calendar] = {
            None: default_calendar,
            config.default_timezone: default_calendar,
        }
        self._plans: dict[tuple[str, str], ContactPlan] = {}
        for channel in Channel:
            for purpose in PURPOSES:
                caps: list[tuple[int, int, int, Suppressed]] = []
                counts: list[int] = []
                for index, rule in enumerate(config.caps):
                    if rule.purpose != purpose or rule.channel not in (None, channel):
                        continue
                    counter = len(periods) + counters.index(_counter_name(rule.channel, purpose, rule.per))
                    what = "contacts" if rule.channel is None else rule.channel.value
                    verdict = Suppressed(f"cap: {rule.max} {purpose} {what} per {rule.per}", f"caps[{index}]")
                    caps.append((counter, periods.index(rule.per), rule.max, verdict))
                    if counter not in counts:
                        counts.append(counter)
                first = tuple(int(len(periods) + j in counts) for j in range(len(counters)))
                self._plans[channel, purpose] = ContactPlan(
                    purpose == "promotional", self._quiet, tuple(caps), tuple(counts), first
                )
        self._state: dict[str, tuple[int, ...]] = {}
        self._base_dnd = frozenset(config.do_not_disturb)
        self._dnd = set(self._base_dnd)
        self._added: set[str] = set()
        self._removed: set[str] = set()

    @property
    def version(self) -> int:
        """The policy file's ``version``: record it with every decision."""
        return self._version

    @property
    def config(self) -> PolicyConfig:
        return self._config

    def __len__(self) -> int:
        """Subscribers with remembered contacts."""
        return len(self._state)

    def _plan(self, channel: Channel, purpose: str) -> ContactPlan:
        plan = self._plans.get((channel, purpose))
        if plan is None:
            raise ValueError(f"contact purpose {purpose!r} on channel {channel!r}: purposes are {PURPOSES}")
        return plan

    def _calendar(self, timezone: str | None) -> _Calendar:
        calendar = self._calendars.get(timezone)
        if calendar is None:
            assert timezone is not None
            default = self._calendars[None]
            zone = _zone(timezone)
            # an unknown zone name means the policy's default zone
            calendar = default if zone is None else _Calendar(zone, default.periods, default.quiet_hours)
            self._calendars[timezone] = calendar
        return calendar

    def contact_plan(self, channel: Channel, purpose: str) -> ContactPlan:
        """The plan of ``check`` and ``record`` for ``channel`` and ``purpose`` (``ValueError`` for a
        purpose not in ``PURPOSES``), to call ``check_planned`` / ``record_planned`` with."""
        return self._plans.get((channel, purpose)) or self._plan(channel, purpose)

    def check(self, msisdn: str, channel: Channel, purpose: str, now: float, timezone: str | None) -> Verdict:
        """The verdict for one contact now; changes no state."""
        plan = self._plans.get((channel, purpose)) or self._plan(channel, purpose)
        return self.check_planned(plan, msisdn, now, timezone)

    def check_planned(self, plan: ContactPlan, msisdn: str, now: float, timezone: str | None) -> Verdict:
        """``check`` with the (channel, purpose) resolved by ``contact_plan``."""
        if plan.promotional and msisdn in self._dnd:
            return _DO_NOT_DISTURB
        if not plan.uses_calendar:
            return ALLOWED
        calendar = self._calendars.get(timezone) or self._calendar(timezone)
        if not calendar.lo <= now < calendar.hi:
            calendar.refresh(now)
        if plan.promotional and calendar.quiet:
            return calendar.deferred or _QUIET_DROP
        caps = plan.caps
        if caps:
            state = self._state.get(msisdn)
            if state is None:
                return plan.first_zero or ALLOWED
            keys = calendar.keys
            for position, period, limit, verdict in caps:
                # a period before the latest counted one counts as it (conservative, module docstring)
                if (state[position] if keys[period] <= state[period] else 0) >= limit:
                    return verdict
        return ALLOWED

    def contact_planned(self, plan: ContactPlan, msisdn: str, now: float, timezone: str | None) -> Verdict:
        """``check_planned``, and when it allows the contact, ``record_planned`` at once (the engine's
        send path: one calendar and state lookup instead of two)."""
        if plan.promotional and msisdn in self._dnd:
            return _DO_NOT_DISTURB
        if not plan.uses_calendar:
            return ALLOWED  # no calendar: no rule counts this contact either (contact_plan)
        calendar = self._calendars.get(timezone) or self._calendar(timezone)
        if not calendar.lo <= now < calendar.hi:
            calendar.refresh(now)
        if plan.promotional and calendar.quiet:
            return calendar.deferred or _QUIET_DROP
        state = self._state.get(msisdn)
        keys = calendar.keys
        if state is None:
            verdict = plan.first_zero
            if verdict is not None:
                return verdict
            if plan.counts:
                self._state[msisdn] = keys + plan.first  # the period starts, then zeros and this contact
            return ALLOWED
        for position, period, limit, verdict in plan.caps:
            if (state[position] if keys[period] <= state[period] else 0) >= limit:
                return verdict
        if plan.counts:
            self._state[msisdn] = self._counted(state, keys, plan.counts)
        return ALLOWED

    def record(self, msisdn: str, channel: Channel, purpose: str, now: float, timezone: str | None) -> None:
        """Count one contact made (the engine calls it when it sends)."""
        plan = self._plans.get((channel, purpose)) or self._plan(channel, purpose)
        self.record_planned(plan, msisdn, now, timezone)

    def record_planned(self, plan: ContactPlan, msisdn: str, now: float, timezone: str | None) -> None:
        """``record`` with the (channel, purpose) resolved by ``contact_plan``."""
        counts = plan.counts
        if not counts:
            return  # no rule counts these contacts: nothing to remember
        calendar = self._calendars.get(timezone) or self._calendar(timezone)
        if not calendar.lo <= now < calendar.hi:
            calendar.refresh(now)
        keys = calendar.keys
        old = self._state.get(msisdn)
        if old is None:
            self._state[msisdn] = keys + plan.first  # the period starts, then zeros and this contact
            return
        self._state[msisdn] = self._counted(old, keys, counts)

    def _counted(
        self, old: tuple[int, ...], keys: tuple[int, ...], counts: tuple[int, ...]
    ) -> tuple[int, ...]:
        """A subscriber's state ``old`` with one more contact at the positions ``counts``, in the periods
        ``keys`` (the current calendar's)."""
        state = list(old)
        for period, key in enumerate(keys):
            if key > state[period]:  # a later period: its counts start again
                state[period] = key
                for position in self._period_counters[period]:
                    state[position] = 0
        for position in counts:
            state[position] += 1
        return tuple(state)

    def forget(self, msisdn: str) -> None:
        """Drop what is remembered of ``msisdn``'s contacts (do-not-disturb is kept)."""
        self._state.pop(msisdn, None)

    def prune(self, now: float) -> int:
        """Drop the subscribers whose every period ended a day or more before ``now``; returns how many.

        Their counts could never count again (any later period starts after them), so no decision at
        ``now`` or later changes.
        """
        horizons = [now - _LENGTH[period] - _SLACK for period in self._periods]
        if len(horizons) == 1:  # one period kind (the usual "per day" caps): no inner loop per subscriber
            (horizon,) = horizons
            stale = [msisdn for msisdn, state in self._state.items() if state[0] <= horizon]
        else:
            stale = [
                msisdn
                for msisdn, state in self._state.items()
                if all(state[i] <= horizon for i, horizon in enumerate(horizons))
            ]
        for msisdn in stale:
            del self._state[msisdn]
        return len(stale)

    # --- do not disturb ------------------------------------------------------------------------

    def add_do_not_disturb(self, msisdn: str) -> None:
        """No more promotional contacts for ``msisdn`` (a STOP reply); kept in the snapshot."""
        if msisdn in self._base_dnd:
            self._removed.discard(msisdn)
        else:
            self._added.add(msisdn)
        self._dnd.add(msisdn)

    def remove_do_not_disturb(self, msisdn: str) -> None:
        """Promotional contacts allowed again for ``msisdn`` (even if the policy file lists it)."""
        if msisdn in self._base_dnd:
            self._removed.add(msisdn)
        else:
            self._added.discard(msisdn)
        self._dnd.discard(msisdn)

    def is_do_not_disturb(self, msisdn: str) -> bool:
        return msisdn in self._dnd

    # --- checkpoint -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state as plain JSON-able data: rows ``[msisdn, [period starts], [counts]]`` in the
        order of ``periods`` and ``counters``, and the run-time do-not-disturb changes."""
        return {
            "version": SNAPSHOT_VERSION,
            "policy_version": self._config.version,
            "periods": list(self._periods),
            "counters": list(self._counters),
            "do_not_disturb": {"added": sorted(self._added), "removed": sorted(self._removed)},
            "subscribers": [
                [msisdn, list(state[: len(self._periods)]), list(state[len(self._periods) :])]
                for msisdn, state in self._state.items()
            ],
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the state with one ``snapshot()`` returned (possibly through JSON, possibly under
        another policy version: module docstring). ``ConfigError`` says what is wrong, and then the
        state is unchanged."""
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            raise ConfigError(f"policy snapshot: not a version {SNAPSHOT_VERSION} snapshot")
        policy_version = snapshot.get("policy_version")
        if isinstance(policy_version, bool) or not isinstance(policy_version, int) or policy_version < 1:
            raise ConfigError("policy snapshot: policy_version must be a whole number >= 1")
        periods = _names(snapshot.get("periods"), "periods")
        if not set(periods) <= set(_PERIODS):
            raise ConfigError(f"policy snapshot: periods must be among {list(_PERIODS)}")
        counters = _names(snapshot.get("counters"), "counters")
        for name in counters:
            parts = name.split("/")
            if (
                len(parts) != 3
                or parts[0] not in ("*", *(c.value for c in Channel))
                or parts[1] not in PURPOSES
                or parts[2] not in periods
            ):
                raise ConfigError(f"policy snapshot: counter {name!r} is not channel/purpose/period")
        added, removed = _do_not_disturb(snapshot.get("do_not_disturb"))
        rows = snapshot.get("subscribers")
        if not isinstance(rows, list):
            raise ConfigError("policy snapshot: subscribers is not a list")
        # where each of our periods and counters is in the snapshot's rows (None: not there)
        period_at = [periods.index(p) if p in periods else None for p in self._periods]
        counter_at = [counters.index(c) if c in counters else None for c in self._counters]
        shared: dict[int, int] = {}  # one int object per period start, as the zone memo does
        state: dict[str, tuple[int, ...]] = {}
        for index, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
                raise ConfigError(f"policy snapshot: subscriber {index} is not [msisdn, starts, counts]")
            msisdn, starts, counts = row
            if not (isinstance(starts, list) and len(starts) == len(periods) and all(map(_is_int, starts))):
                raise ConfigError(f"policy snapshot: subscriber {index}: one whole number per period")
            if not (
                isinstance(counts, list)
                and len(counts) == len(counters)
                and all(_is_int(c) and c >= 0 for c in counts)
            ):
                raise ConfigError(f"policy snapshot: subscriber {index}: one count >= 0 per counter")
            if msisdn in state:
                raise ConfigError(f"policy snapshot: subscriber {index} repeats {msisdn}")
            mine = [0 if at is None else counts[at] for at in counter_at]
            if not any(mine):
                continue  # nothing this policy counts: takes no memory
            keys = [0 if at is None else shared.setdefault(starts[at], starts[at]) for at in period_at]
            state[msisdn] = (*keys, *mine)
        self._state = state
        self._added = added - self._base_dnd
        self._removed = removed & self._base_dnd
        self._dnd = (set(self._base_dnd) - self._removed) | self._added


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: object, what: str) -> list[str]:
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise ConfigError(f"policy snapshot: {what} is not a list of names")
    if len(set(value)) != len(value):
        raise ConfigError(f"policy snapshot: {what} repeats a name")
    return value


def _do_not_disturb(value: object) -> tuple[set[str], set[str]]:
    if not (isinstance(value, Mapping) and set(value) == {"added", "removed"}):
        raise ConfigError("policy snapshot: do_not_disturb must have added and removed")
    added, removed = value["added"], value["removed"]
    for names in (added, removed):
        if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
            raise ConfigError("policy snapshot: do_not_disturb lists must hold msisdn strings")
    if set(added) & set(removed):
        raise ConfigError("policy snapshot: an msisdn is both added to and removed from do_not_disturb")
    return set(added), set(removed)

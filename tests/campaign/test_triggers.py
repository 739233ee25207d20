"""Trigger detection (campaign_core.triggers): each rule of its docstring, then hypothesis properties.

Properties: for any interleaving, duplication and reordering of one subscriber's events within one period
there is at most one trigger per (level, period), one exhaustion, no threshold after it, and the highest
level any event carries is triggered; the same input gives the same output; a snapshot restored (through
JSON) makes the same future decisions as the detector it was taken from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_core.triggers import EXHAUSTED_LEVEL, TriggerDetector
from campaign_core.usage import Trigger, TriggerKind, UsageEvent, UsageKind
from protocols.errors import ConfigError

MSISDN = "31612345678"
PKG = "pkg-5GB"
NOW = 1_000_000.0


def ev(
    kind: UsageKind,
    t: float,
    *,
    percent: float | None = None,
    period: str | None = None,
    event_id: str | None = None,
    sequence: int | None = None,
    msisdn: str = MSISDN,
    package_id: str = PKG,
    used_bytes: int | None = None,
    quota_bytes: int | None = None,
) -> UsageEvent:
    return UsageEvent(
        event_id=event_id or f"{kind.value}-{t}-{percent}-{period}",
        msisdn=msisdn,
        kind=kind,
        package_id=package_id,
        event_time=float(t),
        source="dpi",
        sequence=sequence,
        used_bytes=used_bytes,
        quota_bytes=quota_bytes,
        percent=percent,
        period=period,
    )


def usage(t: float, percent: float, **kw: object) -> UsageEvent:
    return ev(UsageKind.USAGE, t, percent=percent, **kw)  # type: ignore[arg-type]


def threshold(t: float, percent: float, **kw: object) -> UsageEvent:
    return ev(UsageKind.THRESHOLD, t, percent=percent, **kw)  # type: ignore[arg-type]


def exhausted(t: float, **kw: object) -> UsageEvent:
    return ev(UsageKind.EXHAUSTED, t, **kw)  # type: ignore[arg-type]


def renewed(t: float, **kw: object) -> UsageEvent:
    return ev(UsageKind.RENEWED, t, **kw)  # type: ignore[arg-type]


def run(detector: TriggerDetector, events: Iterable[UsageEvent], now: float = NOW) -> list[Trigger]:
    out: list[Trigger] = []
    for event in events:
        out.extend(detector.handle(event, now))
    return out


def levels(triggers: Sequence[Trigger]) -> list[tuple[str | None, int]]:
    return [(t.period, t.level) for t in triggers]


# --- thresholds and exhaustion -------------------------------------------------------------------


def test_threshold_triggers_once_with_the_event_fields() -> None:
    d = TriggerDetector()
    event = threshold(100.0, 90, event_id="e1", sequence=4)
    (trigger,) = d.handle(event, now=103.5)
    assert trigger == Trigger(
        kind=TriggerKind.THRESHOLD,
        msisdn=MSISDN,
        package_id=PKG,
        period=None,
        level=90,
        event_id="e1",
        event_time=100.0,
        detected_at=103.5,
        source="dpi",
    )
    assert d.handle(event, now=104) == []  # the same event re-delivered
    assert d.handle(threshold(101.0, 92, event_id="e2"), now=105) == []  # 90 is done this period
    assert len(d) == 1


def test_below_every_threshold_triggers_nothing_and_tracks_nothing() -> None:
    d = TriggerDetector((90,))
    assert run(d, [usage(1, 50), threshold(2, 89.9), usage(3, 0)]) == []
    assert len(d) == 0


def test_usage_with_percent_or_bytes_triggers_threshold() -> None:
    d = TriggerDetector((80, 90))
    assert levels(run(d, [usage(1, 85)])) == [(None, 80)]
    event = ev(UsageKind.USAGE, 2, used_bytes=9_100, quota_bytes=10_000)
    assert levels(d.handle(event, NOW)) == [(None, 90)]
    # without a percentage nothing can be placed
    other = TriggerDetector()
    assert other.handle(ev(UsageKind.USAGE, 1, used_bytes=5), NOW) == []
    assert other.handle(ev(UsageKind.USAGE, 1, used_bytes=5, quota_bytes=0), NOW) == []
    assert other.handle(ev(UsageKind.THRESHOLD, 1, used_bytes=9, quota_bytes=10), NOW) == []


def test_crossing_several_levels_at_once_gives_the_highest_and_marks_the_lower_done() -> None:
    d = TriggerDetector((80, 90, 95))
    assert levels(run(d, [usage(1, 96)])) == [(None, 95)]
    assert run(d, [threshold(2, 80), threshold(3, 90), usage(4, 99.9)]) == []


def test_levels_rise_one_at_a_time() -> None:
    d = TriggerDetector((50, 80, 90))
    out = run(d, [usage(1, 55), usage(2, 60), threshold(3, 80), usage(4, 85), threshold(5, 90)])
    assert levels(out) == [(None, 50), (None, 80), (None, 90)]


def test_usage_at_100_percent_is_not_exhaustion() -> None:
    d = TriggerDetector()
    assert [t.kind for t in run(d, [usage(1, 100), usage(2, 120)])] == [TriggerKind.THRESHOLD]


@pytest.mark.parametrize("kind", [UsageKind.EXHAUSTED, UsageKind.PAYG_STARTED])
def test_exhaustion_triggers_once_and_closes_thresholds(kind: UsageKind) -> None:
    d = TriggerDetector((80, 90))
    (trigger,) = d.handle(ev(kind, 10), NOW)
    assert (trigger.kind, trigger.level) == (TriggerKind.EXHAUSTED, EXHAUSTED_LEVEL)
    later = [threshold(5, 90), usage(11, 95), ev(UsageKind.EXHAUSTED, 12), ev(UsageKind.PAYG_STARTED, 13)]
    assert run(d, later) == []


def test_threshold_then_exhaustion_then_nothing() -> None:
    d = TriggerDetector()
    out = run(d, [threshold(1, 90), exhausted(2), ev(UsageKind.PAYG_STARTED, 3), threshold(4, 90)])
    assert [(t.kind, t.level) for t in out] == [(TriggerKind.THRESHOLD, 90), (TriggerKind.EXHAUSTED, 100)]


def test_packages_and_subscribers_are_independent() -> None:
    d = TriggerDetector()
    out = run(
        d,
        [
            threshold(1, 90),
            threshold(1, 90, package_id="pkg-1GB"),
            threshold(1, 90, msisdn="31600000001"),
            exhausted(2, package_id="pkg-1GB"),
            threshold(3, 90, package_id="pkg-1GB"),
        ],
    )
    assert [(t.msisdn, t.package_id, t.level) for t in out] == [
        (MSISDN, PKG, 90),
        (MSISDN, "pkg-1GB", 90),
        ("31600000001", PKG, 90),
        (MSISDN, "pkg-1GB", 100),
    ]
    assert len(d) == 3
    d.forget(MSISDN)
    assert len(d) == 1
    d.forget(MSISDN)  # forgetting twice is harmless
    assert len(d) == 1
    # forgotten: the same thresholds trigger again
    assert len(run(d, [threshold(4, 90), threshold(4, 90, package_id="pkg-1GB")])) == 2


def test_out_of_order_never_triggers_a_lower_level() -> None:
    d = TriggerDetector((80, 90))
    out = run(d, [threshold(5, 90, sequence=5), usage(4, 85, sequence=4), threshold(3, 80, sequence=3)])
    assert levels(out) == [(None, 90)]


def test_a_late_event_with_a_higher_level_is_news() -> None:
    d = TriggerDetector((80, 90))
    out = run(d, [usage(5, 81, sequence=5), threshold(4, 90, sequence=4)])
    assert levels(out) == [(None, 80), (None, 90)]


# --- periods -----------------------------------------------------------------------------------


def test_renewed_starts_a_new_period_and_resets_levels() -> None:
    d = TriggerDetector()
    out = run(d, [threshold(10, 90), exhausted(20), renewed(30), threshold(40, 90), exhausted(50)])
    assert levels(out) == [(None, 90), (None, 100), ("t30.0", 90), ("t30.0", 100)]


def test_renewed_without_period_is_idempotent() -> None:
    d = TriggerDetector()
    out = run(d, [renewed(30), threshold(40, 90), renewed(30), threshold(41, 90), renewed(20), exhausted(42)])
    assert levels(out) == [("t30.0", 90), ("t30.0", 100)]


def test_an_older_renewed_is_ignored() -> None:
    d = TriggerDetector()
    out = run(d, [renewed(100, period="7"), threshold(110, 90, period="7"), renewed(50, period="6")])
    out += run(d, [renewed(60), threshold(120, 90), threshold(121, 90, period="7")])
    assert levels(out) == [("7", 90)]


def test_named_periods_switch_forward_and_never_reopen() -> None:
    d = TriggerDetector()
    out = run(
        d,
        [
            threshold(10, 90, period="1"),
            threshold(20, 90, period="2"),  # a new period, first seen at 20
            exhausted(15, period="1"),  # the previous period: ignored
            exhausted(30, period="1"),  # still the previous period, whatever its time
            exhausted(5, period="0"),  # another period, older than the current start
            exhausted(25, period="2"),
        ],
    )
    assert levels(out) == [("1", 90), ("2", 90), ("2", 100)]


def test_named_renewal_resets_and_events_of_the_finished_period_are_ignored() -> None:
    d = TriggerDetector()
    out = run(
        d,
        [
            threshold(10, 90, period="1"),
            renewed(20, period="2"),
            renewed(20, period="2"),  # duplicate
            exhausted(12, period="1"),
            exhausted(12),  # no period, from before the renewal
            threshold(25, 90),  # no period, after it: the current one
            exhausted(26, period="2"),
        ],
    )
    assert levels(out) == [("1", 90), ("2", 90), ("2", 100)]


def test_an_unnamed_period_takes_the_first_name_given() -> None:
    d = TriggerDetector()
    out = run(d, [threshold(10, 90), threshold(11, 90, period="2024-06"), exhausted(12, period="2024-06")])
    assert levels(out) == [(None, 90), ("2024-06", 100)]
    # an unnamed renewal then a named one at the same instant: the same renewal, named
    d = TriggerDetector()
    out = run(d, [renewed(30), threshold(31, 90), renewed(30, period="B"), threshold(32, 90, period="B")])
    assert levels(out) == [("t30.0", 90)]
    assert run(d, [exhausted(33, period="B")])[0].period == "B"


def test_reports_before_a_first_named_report_still_count() -> None:
    # the first report names the period at 50; an older unnamed report is not from before a renewal
    d = TriggerDetector()
    out = run(d, [threshold(50, 90, period="3"), exhausted(40)])
    assert levels(out) == [("3", 90), ("3", 100)]


def test_a_named_renewal_moves_the_start_back() -> None:
    d = TriggerDetector()
    out = run(d, [threshold(50, 90, period="3"), renewed(30, period="3"), exhausted(20), exhausted(40)])
    assert levels(out) == [("3", 90), ("3", 100)]


def test_a_report_that_overtook_the_renewal_keeps_its_level() -> None:
    d = TriggerDetector()
    # the 90 % at 35 was already in the new period that began at 30: it does not fire again
    out = run(d, [threshold(35, 90), renewed(30), threshold(36, 95), exhausted(37)])
    assert levels(out) == [(None, 90), ("t30.0", 100)]
    # a 90 % of the new period that a 90 % of the old one suppressed fires once the renewal is known
    d = TriggerDetector()
    out = run(d, [threshold(10, 90), threshold(35, 90), renewed(30), threshold(36, 95)])
    assert levels(out) == [(None, 90), ("t30.0", 90)]
    # but a level raised before the renewal is reset
    d = TriggerDetector()
    out = run(d, [exhausted(20), usage(35, 10), renewed(30), threshold(36, 90)])
    assert levels(out) == [(None, 100), ("t30.0", 90)]


def test_renewed_alone_tracks_the_package() -> None:
    d = TriggerDetector()
    assert d.handle(renewed(5, period="9"), NOW) == []
    assert len(d) == 1
    assert d.handle(exhausted(4, period="8"), NOW) == []  # older than period 9


# --- construction and snapshots --------------------------------------------------------------


@pytest.mark.parametrize("bad", [(0,), (100,), (90, 101), (-5,), (True,), (90.5,)])
def test_thresholds_are_whole_percentages_below_100(bad: tuple[object, ...]) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        TriggerDetector(bad)  # type: ignore[arg-type]


def test_thresholds_are_sorted_and_unique() -> None:
    assert TriggerDetector((95, 80, 95)).thresholds == (80, 95)
    assert run(TriggerDetector(()), [threshold(1, 99), exhausted(2)])[0].level == 100


def test_snapshot_is_json_and_restores_the_same_decisions() -> None:
    d = TriggerDetector((80, 90))
    run(
        d,
        [
            threshold(10, 80),
            threshold(11, 90, package_id="p2"),
            renewed(12, package_id="p2"),
            exhausted(13, msisdn="316000"),
            threshold(14, 90, period="A", package_id="p3"),
            threshold(15, 90, period="B", package_id="p3"),
        ],
    )
    text = json.dumps(d.snapshot(), allow_nan=False)
    restored = TriggerDetector.from_snapshot(json.loads(text))
    assert restored.snapshot() == d.snapshot()
    assert len(restored) == len(d) == 4
    future = [
        threshold(20, 90),
        threshold(21, 90, package_id="p2"),
        exhausted(22, msisdn="316000"),
        exhausted(23, period="A", package_id="p3"),
        exhausted(24, period="B", package_id="p3"),
    ]
    assert run(restored, future) == run(d, future)
    assert levels(run(TriggerDetector.from_snapshot(json.loads(text)), future)) == [
        (None, 90),
        ("t12.0", 90),
        ("B", 100),
    ]


def test_restore_replaces_the_state() -> None:
    d = TriggerDetector()
    run(d, [threshold(1, 90)])
    empty = TriggerDetector().snapshot()
    d.restore(empty)
    assert len(d) == 0
    assert levels(run(d, [threshold(2, 90)])) == [(None, 90)]


def _row(**changes: object) -> list[object]:
    row: dict[str, object] = {
        "msisdn": MSISDN,
        "package_id": PKG,
        "period": "1",
        "previous": None,
        "start": 5.0,
        "bounded": True,
        "level": 90,
        "raised_at": 6.0,
    }
    row.update(changes)
    return list(row.values())


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        ([], "not a version 1"),
        ({"version": 2, "packages": []}, "not a version 1"),
        ({"version": 1, "packages": {}}, "packages is not a list"),
        ({"version": 1, "packages": [[1, 2]]}, "row 0 is not a list of 8"),
        ({"version": 1, "packages": [_row(msisdn=5)]}, "must be strings"),
        ({"version": 1, "packages": [_row(period=1)]}, "period names"),
        ({"version": 1, "packages": [_row(start="x")]}, "bad start"),
        ({"version": 1, "packages": [_row(raised_at=float("inf"))]}, "bad start"),
        ({"version": 1, "packages": [_row(bounded=1)]}, "bad start"),
        ({"version": 1, "packages": [_row(level=101)]}, "level must be"),
        ({"version": 1, "packages": [_row(level=True)]}, "level must be"),
        ({"version": 1, "packages": [_row(level=0)]}, "raised_at must be given"),
        ({"version": 1, "packages": [_row(), _row()]}, "row 1 repeats"),
    ],
)
def test_restore_rejects_bad_snapshots_and_keeps_the_state(snapshot: object, message: str) -> None:
    d = TriggerDetector()
    run(d, [threshold(1, 90)])
    before = d.snapshot()
    with pytest.raises(ConfigError, match=message):
        d.restore(snapshot)  # type: ignore[arg-type]
    assert d.snapshot() == before


def test_from_snapshot_needs_thresholds() -> None:
    with pytest.raises(ConfigError, match="thresholds"):
        TriggerDetector.from_snapshot({"version": 1, "packages": []})


# --- properties ------------------------------------------------------------------------------

THRESHOLDS = (80, 90, 95)
KINDS = [UsageKind.USAGE, UsageKind.THRESHOLD, UsageKind.EXHAUSTED, UsageKind.PAYG_STARTED]


@st.composite
def one_period(draw: st.DrawFn) -> list[UsageEvent]:
    """A subscriber's events of one period, some duplicated, in any order, the period named or not."""
    named = draw(st.sampled_from([None, "P", "mixed"]))
    count = draw(st.integers(1, 12))
    events: list[UsageEvent] = []
    for index in range(count):
        kind = draw(st.sampled_from(KINDS))
        percent = draw(st.one_of(st.none(), st.floats(0, 120, allow_nan=False)))
        period = "P" if named == "P" or (named == "mixed" and draw(st.booleans())) else None
        events.append(
            ev(
                kind,
                float(draw(st.integers(0, 20))),
                percent=percent,
                period=period,
                event_id=f"e{index}",
                sequence=draw(st.one_of(st.none(), st.integers(0, 20))),
            )
        )
    duplicates = draw(st.lists(st.sampled_from(events), max_size=6))
    return draw(st.permutations(events + duplicates))


def expected_top(events: Iterable[UsageEvent]) -> int:
    top = 0
    for event in events:
        if event.kind in (UsageKind.EXHAUSTED, UsageKind.PAYG_STARTED):
            top = EXHAUSTED_LEVEL
        elif event.percent is not None:
            top = max([top] + [level for level in THRESHOLDS if level <= event.percent])
    return top


@settings(max_examples=200, deadline=None)
@given(one_period())
def test_one_period_triggers_each_level_at_most_once_and_the_highest_always(events: list[UsageEvent]) -> None:
    triggers = run(TriggerDetector(THRESHOLDS), events)
    seen = [t.level for t in triggers]
    assert len(seen) == len(set(seen))  # at most one per level (and one exhaustion)
    assert seen == sorted(seen)  # rising: nothing after exhaustion, nothing below a triggered level
    assert len({t.period for t in triggers if t.period is not None}) <= 1
    assert max(seen, default=0) == expected_top(events)
    for trigger in triggers:
        assert trigger.kind == (TriggerKind.EXHAUSTED if trigger.level == 100 else TriggerKind.THRESHOLD)


@settings(max_examples=150, deadline=None)
@given(one_period(), st.integers(0, 20))
def test_same_input_same_output_and_snapshots_resume_identically(events: list[UsageEvent], cut: int) -> None:
    first = run(TriggerDetector(THRESHOLDS), events)
    assert run(TriggerDetector(THRESHOLDS), events) == first
    cut = min(cut, len(events))
    d = TriggerDetector(THRESHOLDS)
    before = run(d, events[:cut])
    restored = TriggerDetector.from_snapshot(json.loads(json.dumps(d.snapshot(), allow_nan=False)))
    assert restored.snapshot() == d.snapshot()
    assert before + run(restored, events[cut:]) == first


@st.composite
def two_periods(draw: st.DrawFn) -> list[UsageEvent]:
    """Period "1" (times 0..9), a RENEWED of "2" at 10, period "2" (times 10..19), delivered in any order."""
    events: list[UsageEvent] = [renewed(10.0, period="2", event_id="r2")]
    for index in range(draw(st.integers(1, 10))):
        period = draw(st.sampled_from(["1", "2"]))
        t = float(draw(st.integers(0, 9)) + (10 if period == "2" else 0))
        named = draw(st.booleans())
        kind = draw(st.sampled_from(KINDS))
        percent = draw(st.one_of(st.none(), st.sampled_from([50.0, 80.0, 90.0, 97.0])))
        events.append(ev(kind, t, percent=percent, period=period if named else None, event_id=f"e{index}"))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    return draw(st.permutations(events + duplicates))


@settings(max_examples=200, deadline=None)
@given(two_periods())
def test_two_periods_at_most_once_per_level_and_period(events: list[UsageEvent]) -> None:
    triggers = run(TriggerDetector(THRESHOLDS), events)
    keys = [(t.period, t.level) for t in triggers]
    assert len(keys) == len(set(keys))
    # once the renewal to "2" is known, no event of period "1" (named, or older than 10) triggers
    renewal_at = next(i for i, e in enumerate(events) if e.kind is UsageKind.RENEWED)
    d = TriggerDetector(THRESHOLDS)
    for index, event in enumerate(events):
        out = d.handle(event, NOW)
        if index > renewal_at and (event.period == "1" or event.event_time < 10):
            assert out == []
        for trigger in out:
            assert trigger.period in (None, "1", "2")


def test_a_trigger_keeps_its_event_time_and_source() -> None:
    event = replace(threshold(7.25, 91), source="diameter-gy")
    (trigger,) = TriggerDetector().handle(event, now=9.0)
    assert (trigger.event_time, trigger.detected_at, trigger.source) == (7.25, 9.0, "diameter-gy")

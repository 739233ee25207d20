"""The network simulator's usage meter: thresholds, exhaustion and renewal as a network reports them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.network import NotificationKind, UsageMeter, population

GB = 1 << 30


def test_threshold_then_exhaustion_then_renewal() -> None:
    meter = UsageMeter((90,))
    meter.subscribe("254700000001", "data-1gb", 1000)
    assert meter.use("254700000001", 500, 1.0) == []
    (threshold,) = meter.use("254700000001", 400, 2.0)
    assert (threshold.kind, threshold.percent, threshold.sequence, threshold.threshold) == (
        NotificationKind.THRESHOLD,
        90.0,
        1,
        90,
    )
    assert meter.use("254700000001", 50, 3.0) == []
    (exhausted,) = meter.use("254700000001", 80, 4.0)
    assert (exhausted.kind, exhausted.used_bytes, exhausted.time) == (NotificationKind.EXHAUSTED, 1000, 4.0)
    assert meter.use("254700000001", 80, 5.0) == []  # pay-as-you-go is not metered against the package
    renewed = meter.renew("254700000001", 6.0, quota_bytes=2000)
    assert (renewed.kind, renewed.period, renewed.used_bytes, renewed.quota_bytes) == (
        NotificationKind.RENEWED,
        2,
        0,
        2000,
    )
    (again,) = meter.use("254700000001", 1900, 7.0)
    assert (again.kind, again.period) == (NotificationKind.THRESHOLD, 2)


def test_a_jump_past_every_threshold_is_one_exhaustion() -> None:
    meter = UsageMeter((80, 90))
    meter.subscribe("1", "p", 100)
    assert [n.kind for n in meter.use("1", 150, 0.0)] == [NotificationKind.EXHAUSTED]


def test_usage_reports_when_asked() -> None:
    meter = UsageMeter((90,), report_usage=True)
    meter.subscribe("1", "p", 100)
    (usage,) = meter.use("1", 10, 0.0)
    assert (usage.kind, usage.percent) == (NotificationKind.USAGE, 10.0)
    assert meter.use("1", 0, 0.0) == []


def test_json_rendering() -> None:
    meter = UsageMeter()
    meter.subscribe("254700000001", "data-1gb", GB)
    (n,) = meter.use("254700000001", GB, 1_700_000_000.5)
    data = json.loads(n.to_json_bytes())
    assert data == {
        "event_id": "254700000001:data-1gb:1:1",
        "msisdn": "254700000001",
        "kind": "exhausted",
        "package_id": "data-1gb",
        "timestamp": "2023-11-14T22:13:20.500000+00:00",
        "sequence": 1,
        "used_bytes": GB,
        "quota_bytes": GB,
        "percent": 100.0,
        "period": "1",
    }


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        UsageMeter((100,))
    with pytest.raises(ValueError, match="quota"):
        UsageMeter().subscribe("1", "p", 0)


def test_population() -> None:
    subs = list(population(3, first_msisdn=100, quota_bytes=5))
    assert subs == [("100", "data-1gb", 5), ("101", "data-1gb", 5), ("102", "data-1gb", 5)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), max_size=40), st.sets(st.integers(1, 99), min_size=1, max_size=4))
def test_each_threshold_and_exhaustion_reported_at_most_once_per_period(
    steps: list[int], levels: set[int]
) -> None:
    meter = UsageMeter(sorted(levels))
    meter.subscribe("1", "p", 1000)
    kinds = [n.kind for step in steps for n in meter.use("1", step, 0.0)]
    assert kinds.count(NotificationKind.EXHAUSTED) <= 1
    assert kinds.count(NotificationKind.THRESHOLD) <= len(levels)
    if NotificationKind.EXHAUSTED in kinds:
        assert kinds[-1] is NotificationKind.EXHAUSTED
    assert (sum(steps) >= 1000) == (NotificationKind.EXHAUSTED in kinds)

"""Contact policy (campaign_core.policy): each rule of its docstring, then a hypothesis state machine.

The state machine lets a few subscribers in different zones (with DST, half-hour offsets and a half-hour
DST shift) attempt contacts on both channels for every purpose at random increasing times; a contact is
recorded only when ``check`` allows it. A brute-force model over the recorded contacts predicts every
verdict (do not disturb, quiet hours with the instant they end, the first cap reached) and checks the
invariants: no cap exceeded in any local period, no promotional contact in quiet hours. A property test
holds ``Deferred.until`` to a minute-by-minute scan of the local clock around the 2026 clock changes of
zones that change forward and back, at midnight, by half an hour and at a quarter to the hour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as time_of_day
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from campaign_core.config import CapRule, PolicyConfig, QuietHours
from campaign_core.model import Channel
from campaign_core.policy import Allowed, ContactPolicy, Deferred, Suppressed, Verdict
from protocols.errors import ConfigError

SMS, STK = Channel.SMS, Channel.STK
A = "254700000001"
B = "254700000002"
Per = Literal["hour", "day", "week"]
Purpose = Literal["promotional", "subscriber_initiated", "transactional"]


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()  # type: ignore[arg-type,misc]


def at(zone: str, *fields: int, fold: int = 0) -> float:
    return datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold).timestamp()  # type: ignore[arg-type,misc]


def cap(max_: int, per: Per, channel: Channel | None = None, purpose: Purpose = "promotional") -> CapRule:
    return CapRule(channel=channel, purpose=purpose, max=max_, per=per)


def quiet(start: str, end: str, action: Literal["defer", "drop"] = "defer") -> QuietHours:
    return QuietHours(
        start=time_of_day.fromisoformat(start), end=time_of_day.fromisoformat(end), action=action
    )


def make(
    *caps: CapRule,
    quiet_hours: QuietHours | None = None,
    dnd: tuple[str, ...] = (),
    zone: str = "UTC",
    version: int = 1,
) -> ContactPolicy:
    return ContactPolicy(
        PolicyConfig(
            kind="policy",
            version=version,
            default_timezone=zone,
            caps=caps,
            quiet_hours=quiet_hours,
            do_not_disturb=dnd,
        )
    )


def send(
    policy: ContactPolicy,
    now: float,
    channel: Channel = SMS,
    purpose: str = "promotional",
    *,
    msisdn: str = A,
    zone: str | None = None,
) -> Verdict:
    """check, and record when allowed (what the engine does)."""
    verdict = policy.check(msisdn, channel, purpose, now, zone)
    if isinstance(verdict, Allowed):
        policy.record(msisdn, channel, purpose, now, zone)
    return verdict


def allowed(verdict: Verdict) -> bool:
    return isinstance(verdict, Allowed)


def rule_of(verdict: Verdict) -> str | None:
    return verdict.rule if isinstance(verdict, Suppressed) else None


# --- basics ----------------------------------------------------------------------------------------


def test_an_empty_policy_allows_everything_and_remembers_nothing() -> None:
    policy = make(version=4)
    assert policy.version == 4
    for channel in Channel:
        for purpose in ("promotional", "subscriber_initiated", "transactional"):
            for _ in range(5):
                assert send(policy, utc(2026, 1, 1, 3), channel, purpose) == Allowed()
    assert len(policy) == 0


def test_unknown_purpose_is_an_error() -> None:
    policy = make(cap(1, "day"))
    with pytest.raises(ValueError, match="purpose"):
        policy.check(A, SMS, "marketing", 0.0, None)
    with pytest.raises(ValueError, match="purpose"):
        policy.record(A, SMS, "marketing", 0.0, None)


# --- do not disturb --------------------------------------------------------------------------------


def test_do_not_disturb_suppresses_promotional_only() -> None:
    policy = make(dnd=(A,))
    now = utc(2026, 5, 1, 12)
    assert policy.check(A, SMS, "promotional", now, None) == Suppressed("do not disturb", "do_not_disturb")
    assert policy.check(A, STK, "promotional", now, None) == Suppressed("do not disturb", "do_not_disturb")
    assert allowed(policy.check(A, SMS, "subscriber_initiated", now, None))
    assert allowed(policy.check(A, SMS, "transactional", now, None))
    assert allowed(policy.check(B, SMS, "promotional", now, None))


def test_do_not_disturb_at_run_time() -> None:
    policy = make(dnd=(A,))
    now = utc(2026, 5, 1, 12)
    policy.add_do_not_disturb(B)  # a STOP reply
    assert not allowed(policy.check(B, SMS, "promotional", now, None))
    policy.remove_do_not_disturb(A)  # opted in again, although the file lists it
    assert allowed(policy.check(A, SMS, "promotional", now, None))
    assert policy.snapshot()["do_not_disturb"] == {"added": [B], "removed": [A]}
    policy.add_do_not_disturb(A)
    policy.remove_do_not_disturb(B)
    assert policy.snapshot()["do_not_disturb"] == {"added": [], "removed": []}
    assert not allowed(policy.check(A, SMS, "promotional", now, None))
    assert allowed(policy.check(B, SMS, "promotional", now, None))


def test_do_not_disturb_changes_survive_a_restore_under_a_new_policy_file() -> None:
    C = "254700000003"
    old = make(dnd=(A, B))
    old.add_do_not_disturb(C)
    old.remove_do_not_disturb(A)
    text = json.dumps(old.snapshot())
    new = make(dnd=(B, "254700000009"), version=2)  # the new file drops A and adds 9
    new.restore(json.loads(text))
    now = utc(2026, 5, 1, 12)
    blocked = {
        m for m in (A, B, C, "254700000009") if not allowed(new.check(m, SMS, "promotional", now, None))
    }
    assert blocked == {B, C, "254700000009"}  # A's opt-in is gone: the new file does not list A
    assert new.snapshot()["do_not_disturb"] == {"added": [C], "removed": []}


# --- quiet hours -----------------------------------------------------------------------------------


NAIROBI = "Africa/Nairobi"  # UTC+3, no DST


def test_quiet_hours_span_midnight_start_included_end_excluded() -> None:
    policy = make(quiet_hours=quiet("21:00", "08:00"), zone=NAIROBI)
    assert allowed(policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 1, 20, 59, 59), None))
    evening = policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 1, 21), None)
    assert evening == Deferred(at(NAIROBI, 2026, 5, 2, 8), "quiet hours")  # tomorrow's end
    night = policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 2, 3, 30), None)
    assert night == Deferred(at(NAIROBI, 2026, 5, 2, 8), "quiet hours")  # today's end
    last = policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 2, 7, 59, 59) + 0.999, None)
    assert last == Deferred(at(NAIROBI, 2026, 5, 2, 8), "quiet hours")
    assert allowed(policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 2, 8), None))


def test_quiet_hours_within_a_day() -> None:
    policy = make(quiet_hours=quiet("13:00", "14:30"))
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1, 12, 59, 59), None))
    assert policy.check(A, STK, "promotional", utc(2026, 5, 1, 13, 45), None) == Deferred(
        utc(2026, 5, 1, 14, 30), "quiet hours"
    )
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1, 14, 30), None))
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1, 23, 59), None))


def test_quiet_hours_are_local_to_the_subscriber() -> None:
    policy = make(quiet_hours=quiet("21:00", "08:00"), zone=NAIROBI)
    now = utc(2026, 5, 1, 19)  # 22:00 in Nairobi, 12:00 in Los Angeles, 04:00 in Tokyo
    assert isinstance(policy.check(A, SMS, "promotional", now, None), Deferred)
    assert allowed(policy.check(A, SMS, "promotional", now, "America/Los_Angeles"))
    assert policy.check(A, SMS, "promotional", now, "Asia/Tokyo") == Deferred(
        at("Asia/Tokyo", 2026, 5, 2, 8), "quiet hours"
    )
    # a zone name zoneinfo does not know: the policy's default zone
    assert policy.check(A, SMS, "promotional", now, "Mars/Olympus_Mons") == Deferred(
        at(NAIROBI, 2026, 5, 2, 8), "quiet hours"
    )


def test_quiet_hours_apply_to_promotional_contacts_only() -> None:
    policy = make(quiet_hours=quiet("21:00", "08:00"))
    night = utc(2026, 5, 1, 23)
    assert isinstance(policy.check(A, SMS, "promotional", night, None), Deferred)
    assert allowed(policy.check(A, SMS, "subscriber_initiated", night, None))
    assert allowed(policy.check(A, STK, "transactional", night, None))


def test_quiet_hours_drop() -> None:
    policy = make(quiet_hours=quiet("21:00", "08:00", "drop"))
    assert policy.check(A, SMS, "promotional", utc(2026, 5, 1, 23), None) == Suppressed(
        "quiet hours", "quiet_hours"
    )
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1, 9), None))


BERLIN = "Europe/Berlin"  # CET +1 / CEST +2: forward 2026-03-29 01:00 UTC, back 2026-10-25 01:00 UTC


def test_defer_until_the_local_end_across_dst_changes() -> None:
    policy = make(quiet_hours=quiet("22:00", "08:00"), zone=BERLIN)
    # the night the clocks go forward: 08:00 CEST is 06:00 UTC
    assert policy.check(A, SMS, "promotional", utc(2026, 3, 28, 22), None) == Deferred(
        utc(2026, 3, 29, 6), "quiet hours"
    )
    # the night the clocks go back: 08:00 CET is 07:00 UTC; the checks in the repeated hour too
    for now in (utc(2026, 10, 24, 21), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)):
        assert policy.check(A, SMS, "promotional", now, None) == Deferred(utc(2026, 10, 25, 7), "quiet hours")
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 10, 25, 7), None))


def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clock_jumps() -> None:
    policy = make(quiet_hours=quiet("01:00", "02:30"), zone=BERLIN)
    # 01:30 CET; 02:30 never shows on 2026-03-29: the clock jumps from 02:00 CET to 03:00 CEST
    verdict = policy.check(A, SMS, "promotional", utc(2026, 3, 29, 0, 30), None)
    assert verdict == Deferred(utc(2026, 3, 29, 1), "quiet hours")
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 3, 29, 1), None))


def test_quiet_hours_ending_in_a_skipped_hour_whose_other_reading_is_quiet() -> None:
    santiago = "America/Santiago"  # 2026-09-06 00:00 -04 jumps to 01:00 -03 (04:00 UTC)
    policy = make(quiet_hours=quiet("01:15", "00:15"), zone=santiago)
    # 00:15 read with the old offset is 01:15 -03: back in quiet hours. They end at the jump.
    verdict = policy.check(A, SMS, "promotional", utc(2026, 9, 6, 3, 59, 59), None)
    assert verdict == Deferred(utc(2026, 9, 6, 4), "quiet hours")


def test_quiet_hours_ending_in_the_repeated_hour_end_at_each_pass() -> None:
    policy = make(quiet_hours=quiet("01:00", "02:30"), zone=BERLIN)
    # first pass: 01:30 CEST waits for 02:30 CEST (00:30 UTC)
    first = policy.check(A, SMS, "promotional", at(BERLIN, 2026, 10, 25, 1, 30), None)
    assert first == Deferred(utc(2026, 10, 25, 0, 30), "quiet hours")
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 10, 25, 0, 45), None))  # 02:45 CEST
    # the clock goes back to 02:00 CET: 02:15 CET is in quiet hours again, until 02:30 CET
    second = policy.check(A, SMS, "promotional", at(BERLIN, 2026, 10, 25, 2, 15, fold=1), None)
    assert second == Deferred(utc(2026, 10, 25, 1, 30), "quiet hours")


def test_quiet_hours_boundaries_inside_an_hour_and_time_going_back() -> None:
    policy = make(quiet_hours=quiet("21:20", "06:40", "drop"), zone="Asia/Kolkata")  # UTC+5:30
    kolkata = "Asia/Kolkata"
    times = [
        (at(kolkata, 2026, 5, 1, 21, 19, 59), True),
        (at(kolkata, 2026, 5, 1, 21, 20), False),
        (at(kolkata, 2026, 5, 1, 21, 5), True),  # back in time: the memo must not answer for it
        (at(kolkata, 2026, 5, 2, 6, 39, 59), False),
        (at(kolkata, 2026, 5, 2, 6, 40), True),
        (at(kolkata, 2026, 5, 2, 6, 0), False),
    ]
    for now, expected in times:
        assert allowed(policy.check(A, SMS, "promotional", now, None)) is expected, now


# --- caps ----------------------------------------------------------------------------------------


def test_cap_per_channel() -> None:
    policy = make(cap(2, "day", SMS))
    t = utc(2026, 5, 1, 9)
    assert allowed(send(policy, t))
    assert allowed(send(policy, t + 60))
    assert policy.check(A, SMS, "promotional", t + 120, None) == Suppressed(
        "cap: 2 promotional sms per day", "caps[0]"
    )
    assert allowed(send(policy, t + 120, STK))  # the other channel is not capped
    assert allowed(send(policy, t + 120, msisdn=B))  # nor another subscriber
    assert len(policy) == 2


def test_cap_over_every_channel_and_the_first_rule_reached_is_named() -> None:
    policy = make(cap(3, "day", SMS), cap(2, "day"), cap(1, "day", STK))
    t = utc(2026, 5, 1, 9)
    assert allowed(send(policy, t, STK))
    assert policy.check(A, STK, "promotional", t, None) == Suppressed(
        "cap: 1 promotional stk per day", "caps[2]"
    )
    assert allowed(send(policy, t, SMS))
    assert policy.check(A, SMS, "promotional", t, None) == Suppressed(
        "cap: 2 promotional contacts per day", "caps[1]"
    )


def test_a_cap_of_zero_never_allows() -> None:
    policy = make(cap(0, "week", STK))
    assert policy.check(A, STK, "promotional", utc(2026, 5, 1), None) == Suppressed(
        "cap: 0 promotional stk per week", "caps[0]"
    )
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1), None))


def test_purposes_are_separate_budgets() -> None:
    policy = make(
        cap(1, "day"),
        cap(2, "day", purpose="subscriber_initiated"),
    )
    t = utc(2026, 5, 1, 9)
    assert allowed(send(policy, t, SMS, "subscriber_initiated"))
    assert allowed(send(policy, t, STK, "subscriber_initiated"))
    assert not allowed(send(policy, t, SMS, "subscriber_initiated"))
    assert allowed(send(policy, t, SMS, "promotional"))  # the answers did not use the push budget
    assert not allowed(send(policy, t, STK, "promotional"))
    for _ in range(10):
        assert allowed(send(policy, t, SMS, "transactional"))  # no rule: never capped


def test_check_changes_nothing_and_uncounted_contacts_take_no_memory() -> None:
    policy = make(cap(1, "day"))
    t = utc(2026, 5, 1, 9)
    for _ in range(3):
        assert allowed(policy.check(A, SMS, "promotional", t, None))
    assert len(policy) == 0
    policy.record(A, SMS, "transactional", t, None)
    policy.record(A, SMS, "subscriber_initiated", t, None)
    assert len(policy) == 0
    policy.record(A, SMS, "promotional", t, None)
    assert len(policy) == 1
    before = policy.snapshot()
    policy.check(A, SMS, "promotional", t + 86400 * 3, "Asia/Tokyo")
    assert policy.snapshot() == before
    policy.forget(A)
    assert len(policy) == 0
    assert allowed(policy.check(A, SMS, "promotional", t, None))


def test_hour_boundaries_in_a_half_hour_zone() -> None:
    kolkata = "Asia/Kolkata"  # UTC+5:30: local hours start at :30 UTC
    policy = make(cap(1, "hour"), zone=kolkata)
    assert allowed(send(policy, utc(2026, 5, 1, 9, 30)))  # 15:00 local
    assert not allowed(send(policy, utc(2026, 5, 1, 10, 29, 59)))  # 15:59:59
    assert allowed(send(policy, utc(2026, 5, 1, 10, 30)))  # 16:00


def test_day_boundaries_in_a_zone_with_an_offset() -> None:
    kolkata = "Asia/Kolkata"  # the local day starts at 18:30 UTC
    policy = make(cap(1, "day"), zone=kolkata)
    assert allowed(send(policy, utc(2026, 5, 1, 18, 29, 59)))
    assert allowed(send(policy, utc(2026, 5, 1, 18, 30)))
    assert not allowed(send(policy, utc(2026, 5, 2, 18, 29, 59) + 0.5))
    assert allowed(send(policy, utc(2026, 5, 2, 18, 30)))


def test_week_starts_monday_at_local_midnight() -> None:
    policy = make(cap(1, "week"), zone=BERLIN)
    # Monday 2026-03-23 00:00 CET; the week holds the spring-forward Sunday (167 hours)
    assert allowed(send(policy, utc(2026, 3, 22, 23)))
    assert not allowed(send(policy, utc(2026, 3, 22, 22, 59, 59)))  # the Sunday before: older, counted as it
    assert not allowed(send(policy, utc(2026, 3, 29, 21, 59, 59)))  # Sunday 23:59:59 CEST
    assert allowed(send(policy, utc(2026, 3, 29, 22)))  # Monday 2026-03-30 00:00 CEST
    # the week of the autumn change has 169 hours: Monday 2026-10-19 00:00 CEST .. 2026-10-26 00:00 CET
    autumn = make(cap(1, "week"), zone=BERLIN)
    assert allowed(send(autumn, utc(2026, 10, 18, 22)))
    assert not allowed(send(autumn, utc(2026, 10, 25, 22, 59, 59)))
    assert allowed(send(autumn, utc(2026, 10, 25, 23)))


def test_days_of_23_and_25_hours() -> None:
    spring = make(cap(1, "day"), zone=BERLIN)  # 2026-03-29: 23:00 UTC Mar 28 .. 22:00 UTC Mar 29
    assert allowed(send(spring, utc(2026, 3, 28, 23)))
    assert not allowed(send(spring, utc(2026, 3, 29, 21, 59, 59)))
    assert allowed(send(spring, utc(2026, 3, 29, 22)))
    autumn = make(cap(1, "day"), zone=BERLIN)  # 2026-10-25: 22:00 UTC Oct 24 .. 23:00 UTC Oct 25
    assert allowed(send(autumn, utc(2026, 10, 24, 22)))
    assert not allowed(send(autumn, utc(2026, 10, 25, 22, 30)))  # 23:30 CET, hour 25 of the day
    assert allowed(send(autumn, utc(2026, 10, 25, 23)))


def test_the_repeated_hour_is_two_hours() -> None:
    policy = make(cap(1, "hour"), zone=BERLIN)
    assert allowed(send(policy, utc(2026, 10, 25, 0, 10)))  # 02:10 CEST
    assert not allowed(send(policy, utc(2026, 10, 25, 0, 50)))  # 02:50 CEST
    assert allowed(send(policy, utc(2026, 10, 25, 1, 10)))  # 02:10 CET: the second 02:00 hour
    assert not allowed(send(policy, utc(2026, 10, 25, 1, 59, 59)))
    assert allowed(send(policy, utc(2026, 10, 25, 2)))  # 03:00 CET
    spring = make(cap(1, "hour"), zone=BERLIN)
    assert allowed(send(spring, utc(2026, 3, 29, 0, 30)))  # 01:30 CET
    assert allowed(send(spring, utc(2026, 3, 29, 1)))  # 03:00 CEST: 02:00 never came


def test_hour_day_and_week_caps_together() -> None:
    policy = make(cap(1, "hour"), cap(2, "day"), cap(3, "week"), zone=NAIROBI)
    day = at(NAIROBI, 2026, 5, 4, 9)  # a Monday
    assert allowed(send(policy, day))
    assert rule_of(policy.check(A, SMS, "promotional", day + 1800, None)) == "caps[0]"
    assert allowed(send(policy, day + 3600))
    assert rule_of(policy.check(A, SMS, "promotional", day + 7200, None)) == "caps[1]"
    assert allowed(send(policy, day + 86400))
    assert rule_of(policy.check(A, SMS, "promotional", day + 2 * 86400, None)) == "caps[2]"
    assert allowed(send(policy, day + 7 * 86400))


def test_caps_and_quiet_hours_defer_first_then_count_at_send_time() -> None:
    policy = make(cap(1, "day"), quiet_hours=quiet("21:00", "08:00"), zone=NAIROBI)
    assert allowed(send(policy, at(NAIROBI, 2026, 5, 1, 10)))
    # in quiet hours the contact is deferred, not suppressed: at 08:00 it is another day
    verdict = policy.check(A, SMS, "promotional", at(NAIROBI, 2026, 5, 1, 22), None)
    assert isinstance(verdict, Deferred)
    assert allowed(send(policy, verdict.until))


def test_a_late_contact_counts_in_the_latest_period() -> None:
    policy = make(cap(1, "day"))
    policy.record(A, SMS, "promotional", utc(2026, 5, 2, 9), None)
    policy.record(A, SMS, "promotional", utc(2026, 5, 1, 9), None)  # reported late
    assert policy.snapshot()["subscribers"] == [[A, [int(utc(2026, 5, 2))], [2]]]
    assert not allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 1, 12), None))
    assert allowed(policy.check(A, SMS, "promotional", utc(2026, 5, 3), None))


def test_prune_drops_only_subscribers_whose_periods_are_over() -> None:
    policy = make(cap(1, "hour"), cap(2, "week", STK))
    monday = utc(2026, 5, 4, 9)
    policy.record(A, SMS, "promotional", monday, None)
    policy.record(B, STK, "promotional", monday, None)
    assert policy.prune(monday + 3 * 86400) == 0  # A's week counter (0) still has its period open
    assert len(policy) == 2
    assert policy.prune(utc(2026, 5, 11) + 86400) == 2
    assert len(policy) == 0


# --- snapshots -------------------------------------------------------------------------------------


def test_snapshot_round_trip_through_json_makes_the_same_decisions() -> None:
    caps = (cap(2, "day", SMS), cap(3, "week"), cap(1, "hour", purpose="subscriber_initiated"))
    policy = make(*caps, quiet_hours=quiet("21:00", "08:00"), dnd=(B,), zone=BERLIN, version=3)
    t = utc(2026, 5, 4, 9)
    for msisdn, channel, purpose, offset in [
        (A, SMS, "promotional", 0),
        (A, STK, "promotional", 60),
        (A, SMS, "subscriber_initiated", 120),
        ("254700000003", SMS, "promotional", 30),
    ]:
        assert allowed(send(policy, t + offset, channel, purpose, msisdn=msisdn))
    policy.add_do_not_disturb("254700000004")
    text = json.dumps(policy.snapshot(), allow_nan=False)
    snapshot = json.loads(text)
    assert snapshot["version"] == 1 and snapshot["policy_version"] == 3
    restored = make(*caps, quiet_hours=quiet("21:00", "08:00"), dnd=(B,), zone=BERLIN, version=3)
    restored.restore(snapshot)
    assert restored.snapshot() == policy.snapshot()
    assert len(restored) == len(policy) == 2
    for msisdn in (A, B, "254700000003", "254700000004"):
        for channel in Channel:
            for purpose in ("promotional", "subscriber_initiated", "transactional"):
                for offset in (300, 3600, 12 * 3600, 86400):
                    now = t + offset
                    assert restored.check(msisdn, channel, purpose, now, None) == policy.check(
                        msisdn, channel, purpose, now, None
                    )


def test_restore_under_another_policy_maps_counters_by_name() -> None:
    old = make(cap(2, "day", SMS), cap(5, "week"))
    t = utc(2026, 5, 4, 9)
    send(old, t)
    send(old, t + 1)
    new = make(cap(1, "hour"), cap(3, "day", SMS), version=2)  # a new hour counter, the day one kept
    new.restore(json.loads(json.dumps(old.snapshot())))
    assert new.snapshot()["counters"] == ["*/promotional/hour", "sms/promotional/day"]
    assert new.snapshot()["subscribers"] == [[A, [0, int(utc(2026, 5, 4))], [0, 2]]]
    assert allowed(send(new, t + 3600))  # the hour counter started at 0; the day one had 2 of 3
    assert new.check(A, SMS, "promotional", t + 7200, None) == Suppressed(
        "cap: 3 promotional sms per day", "caps[1]"
    )
    # a policy without caps keeps nobody
    bare = make(version=3)
    bare.restore(json.loads(json.dumps(old.snapshot())))
    assert len(bare) == 0


def _good() -> dict[str, Any]:
    return {
        "version": 1,
        "policy_version": 1,
        "periods": ["day"],
        "counters": ["sms/promotional/day"],
        "do_not_disturb": {"added": [], "removed": []},
        "subscribers": [[A, [1777593600], [1]]],
    }


def _with(**changes: object) -> dict[str, Any]:
    snapshot = _good()
    snapshot.update(changes)
    return snapshot


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        ([], "version 1"),
        (_with(version=2), "version 1"),
        (_with(policy_version=0), "policy_version"),
        (_with(policy_version=True), "policy_version"),
        (_with(periods="day"), "periods"),
        (_with(periods=["day", "day"]), "repeats"),
        (_with(periods=["fortnight"]), "periods must be"),
        (_with(counters=["sms/promotional/week"]), "counter"),
        (_with(counters=["fax/promotional/day"]), "counter"),
        (_with(counters=["sms/spam/day"]), "counter"),
        (_with(counters=["sms/promotional"]), "counter"),
        (_with(counters=[1]), "counters"),
        (_with(do_not_disturb=[]), "do_not_disturb"),
        (_with(do_not_disturb={"added": [1], "removed": []}), "msisdn strings"),
        (_with(do_not_disturb={"added": [A], "removed": [A]}), "both"),
        (_with(subscribers={}), "subscribers"),
        (_with(subscribers=[[A, [1]]]), "subscriber 0"),
        (_with(subscribers=[[1, [1], [1]]]), "subscriber 0"),
        (_with(subscribers=[[A, [1.5], [1]]]), "period"),
        (_with(subscribers=[[A, [], [1]]]), "period"),
        (_with(subscribers=[[A, [1], [-1]]]), "count"),
        (_with(subscribers=[[A, [1], [True]]]), "count"),
        (_with(subscribers=[[A, [1], [1, 2]]]), "count"),
        (_with(subscribers=[[A, [1], [1]], [A, [2], [1]]]), "repeats"),
    ],
)
def test_restore_rejects_bad_snapshots_and_keeps_the_state(snapshot: object, message: str) -> None:
    policy = make(cap(1, "day", SMS))
    policy.record(B, SMS, "promotional", utc(2026, 5, 4), None)
    policy.add_do_not_disturb("254700000009")
    before = policy.snapshot()
    with pytest.raises(ConfigError, match=message):
        policy.restore(snapshot)  # type: ignore[arg-type]
    assert policy.snapshot() == before
    policy.restore(_good())  # and the good one restores
    assert policy.snapshot()["subscribers"] == [[A, [1777593600], [1]]]


# --- the state machine -----------------------------------------------------------------------------

# None: the default zone; an unknown name: the default zone too
ZONES = [
    None,
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "America/Santiago",
    "No/Such_Zone",
]
STARTS = [
    utc(2026, 3, 27, 12),  # Europe and St John's (since 2026-03-08) in spring
    utc(2026, 10, 23, 12),  # Europe goes back on 2026-10-25
    utc(2026, 4, 3, 12),  # Lord Howe goes back half an hour, Santiago an hour at midnight, on 2026-04-05
    utc(2026, 9, 4, 12),  # Santiago goes forward at midnight on 2026-09-06
    utc(2026, 10, 30, 12),  # St John's goes back on 2026-11-01, Lord Howe forward on 2026-10-04
    utc(2026, 12, 30, 12),  # a year and an ISO week change
]
PURPOSES: list[Purpose] = ["promotional", "subscriber_initiated", "transactional"]
MSISDNS = ["254711000001", "254711000002", "254711000003"]

cap_rules = st.builds(
    CapRule,
    channel=st.sampled_from([None, SMS, STK]),
    purpose=st.sampled_from(PURPOSES),
    max=st.integers(0, 3),
    per=st.sampled_from(["hour", "day", "week"]),
)
# any hour, and often the hours clocks change at (01:00-03:00 in Europe, 02:00 in Lord Howe and St John's)
clock_times = st.builds(
    time_of_day,
    hour=st.one_of(st.integers(0, 23), st.sampled_from([1, 2, 3])),
    minute=st.sampled_from([0, 15, 30, 45]),
    second=st.just(0),
)
steps = st.one_of(
    st.integers(0, 900),
    st.integers(0, 6 * 3600),
    st.integers(0, 4 * 86400),
    st.sampled_from([1, 60, 1800, 3600, 86400]),
    st.floats(0, 7200, allow_nan=False),
)


# --- brute force over the local clock: quiet hours near every kind of clock change, and the model -----


def in_quiet_hours(q: QuietHours, zone: ZoneInfo, t: float) -> bool:
    """Brute force: the local wall clock at ``t`` in ``[start, end)`` (spanning midnight if start > end)."""
    local = datetime.fromtimestamp(int(t // 1), zone).time()
    if q.start < q.end:
        return q.start <= local < q.end
    return local >= q.start or local < q.end


def quiet_exit(q: QuietHours, zone: ZoneInfo, now: float) -> float:
    """The first instant after ``now`` out of quiet hours, minute by minute (every boundary, and every
    offset change of the zones used, is on a whole minute)."""
    t = (now // 60 + 1) * 60
    while in_quiet_hours(q, zone, t):
        t += 60
    return t


def check_deferral(q: QuietHours, zone: ZoneInfo, now: float, verdict: Deferred) -> None:
    """``until`` is the first instant out of quiet hours, unless the clock went back out of them (and
    will come back into them): then it is the local end."""
    until = verdict.until
    assert verdict.reason == "quiet hours"
    assert until > now and until == int(until)
    assert not in_quiet_hours(q, zone, until)
    assert in_quiet_hours(q, zone, until - 1)
    exit_ = quiet_exit(q, zone, now)
    ends = datetime.fromtimestamp(exit_, zone).time() == q.end
    before, after = (datetime.fromtimestamp(t, zone).utcoffset() for t in (exit_ - 1, exit_))
    assert before is not None and after is not None
    jumped_forward = after > before
    if ends or jumped_forward:
        assert until == exit_
    else:
        assert until > exit_
        assert datetime.fromtimestamp(until, zone).time() == q.end


# zones with their clock changes of 2026 (forward and back, at midnight, at a quarter to the hour)
DST_CHANGES = [
    ("Europe/Berlin", utc(2026, 3, 29, 1)),
    ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("America/St_Johns", utc(2026, 3, 8, 5, 30)),
    ("America/St_Johns", utc(2026, 11, 1, 4, 30)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),  # back half an hour
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),  # forward half an hour
    ("America/Santiago", utc(2026, 4, 5, 3)),  # 00:00 back to 23:00
    ("America/Santiago", utc(2026, 9, 6, 4)),  # 00:00 forward to 01:00
    ("America/Havana", utc(2026, 3, 8, 5)),
    ("America/Havana", utc(2026, 11, 1, 5)),
    ("Pacific/Chatham", utc(2026, 4, 4, 14)),  # 03:45 back to 02:45
    ("Pacific/Chatham", utc(2026, 9, 26, 14)),
    ("Asia/Kolkata", utc(2026, 3, 29, 1)),  # no change
]


@settings(max_examples=400, deadline=None)
@given(
    change=st.sampled_from(DST_CHANGES),
    start=clock_times,
    end=clock_times,
    offset=st.one_of(
        st.integers(-30 * 3600, 30 * 3600), st.integers(-2 * 3600, 2 * 3600).map(lambda s: s // 60 * 60)
    ),
)
def test_deferral_ends_at_the_first_instant_out_of_quiet_hours_near_dst_changes(
    change: tuple[str, float], start: time_of_day, end: time_of_day, offset: int
) -> None:
    if start == end:
        return
    zone, near = change
    q = QuietHours(start=start, end=end, action="defer")
    policy = make(quiet_hours=q, zone=zone)
    now = near + offset
    verdict = policy.check(A, SMS, "promotional", now, None)
    if in_quiet_hours(q, ZoneInfo(zone), now):
        assert isinstance(verdict, Deferred)
        check_deferral(q, ZoneInfo(zone), now, verdict)
        assert allowed(policy.check(A, SMS, "promotional", verdict.until, None))
    else:
        assert allowed(verdict)


@st.composite
def policy_configs(draw: st.DrawFn) -> PolicyConfig:
    start, end = draw(clock_times), draw(clock_times)
    quiet: QuietHours | None = None
    if start != end and draw(st.integers(0, 3)):
        quiet = QuietHours(start=start, end=end, action=draw(st.sampled_from(["defer", "drop"])))
    return PolicyConfig(
        kind="policy",
        version=draw(st.integers(1, 9)),
        default_timezone=draw(st.sampled_from(["UTC", "Europe/Berlin", "America/St_Johns"])),
        caps=tuple(draw(st.lists(cap_rules, max_size=4))),
        quiet_hours=quiet,
        do_not_disturb=tuple(draw(st.lists(st.sampled_from(MSISDNS), max_size=1))),
    )


@dataclass(frozen=True)
class Contact:
    msisdn: str
    channel: Channel
    purpose: str
    at: float


class PolicyMachine(RuleBasedStateMachine):
    """The engine's loop against a brute-force model of the policy (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.config = PolicyConfig(kind="policy", version=1)
        self.policy = ContactPolicy(self.config)
        self.zones: dict[str, str | None] = {}
        self.now = 0.0
        self.contacts: list[Contact] = []
        self.dnd: set[str] = set()
        self.pending: float | None = None

    @initialize(config=policy_configs(), zones=st.lists(st.sampled_from(ZONES), min_size=3, max_size=3))
    def start(self, config: PolicyConfig, zones: list[str | None]) -> None:
        self.config = config
        self.policy = ContactPolicy(config)
        self.zones = dict(zip(MSISDNS, zones, strict=True))
        self.dnd = set(config.do_not_disturb)

    @initialize(start=st.sampled_from(STARTS), back=st.integers(0, 3 * 86400))
    def clock(self, start: float, back: int) -> None:
        self.now = start - back

    # --- the model ---------------------------------------------------------------------------------

    def zone(self, msisdn: str) -> ZoneInfo:
        name = self.zones[msisdn]
        if name is None or name == "No/Such_Zone":
            name = self.config.default_timezone
        return ZoneInfo(name)

    @staticmethod
    def period(zone: ZoneInfo, t: float, per: str) -> object:
        local = datetime.fromtimestamp(int(t // 1), zone)
        if per == "hour":
            return (local.date(), local.hour, local.utcoffset())
        if per == "day":
            return local.date()
        return local.isocalendar()[:2]

    def expected(self, msisdn: str, channel: Channel, purpose: str) -> Verdict | type[Deferred]:
        zone = self.zone(msisdn)
        if purpose == "promotional":
            if msisdn in self.dnd:
                return Suppressed("do not disturb", "do_not_disturb")
            q = self.config.quiet_hours
            if q is not None and in_quiet_hours(q, zone, self.now):
                return Deferred if q.action == "defer" else Suppressed("quiet hours", "quiet_hours")
        for index, cap_rule in enumerate(self.config.caps):
            if cap_rule.purpose != purpose or cap_rule.channel not in (None, channel):
                continue
            current = self.period(zone, self.now, cap_rule.per)
            used = sum(
                1
                for c in self.contacts
                if c.msisdn == msisdn
                and c.purpose == purpose
                and cap_rule.channel in (None, c.channel)
                and self.period(zone, c.at, cap_rule.per) == current
            )
            if used + 1 > cap_rule.max:
                what = "contacts" if cap_rule.channel is None else cap_rule.channel.value
                return Suppressed(
                    f"cap: {cap_rule.max} {purpose} {what} per {cap_rule.per}", f"caps[{index}]"
                )
        return Allowed()

    # --- rules ----------------------------------------------------------------------------------

    @rule(seconds=steps)
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: self.pending is not None)
    @rule()
    def wait_for_the_deferral(self) -> None:
        assert self.pending is not None
        self.now = max(self.now, self.pending)
        self.pending = None

    @rule(
        msisdn=st.sampled_from(MSISDNS),
        channel=st.sampled_from(list(Channel)),
        purpose=st.sampled_from(PURPOSES),
        seconds=steps,
    )
    def attempt(self, msisdn: str, channel: Channel, purpose: str, seconds: float) -> None:
        self.now += seconds
        zone = self.zones[msisdn]
        before = self.policy.snapshot()
        verdict = self.policy.check(msisdn, channel, purpose, self.now, zone)
        assert self.policy.snapshot() == before  # check changes nothing
        expected = self.expected(msisdn, channel, purpose)
        if expected is Deferred:
            assert isinstance(verdict, Deferred)
            assert self.config.quiet_hours is not None
            check_deferral(self.config.quiet_hours, self.zone(msisdn), self.now, verdict)
            self.pending = verdict.until
        else:
            assert verdict == expected
        if isinstance(verdict, Allowed):
            self.policy.record(msisdn, channel, purpose, self.now, zone)
            self.contacts.append(Contact(msisdn, channel, purpose, self.now))

    @rule(msisdn=st.sampled_from(MSISDNS), stop=st.booleans())
    def do_not_disturb(self, msisdn: str, stop: bool) -> None:
        if stop:
            self.policy.add_do_not_disturb(msisdn)
            self.dnd.add(msisdn)
        else:
            self.policy.remove_do_not_disturb(msisdn)
            self.dnd.discard(msisdn)

    @rule()
    def restart(self) -> None:
        text = json.dumps(self.policy.snapshot(), allow_nan=False)
        restored = ContactPolicy(self.config)
        restored.restore(json.loads(text))
        assert restored.snapshot() == self.policy.snapshot()
        self.policy = restored

    @rule()
    def prune(self) -> None:
        self.policy.prune(self.now)

    @rule(msisdn=st.sampled_from(MSISDNS))
    def forget(self, msisdn: str) -> None:
        # forgetting a subscriber forgets its contacts: the model forgets them too
        self.policy.forget(msisdn)
        self.contacts = [c for c in self.contacts if c.msisdn != msisdn]

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def caps_never_exceeded(self) -> None:
        for rule_ in self.config.caps:
            counts: dict[tuple[str, object], int] = {}
            for c in self.contacts:
                if c.purpose == rule_.purpose and rule_.channel in (None, c.channel):
                    key = (c.msisdn, self.period(self.zone(c.msisdn), c.at, rule_.per))
                    counts[key] = counts.get(key, 0) + 1
            assert max(counts.values(), default=0) <= rule_.max, rule_

    @invariant()
    def nothing_promotional_in_quiet_hours(self) -> None:
        q = self.config.quiet_hours
        if q is None:
            return
        for c in self.contacts:
            if c.purpose == "promotional":
                assert not in_quiet_hours(q, self.zone(c.msisdn), c.at)

    @invariant()
    def remembers_only_subscribers_with_counted_contacts(self) -> None:
        assert len(self.policy) <= len(MSISDNS)


PolicyMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestPolicyMachine = PolicyMachine.TestCase

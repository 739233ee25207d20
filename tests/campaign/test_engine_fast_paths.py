"""The campaign engine's fast paths against the plain code they stand for (differential tests).

Each fast path of ``campaign_core.engine`` (and the two it uses in ``experiments`` and ``policy``) must
give exactly what the straightforward code gives, so that records, replies, ``tgw replay`` output and
snapshots do not depend on which one ran:

- records and commands built fast (``_record``, ``fast_constructor``: the C builder or the twin class) are the frozen
  dataclasses ``Record(...)`` / ``PushStk(...)`` build;
- the eligibility rules compiled once per campaign answer as ``eligibility_failure``;
- ``experiments.Assigner`` picks the arm ``assign`` picks;
- the deadline queue (``_Deadlines``) gives the entries in the order a heap of ``(when, offer id)``
  tuples gives them, duplicates included;
- the offer id is ``model.offer_id``; the affordable options (sized per affordability pattern, from the
  offer's packages sorted once) and the largest of them are those of sorting the affordable ones;
- ``ContactPolicy.check_planned`` / ``record_planned`` are ``check`` / ``record``, and
  ``contact_planned`` is ``check`` followed by ``record`` when the contact is allowed.
"""

from __future__ import annotations

import dataclasses
import heapq
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from engine_fixtures import CATALOGUE, NEW_UPSELL, POLICY, T0, campaign_set
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_core.codec import command_from_json, command_to_json
from campaign_core.config import (
    CampaignConfig,
    CapRule,
    CatalogueConfig,
    EligibilityConfig,
    ExperimentConfig,
    PolicyConfig,
)
from campaign_core.engine import (
    Engine,
    _compile_eligibility,
    _Deadlines,
    _push_stk,
    _query_credit,
    _record,
    _reply,
    _send_sms,
    eligibility_failure,
)
from campaign_core.experiments import Assigner, assign
from campaign_core.model import (
    ActivePackage,
    Channel,
    Command,
    CreditScored,
    OfferOption,
    Payment,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Reply,
    ResponseChannel,
    SendSms,
    TriggerKind,
    TriggerRaised,
    offer_id,
)
from campaign_core.policy import ALLOWED, PURPOSES, ContactPolicy

text = st.text(max_size=12)
money = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
details = st.dictionaries(st.text(max_size=6), st.none() | st.integers() | text, max_size=4)

# --- records and commands ------------------------------------------------------------------------


@given(
    kind=st.sampled_from(RecordKind),
    at=st.floats(allow_nan=False, allow_infinity=False),
    msisdn=text,
    campaign_id=st.none() | text,
    variant=st.none() | text,
    key=st.none() | text,
    detail=st.none() | details,
)
def test_a_record_built_fast_is_the_dataclass(  # noqa: PLR0917 - one per field
    kind: RecordKind,
    at: float,
    msisdn: str,
    campaign_id: str | None,
    variant: str | None,
    key: str | None,
    detail: dict[str, object] | None,
) -> None:
    detail = {} if detail is None else detail
    fast = _record(kind, at, msisdn, campaign_id, variant, key, detail)
    plain = Record(kind, at, msisdn, campaign_id, variant, key, detail)
    assert type(fast) is Record
    assert fast == plain and repr(fast) == repr(plain)
    assert command_from_json(command_to_json(fast)) == plain
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.kind = RecordKind.CLOSED  # type: ignore[misc]
    assert dataclasses.replace(fast, at=0.0) == dataclasses.replace(plain, at=0.0)


def test_a_record_is_built_from_every_field_and_nothing_else() -> None:
    with pytest.raises(TypeError):
        _record(RecordKind.TRIGGER, T0, "1")  # the engine passes every field: no defaults to get wrong
    with pytest.raises(TypeError):
        _record(RecordKind.TRIGGER, T0, "1", None, None, None, {}, None)


def test_commands_built_fast_are_the_dataclasses() -> None:
    option = OfferOption("data-100mb", 100, Decimal("50"), Payment.CREDIT, "*123*100#")
    pairs: list[tuple[Command, Command]] = [
        (_query_credit("o:score", "1", 5.0), QueryCredit("o:score", "1", 5.0)),
        (
            _push_stk("o:0", "o", "1", "c", "confirm", (option,), "t"),
            PushStk("o:0", "o", "1", "c", "confirm", (option,), "t"),
        ),
        (_send_sms("o:1", "1", "c", "t", None, True), SendSms("o:1", "1", "c", "t")),
        (_send_sms("o:c", "1", "c", "t", "o", False), SendSms("o:c", "1", "c", "t", "o", promotional=False)),
        (
            _reply("r", "1", ResponseChannel.USSD, True, "t"),
            Reply("r", "1", ResponseChannel.USSD, True, "t"),
        ),
    ]
    for fast, plain in pairs:
        assert type(fast) is type(plain) and fast == plain and hash(fast) == hash(plain)
        assert command_to_json(fast) == command_to_json(plain)


# --- eligibility -----------------------------------------------------------------------------------

PACKAGE_IDS = ["data-100mb", "data-1gb", "monthly"]
DATES = ["2026-05-25", "2026-06-01", "2026-06-03", "2026-06-08", "2026-06-10", "2026-13-01"]

rules = st.fixed_dictionaries(
    {},
    optional={
        "segments": st.lists(st.sampled_from(["prepaid", "youth", ""]), max_size=2),
        "exclude_segments": st.lists(st.sampled_from(["corporate", "youth"]), max_size=2),
        "min_tenure_days": st.integers(0, 400),
        "packages": st.lists(st.sampled_from(PACKAGE_IDS), max_size=2),
        "package_duration_days": st.integers(1, 30),
        "ends_in_days": st.integers(0, 10),
        "recurring": st.booleans(),
        "trial": st.booleans(),
        "stk_capable": st.booleans(),
        "attributes": st.dictionaries(st.sampled_from(["region", "plan"]), st.sampled_from(["a", "b"]), max_size=2),
    },
)  # fmt: skip
held = st.builds(
    ActivePackage,
    st.sampled_from(PACKAGE_IDS),
    st.sampled_from(DATES),
    st.sampled_from(DATES),
    st.booleans(),
    st.booleans(),
)
profiles = st.builds(
    Profile,
    st.just("254700000001"),
    st.sampled_from(["prepaid", "youth", "corporate", ""]),
    st.integers(-5, 900),
    st.none(),
    st.booleans(),
    st.lists(held, max_size=3).map(tuple),
    st.dictionaries(st.sampled_from(["region", "plan"]), st.sampled_from(["a", "b"]), max_size=2),
)


@settings(max_examples=300)
@given(
    written=rules,
    profile=profiles,
    package_id=st.none() | st.sampled_from(PACKAGE_IDS),
    day=st.integers(0, 12),
    zone=st.sampled_from(["Africa/Nairobi", "Pacific/Chatham", "America/New_York"]),
)
def test_compiled_eligibility_answers_as_eligibility_failure(
    written: dict[str, Any], profile: Profile, package_id: str | None, day: int, zone: str
) -> None:
    campaign = CampaignConfig.model_validate({**NEW_UPSELL, "eligibility": written})
    assert campaign.eligibility.model_fields_set == set(written)
    trigger = TriggerRaised("t", TriggerKind.EXHAUSTED, profile.msisdn, T0, package_id, 100)
    now = datetime(2026, 6, 1, 20, 30, tzinfo=UTC).timestamp() + day * 86400
    compiled = _compile_eligibility(campaign.eligibility)
    expected = eligibility_failure(campaign, profile, trigger, now, zone)
    if compiled is None:
        assert not written and expected is None
    else:
        assert compiled(profile, trigger, now, zone) == expected


def test_no_rule_written_compiles_to_nothing_even_with_defaults_spelled_out() -> None:
    assert _compile_eligibility(EligibilityConfig()) is None
    spelled = EligibilityConfig.model_validate({"min_tenure_days": 0})
    check = _compile_eligibility(spelled)
    assert check is not None  # written: every rule is checked, as eligibility_failure does
    odd = Profile("1", tenure_days=-1)
    trigger = TriggerRaised("t", TriggerKind.EXHAUSTED, "1", T0)
    assert check(odd, trigger, T0, "UTC") == "tenure -1 days < 0"


# --- experiments ----------------------------------------------------------------------------------


@st.composite
def experiments(draw: st.DrawFn) -> ExperimentConfig:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=4)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    arms = [{"name": f"arm{i}", "share": share, "campaign": "c"} for i, share in enumerate(shares)]
    arms[-1] = {"name": "control", "share": shares[-1], "control": True}
    return ExperimentConfig.model_validate(
        {"kind": "experiment", "id": "x", "salt": draw(st.text(min_size=1, max_size=8)), "arms": arms}
    )


@given(experiment=experiments(), msisdns=st.lists(st.text(max_size=15), min_size=1, max_size=20))
def test_the_assigner_picks_the_arm_assign_picks(experiment: ExperimentConfig, msisdns: list[str]) -> None:
    assigner = Assigner(experiment)
    for msisdn in msisdns:
        assert assigner(msisdn) is assign(experiment, msisdn)


# --- deadlines ------------------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from([1.0, 2.0, 2.5, 3.0]), st.sampled_from("abcde")),
        st.tuples(st.just("pop"), st.none(), st.none()),
        st.tuples(st.just("first"), st.none(), st.none()),
    ),
    max_size=60,
)


@given(operations)
def test_the_deadline_queue_is_a_heap_of_time_and_id(ops: list[tuple[str, Any, Any]]) -> None:
    heap: list[tuple[float, str]] = []
    queue = _Deadlines()
    for op, when, key in ops:
        if op == "push":
            heapq.heappush(heap, (when, key))
            queue.push(when, key)
        elif heap:
            assert queue.times[0] == heap[0][0]
            assert (queue.pop() if op == "pop" else queue.first()) == (
                heapq.heappop(heap) if op == "pop" else heap[0]
            )
        assert bool(queue.times) == bool(heap)
    while heap:
        assert queue.pop() == heapq.heappop(heap)
    assert not queue.times


# --- offers: ids, affordable options, the largest -------------------------------------------------

catalogues = st.lists(
    st.tuples(st.sampled_from([100, 200, 500]), st.sampled_from(["20", "20.00", "50", "90"])),
    min_size=1,
    max_size=5,
)


def _reference_options(
    packages: list[dict[str, Any]], offered: list[str], payment: str, balance: Decimal, credit: Decimal
) -> list[OfferOption]:
    """The affordable options as sorting them gives (the engine's _size before it kept them)."""
    by_id = {p["id"]: p for p in packages}
    options: list[OfferOption] = []
    for package_id in offered:
        package = by_id[package_id]
        price = Decimal(package["price"])
        chosen = None
        if payment != "credit" and price <= balance:
            chosen = Payment.BALANCE
        elif payment != "balance" and price <= credit:
            chosen = Payment.CREDIT
        if chosen is not None:
            options.append(OfferOption(package_id, package["volume_mb"], price, chosen, package["ussd_code"]))
    options.sort(key=lambda o: (o.volume_mb, o.price))
    return options


@settings(max_examples=150)
@given(
    catalogue=catalogues,
    picks=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    payment=st.sampled_from(["balance_then_credit", "balance", "credit"]),
    balance=money,
    credit=money,
    trigger_id=st.text(min_size=1, max_size=20),
)
def test_offer_ids_and_options_are_those_of_the_plain_code(  # noqa: PLR0917 - the parts of the case
    catalogue: list[tuple[int, str]],
    picks: list[int],
    payment: str,
    balance: Decimal,
    credit: Decimal,
    trigger_id: str,
) -> None:
    packages = [
        {"id": f"p{i}", "volume_mb": volume, "price": price, "ussd_code": f"*1*{i}#"}
        for i, (volume, price) in enumerate(catalogue)
    ]
    offered = [f"p{i % len(packages)}" for i in picks]  # repeats and equal (volume, price) included
    campaign = {
        **NEW_UPSELL,
        "offer": {"packages": offered, "payment": payment, "expires_after": "1h"},
    }
    prices = CatalogueConfig.model_validate({**CATALOGUE, "packages": packages})
    engine = Engine(dataclasses.replace(campaign_set(campaigns=[campaign]), catalogue=prices))
    msisdn = "254700000001"
    engine.handle(ProfileUpdated(Profile(msisdn)), T0)
    out = engine.handle(TriggerRaised(trigger_id, TriggerKind.EXHAUSTED, msisdn, T0), T0)
    key = offer_id("upsell-exhaustion", trigger_id)
    assert [c.offer_id for c in out if isinstance(c, Record) and c.kind is RecordKind.ELIGIBLE] == [key]
    out = engine.handle(CreditScored(f"{key}:score", msisdn, balance, credit), T0 + 1)
    expected = _reference_options(packages, offered, payment, balance, credit)
    view = engine.offer(key)
    if not expected:
        assert view is None  # nothing affordable: closed
        return
    assert view is not None and list(view.options) == expected
    assert [str(o.price) for o in view.options] == [str(o.price) for o in expected]
    (push,) = [c for c in out if isinstance(c, PushStk)]
    assert push.options == (max(expected, key=lambda o: (o.volume_mb, o.price)),)


# --- contact policy -------------------------------------------------------------------------------


@given(
    contacts=st.lists(
        st.tuples(
            st.sampled_from(list(Channel)),
            st.sampled_from(PURPOSES),
            st.sampled_from(["1", "2"]),
            st.integers(0, 4 * 86400),
        ),
        max_size=25,
    )
)
def test_planned_check_and_record_are_check_and_record(contacts: list[tuple[Channel, str, str, int]]) -> None:
    config = PolicyConfig.model_validate(
        {
            **POLICY,
            "caps": [
                *POLICY["caps"],
                CapRule(purpose="subscriber_initiated", max=3, per="hour").model_dump(),
                CapRule(purpose="promotional", max=3, per="week").model_dump(),
            ],
        }
    )
    plain, planned = ContactPolicy(config), ContactPolicy(config)
    for channel, purpose, msisdn, offset in sorted(contacts, key=lambda c: c[3]):
        now = T0 + offset
        plan = planned.contact_plan(channel, purpose)
        assert planned.check_planned(plan, msisdn, now, None) == plain.check(
            msisdn, channel, purpose, now, None
        )
        plain.record(msisdn, channel, purpose, now, None)
        planned.record_planned(plan, msisdn, now, None)
        assert planned.snapshot() == plain.snapshot()


@given(
    contacts=st.lists(
        st.tuples(
            st.sampled_from(list(Channel)),
            st.sampled_from(PURPOSES),
            st.sampled_from(["1", "2", "254700000999"]),  # the last is on the do-not-disturb list
            st.integers(0, 4 * 86400),
            st.sampled_from([None, "Africa/Nairobi", "America/New_York"]),
        ),
        max_size=25,
    ),
    extra_caps=st.sampled_from(
        [
            [],
            [{"purpose": "subscriber_initiated", "max": 2, "per": "hour"}],
            [
                {"purpose": "promotional", "max": 3, "per": "week"},
                {"channel": "sms", "purpose": "transactional", "max": 0, "per": "day"},
            ],
        ]
    ),
    quiet=st.sampled_from(["defer", "drop", None]),
)
def test_contact_planned_is_check_then_record_when_allowed(
    contacts: list[tuple[Channel, str, str, int, str | None]],
    extra_caps: list[dict[str, Any]],
    quiet: str | None,
) -> None:
    quiet_hours = None if quiet is None else {**POLICY["quiet_hours"], "action": quiet}
    config = PolicyConfig.model_validate(
        {**POLICY, "caps": [*POLICY["caps"], *extra_caps], "quiet_hours": quiet_hours}
    )
    plain, planned = ContactPolicy(config), ContactPolicy(config)
    for channel, purpose, msisdn, offset, zone in sorted(contacts, key=lambda c: c[3]):
        now = T0 + offset
        verdict = plain.check(msisdn, channel, purpose, now, zone)
        if verdict is ALLOWED:
            plain.record(msisdn, channel, purpose, now, zone)
        assert planned.contact_planned(planned.contact_plan(channel, purpose), msisdn, now, zone) == verdict
        assert planned.snapshot() == plain.snapshot()


def test_an_unknown_purpose_is_refused_by_the_plan_too() -> None:
    policy = ContactPolicy(PolicyConfig.model_validate(POLICY))
    with pytest.raises(ValueError, match="purpose"):
        policy.contact_plan(Channel.SMS, "spam")


@given(
    days=st.lists(st.integers(0, 6), min_size=1, max_size=12),
    later=st.integers(0, 8 * 86400),
    caps=st.sampled_from(
        [POLICY["caps"], [*POLICY["caps"], {"purpose": "promotional", "max": 5, "per": "week"}]]
    ),
)
def test_prune_drops_whom_every_period_left_behind(
    days: list[int], later: int, caps: list[dict[str, Any]]
) -> None:
    policy = ContactPolicy(PolicyConfig.model_validate({**POLICY, "caps": caps}))
    for index, day in enumerate(days):
        policy.record(f"2547{index:08d}", Channel.SMS, "promotional", T0 + day * 86400, None)
    now = T0 + later
    rows = policy.snapshot()["subscribers"]
    lengths = {"hour": 3600, "day": 86400, "week": 7 * 86400}
    periods = policy.snapshot()["periods"]
    stale = {
        msisdn
        for msisdn, starts, _counts in rows
        if all(start <= now - lengths[period] - 86400 for start, period in zip(starts, periods, strict=True))
    }
    assert policy.prune(now) == len(stale)
    assert {row[0] for row in policy.snapshot()["subscribers"]} == {row[0] for row in rows} - stale

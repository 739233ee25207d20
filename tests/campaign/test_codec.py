"""The JSON forms of the campaign engine's events and commands (campaign_core.codec): hypothesis
round-trips through JSON text for every type, and the errors that name the field on bad input."""

from __future__ import annotations

import json
import typing
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_core.codec import (
    COMMAND_TYPES,
    EVENT_TYPES,
    command_from_json,
    command_to_json,
    event_from_json,
    event_to_json,
)
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    ActivePackage,
    Channel,
    Command,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    OfferDropped,
    OfferOption,
    Payment,
    Profile,
    ProfileUpdated,
    Purchased,
    PushStk,
    QueryCredit,
    Record,
    RecordKind,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    SubmitFailed,
    Tick,
    TriggerKind,
    TriggerRaised,
)
from protocols.errors import DecodeError

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
times = st.floats(allow_nan=False, allow_infinity=False)
money = st.decimals(allow_nan=False, allow_infinity=False)
attributes = st.dictionaries(text, text, max_size=3)
json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | times | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

packages = st.builds(ActivePackage, text, text, text, st.booleans(), st.booleans())
profiles = st.builds(
    Profile,
    text,
    text,
    st.integers(),
    st.none() | text,
    st.booleans(),
    st.lists(packages, max_size=3).map(tuple),
    attributes,
)
options = st.builds(OfferOption, text, st.integers(), money, st.sampled_from(Payment), text)

EVENTS: dict[type[Any], st.SearchStrategy[Any]] = {
    TriggerRaised: st.builds(
        TriggerRaised,
        text,
        st.sampled_from(TriggerKind),
        text,
        times,
        st.none() | text,
        st.none() | st.integers(),
        attributes,
    ),
    ProfileUpdated: st.builds(ProfileUpdated, profiles),
    CreditScored: st.builds(CreditScored, text, text, money, money),
    CreditFailed: st.builds(CreditFailed, text, text, text),
    SubmitFailed: st.builds(SubmitFailed, text, text),
    DeliveryReported: st.builds(DeliveryReported, text, st.booleans(), text),
    Responded: st.builds(
        Responded, text, text, st.sampled_from(ResponseChannel), st.none() | text, st.none() | text
    ),
    Activated: st.builds(Activated, text, text, st.sampled_from(Payment), money),
    ActivationFailed: st.builds(ActivationFailed, text, text, st.booleans()),
    Purchased: st.builds(Purchased, text, text, text, money, times),
    OfferDropped: st.builds(OfferDropped, text, text, text, st.none() | text, text),
    Tick: st.just(Tick()),
}

COMMANDS: dict[type[Any], st.SearchStrategy[Any]] = {
    QueryCredit: st.builds(QueryCredit, text, text, times),
    PushStk: st.builds(PushStk, text, text, text, text, text, st.lists(options, max_size=4).map(tuple), text),
    SendSms: st.builds(SendSms, text, text, text, text, st.none() | text, st.booleans()),
    Activate: st.builds(Activate, text, text, text, st.sampled_from(Payment), money),
    Reply: st.builds(Reply, text, text, st.sampled_from(ResponseChannel), st.booleans(), text),
    Record: st.builds(
        Record,
        st.sampled_from(RecordKind),
        times,
        text,
        st.none() | text,
        st.none() | text,
        st.none() | text,
        st.dictionaries(text, json_data, max_size=4),
    ),
}


def through_text(data: dict[str, Any]) -> Any:
    """What a store or a log file gives back: the object through JSON text."""
    return json.loads(json.dumps(data, allow_nan=False, ensure_ascii=False))


def test_every_event_and_command_type_is_covered() -> None:
    assert set(EVENT_TYPES.values()) == set(typing.get_args(Event)) == set(EVENTS)
    assert set(COMMAND_TYPES.values()) == set(typing.get_args(Command)) == set(COMMANDS)


@pytest.mark.parametrize("cls", list(EVENTS), ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_event_round_trip(cls: type[Any], data: st.DataObject) -> None:
    event = data.draw(EVENTS[cls])
    encoded = event_to_json(event)
    assert encoded["type"] == cls.__name__
    decoded = event_from_json(through_text(encoded))
    assert decoded == event
    assert event_to_json(decoded) == encoded  # Decimals keep their exact text (exponent, trailing zeros)


@pytest.mark.parametrize("cls", list(COMMANDS), ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_command_round_trip(cls: type[Any], data: st.DataObject) -> None:
    command = data.draw(COMMANDS[cls])
    encoded = command_to_json(command)
    assert encoded["type"] == cls.__name__
    decoded = command_from_json(through_text(encoded))
    assert decoded == command
    assert command_to_json(decoded) == encoded


def test_the_json_form_is_plain_and_readable() -> None:
    option = OfferOption("data-200mb", 200, Decimal("90.00"), Payment.CREDIT, "*123*200#")
    push = PushStk("k:0", "k", "254700000001", "upsell", "confirm", (option,), "Get 200 MB")
    assert command_to_json(push) == {
        "type": "PushStk",
        "command_id": "k:0",
        "offer_id": "k",
        "msisdn": "254700000001",
        "campaign_id": "upsell",
        "style": "confirm",
        "options": [
            {"package_id": "data-200mb", "volume_mb": 200, "price": "90.00", "payment": "credit", "ussd_code": "*123*200#"}
        ],
        "text": "Get 200 MB",
    }  # fmt: skip
    profile = ProfileUpdated(Profile("1", packages=(ActivePackage("p", "2026-06-01", "2026-07-01"),)))
    assert event_to_json(profile)["profile"]["packages"] == [
        {"package_id": "p", "start_date": "2026-06-01", "end_date": "2026-07-01", "recurring": False, "trial": False}
    ]  # fmt: skip
    assert event_to_json(Tick()) == {"type": "Tick"}


def test_defaults_may_be_left_out_and_integers_stand_for_floats() -> None:
    event = event_from_json({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "1", "event_time": 5})  # fmt: skip
    assert event == TriggerRaised("t", TriggerKind.EXHAUSTED, "1", 5.0)
    assert isinstance(event, TriggerRaised) and isinstance(event.event_time, float)
    assert event_from_json({"type": "DeliveryReported", "command_id": "k:0", "delivered": True}) == (
        DeliveryReported("k:0", True, "DELIVRD")
    )
    sms = command_from_json(
        {"type": "SendSms", "command_id": "c", "msisdn": "1", "campaign_id": "x", "text": "hi"}
    )
    assert sms == SendSms("c", "1", "x", "hi")


BAD_EVENTS: list[tuple[object, str]] = [
    ([], "event: expected a JSON object"),
    ({}, "event.type: None is not one of"),
    ({"type": "Record"}, "event.type: 'Record' is not one of"),  # a command is not an event
    ({"type": "TriggerRaised", "kind": "exhausted", "msisdn": "1", "event_time": 1}, "TriggerRaised.trigger_id: missing"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "used_up", "msisdn": "1", "event_time": 1}, "TriggerRaised.kind: 'used_up' is not one of"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "1", "event_time": "soon"}, "TriggerRaised.event_time: expected a number, got 'soon'"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "1", "event_time": True}, "TriggerRaised.event_time: expected a number"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "1", "event_time": 1, "level": 9.5}, "TriggerRaised.level: expected an integer"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": 254, "event_time": 1}, "TriggerRaised.msisdn: expected a string"),
    ({"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "1", "event_time": 1, "attributes": {"a": 1}}, "TriggerRaised.attributes.a: expected a string"),
    ({"type": "Tick", "at": 5}, "Tick.at: unknown field"),
    ({"type": "CreditScored", "request_id": "r", "msisdn": "1", "balance": 10.5, "credit_limit": "1"}, "CreditScored.balance: expected a decimal written as a string"),
    ({"type": "CreditScored", "request_id": "r", "msisdn": "1", "balance": "ten", "credit_limit": "1"}, "CreditScored.balance: 'ten' is not a decimal"),
    ({"type": "CreditScored", "request_id": "r", "msisdn": "1", "balance": "NaN", "credit_limit": "1"}, "CreditScored.balance: 'NaN' is not a finite decimal"),
    ({"type": "ProfileUpdated", "profile": {"msisdn": "1", "packages": [{"package_id": "p", "start_date": "x"}]}}, "ProfileUpdated.profile.packages[0].end_date: missing"),
    ({"type": "ProfileUpdated", "profile": {"msisdn": "1", "packages": {}}}, "ProfileUpdated.profile.packages: expected an array"),
    ({"type": "ProfileUpdated", "profile": {"msisdn": "1", "stk_capable": "yes"}}, "ProfileUpdated.profile.stk_capable: expected true or false"),
    ({"type": "Responded", "response_id": "r", "msisdn": "1", "channel": "fax"}, "Responded.channel: 'fax' is not one of"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_EVENTS)
def test_bad_event_names_the_field(data: object, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        event_from_json(data)
    assert message in str(info.value)


BAD_COMMANDS: list[tuple[object, str]] = [
    ({"type": "Tick"}, "command.type: 'Tick' is not one of"),
    ({"type": "Record", "kind": "trigger", "at": 1, "msisdn": "1", "detail": []}, "Record.detail: expected an object"),
    ({"type": "Record", "kind": "nope", "at": 1, "msisdn": "1"}, "Record.kind: 'nope' is not one of"),
    ({"type": "PushStk", "command_id": "c", "offer_id": "o", "msisdn": "1", "campaign_id": "x", "style": "confirm", "text": "t", "options": [{"package_id": "p", "volume_mb": 1, "price": "1", "payment": "cash", "ussd_code": "*1#"}]}, "PushStk.options[0].payment: 'cash' is not one of"),
    ({"type": "Activate", "offer_id": "o", "msisdn": "1", "package_id": "p", "payment": "credit"}, "Activate.price: missing"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_COMMANDS)
def test_bad_command_names_the_field(data: object, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        command_from_json(data)
    assert message in str(info.value)


def test_encoding_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"Record.detail.x: .* is not a finite number"):
        command_to_json(Record(RecordKind.CONTACT, 1.0, "1", detail={"x": float("nan")}))
    with pytest.raises(ValueError, match=r"Record.detail.d: Decimal is not JSON data"):
        command_to_json(Record(RecordKind.CONTACT, 1.0, "1", detail={"d": Decimal(1)}))
    with pytest.raises(ValueError, match="not one of"):
        event_to_json(Reply("r", "1", ResponseChannel.USSD, True, "x"))  # type: ignore[arg-type]


def test_tuples_in_a_record_detail_come_back_as_arrays() -> None:
    record = Record(
        RecordKind.CONTACT, 1.0, "1", "c", None, "o", {"options": ("a", "b"), "channel": Channel.SMS.value}
    )
    decoded = command_from_json(through_text(command_to_json(record)))
    assert isinstance(decoded, Record) and decoded.detail == {"options": ["a", "b"], "channel": "sms"}


def test_an_activation_failure_logged_before_outcome_known_reads_as_known() -> None:
    """Event logs written before ``ActivationFailed.outcome_known`` existed still decode: a failure then
    was an answer (the gateway retried the unknown ones without storing them)."""
    old = {"type": "ActivationFailed", "offer_id": "o1", "reason": "HTTP 402"}
    assert event_from_json(old) == ActivationFailed("o1", "HTTP 402", outcome_known=True)
    unknown = ActivationFailed("o1", "billing unavailable", outcome_known=False)
    assert event_to_json(unknown)["outcome_known"] is False
    assert event_from_json(through_text(event_to_json(unknown))) == unknown
    with pytest.raises(DecodeError, match=r"ActivationFailed\.outcome_known: expected true or false"):
        event_from_json({**old, "outcome_known": "no"})

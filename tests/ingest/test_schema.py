"""The DPI event JSON schema (gateway.ingest.schema): what is accepted, what is refused and how the
refusal reads, JSON lines and arrays with per-line errors, and a fuzz rule (any bytes -> events or
errors, never an exception)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.schema import (
    EventError,
    json_schema,
    parse_event,
    parse_json,
    parse_json_lines,
)
from protocols.errors import DecodeError

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()

MakeDpi = Callable[..., dict[str, Any]]


def line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def test_a_full_event_becomes_a_usage_event(make_dpi: MakeDpi) -> None:
    raw = make_dpi(
        "ev-1",
        msisdn="+46701234567",
        kind="threshold",
        timestamp="2024-06-01T14:00:00.250+02:00",
        sequence=7,
        used_bytes=4_500,
        quota_bytes=5_000,
        percent=90,
        period="2024-06",
        vendor_extension={"cell": "A1"},  # unknown fields are ignored
    )
    event = parse_event(line(raw), "dpi:test")
    assert event == UsageEvent(
        event_id="ev-1",
        msisdn="46701234567",
        kind=UsageKind.THRESHOLD,
        package_id="pkg-5GB",
        event_time=T0 + 0.25,
        source="dpi:test",
        sequence=7,
        used_bytes=4_500,
        quota_bytes=5_000,
        percent=90.0,
        period="2024-06",
    )
    assert type(event.kind) is UsageKind


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-06-01T12:00:00Z", T0),
        ("2024-06-01T12:00:00z", T0),
        ("2024-06-01T09:30:00-02:30", T0),
        ("2024-06-01 12:00:00+00:00", T0),  # RFC 3339 section 5.6 NOTE: a space for T
        (T0, T0),
        (int(T0), T0),
        (T0 + 0.125, T0 + 0.125),
    ],
)
def test_timestamps_as_rfc3339_with_offset_or_epoch_seconds(
    make_dpi: MakeDpi, timestamp: object, expected: float
) -> None:
    event = parse_event(line(make_dpi("e", timestamp=timestamp)), "t")
    assert event.event_time == expected
    assert isinstance(event.event_time, float)


@pytest.mark.parametrize(
    ("fields", "percent"),
    [
        ({"used_bytes": 450, "quota_bytes": 500}, 90.0),
        ({"used_bytes": 600, "quota_bytes": 500}, 100.0),  # over quota: capped
        ({"used_bytes": 450, "quota_bytes": 0}, None),  # no quota: nothing to compute
        ({"used_bytes": 450}, None),
        ({"used_bytes": 450, "quota_bytes": 500, "percent": 42.5}, 42.5),  # given wins
        ({"used_bytes": None, "quota_bytes": None, "percent": None}, None),  # null is absent
    ],
)
def test_percent_is_computed_when_absent(
    make_dpi: MakeDpi, fields: dict[str, Any], percent: float | None
) -> None:
    assert parse_event(line(make_dpi("e", **fields)), "t").percent == percent


@pytest.mark.parametrize("kind", [k.value for k in UsageKind])
def test_every_kind_is_accepted(make_dpi: MakeDpi, kind: str) -> None:
    assert parse_event(line(make_dpi("e", kind=kind)), "t").kind is UsageKind(kind)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_id": None}, "event_id: required field is missing"),
        ({"event_id": ""}, "event_id: must have at least 1 character"),
        ({"event_id": 5}, "event_id: must be a string, got 5"),
        (
            {"msisdn": "4670abc"},
            'msisdn: must be 5 to 15 digits (E.164, an optional leading +), got "4670abc"',
        ),
        ({"msisdn": "1234"}, "msisdn: must be 5 to 15 digits"),
        ({"msisdn": "1234567890123456"}, "msisdn: must be 5 to 15 digits"),
        ({"msisdn": "++46701234567"}, "msisdn: must be 5 to 15 digits"),
        ({"msisdn": "46701234567\n"}, "msisdn: must be 5 to 15 digits"),
        ({"msisdn": 46701234567}, "msisdn: must be a string"),
        (
            {"kind": "quota"},
            'kind: must be one of usage, threshold, exhausted, payg_started, renewed, got "quota"',
        ),
        ({"package_id": None}, "package_id: required field is missing"),
        ({"timestamp": "2024-06-01T12:00:00"}, "has no UTC offset (RFC 3339 needs Z or +hh:mm)"),
        ({"timestamp": "yesterday"}, '"yesterday" is not an RFC 3339 date-time'),
        ({"timestamp": T0 * 1000}, "epoch seconds must be below 1e+11 (milliseconds?)"),
        ({"timestamp": -1}, "epoch seconds must not be negative"),
        ({"timestamp": True}, "timestamp: must be an RFC 3339 date-time string or epoch seconds, got true"),
        ({"timestamp": None}, "timestamp: required field is missing"),
        ({"sequence": "5"}, 'sequence: must be a whole number, got "5"'),
        ({"sequence": -1}, "sequence: must be at least 0, got -1"),
        ({"used_bytes": 1.5}, "used_bytes: must be a whole number, got 1.5"),
        ({"quota_bytes": True}, "quota_bytes: must be a whole number, got true"),
        ({"percent": 100.5}, "percent: must be at most 100, got 100.5"),
        ({"percent": "90"}, 'percent: must be a number, got "90"'),
        ({"period": ""}, "period: must have at least 1 character"),
        ({"period": 2}, "period: must be a string, got 2"),
    ],
)
def test_refusals_say_what_is_wrong(make_dpi: MakeDpi, change: dict[str, Any], message: str) -> None:
    raw = make_dpi("ev-bad")
    for key, value in change.items():
        if value is None and key in ("event_id", "package_id", "timestamp"):
            del raw[key]
        else:
            raw[key] = value
    with pytest.raises(DecodeError) as caught:
        parse_event(line(raw), "t")
    assert message in str(caught.value)


def test_several_errors_are_all_listed(make_dpi: MakeDpi) -> None:
    raw = make_dpi("e", msisdn="x", kind="nope", sequence="1")
    with pytest.raises(DecodeError) as caught:
        parse_event(line(raw), "t")
    text = str(caught.value)
    assert text.startswith("msisdn: ")
    assert "; kind: " in text
    assert "; sequence: " in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event_id": "e", "percent": NaN}', "percent: must be a finite number"),
        (b"[]", "an event must be a JSON object, not an array"),
        (b'"text"', "an event must be a JSON object, not a string"),
        (b"{", "invalid JSON: EOF while parsing an object"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_non_events_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_event(body, "t")
    assert message in str(caught.value)


def test_json_lines_keep_the_good_and_number_the_bad(make_dpi: MakeDpi) -> None:
    body = b"\n".join(
        [
            line(make_dpi("a")),
            b"",  # blank lines are skipped but counted
            b"{not json",
            line(make_dpi("b", msisdn="12")),
            line(make_dpi("c")) + b"\r",  # CRLF line ends
            b"   ",
            b"[1, 2]",
            line(make_dpi("d", kind="exhausted")),
            b"",
        ]
    )
    parsed = parse_json_lines(body, "dpi:http")
    assert [event.event_id for event in parsed.events] == ["a", "c", "d"]
    assert {event.source for event in parsed.events} == {"dpi:http"}
    assert [(error.line, error.event_id) for error in parsed.errors] == [(3, None), (4, "b"), (7, None)]
    assert parsed.errors[0].error.startswith("invalid JSON: ")
    assert parsed.errors[1].error.startswith("msisdn: must be 5 to 15 digits")
    assert parsed.errors[2].error == "an event must be a JSON object, not an array"
    assert parsed.errors[1].to_json() == {"line": 4, "event_id": "b", "error": parsed.errors[1].error}
    assert "event_id" not in parsed.errors[0].to_json()


def test_an_empty_json_lines_body_is_one_error() -> None:
    assert parse_json_lines(b"\n \n", "t").errors == [EventError(0, "empty body: no events")]


def test_json_body_one_object_or_an_array(make_dpi: MakeDpi) -> None:
    one = parse_json(line(make_dpi("a")), "t")
    assert [event.event_id for event in one.events] == ["a"]
    assert one.errors == []
    many = parse_json(json.dumps([make_dpi(str(i)) for i in range(5)]).encode(), "t")
    assert [event.event_id for event in many.events] == ["0", "1", "2", "3", "4"]
    assert many.errors == []


def test_json_array_items_are_judged_one_by_one(make_dpi: MakeDpi) -> None:
    items = [make_dpi("a"), 5, make_dpi("c", sequence=-3), make_dpi("d"), {"event_id": "e"}]
    parsed = parse_json(json.dumps(items).encode(), "t")
    assert [event.event_id for event in parsed.events] == ["a", "d"]
    assert [(error.line, error.event_id) for error in parsed.errors] == [(2, None), (3, "c"), (5, "e")]
    assert parsed.errors[0].error == "an event must be a JSON object, not a number"
    assert parsed.errors[1].error == "sequence: must be at least 0, got -3"
    assert "msisdn: required field is missing" in parsed.errors[2].error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "an empty body"),
        (b"  42", "not a JSON object or array"),
        (b'[{"event_id": "a"},', "invalid JSON: "),
        (b'{"event_id": "a"', "invalid JSON: "),
    ],
)
def test_json_body_level_errors_are_line_zero(body: bytes, message: str) -> None:
    parsed = parse_json(body, "t")
    assert parsed.events == []
    assert len(parsed.errors) == 1
    assert parsed.errors[0].line == 0
    assert message in parsed.errors[0].error


def test_a_single_bad_object_is_line_one_with_its_event_id(make_dpi: MakeDpi) -> None:
    parsed = parse_json(line(make_dpi("z", kind="bogus")), "t")
    assert parsed.errors == [EventError(1, parsed.errors[0].error, "z")]
    assert parsed.errors[0].error.startswith("kind: must be one of")


def test_the_json_schema_documents_the_required_fields() -> None:
    schema = json_schema()
    assert set(schema["required"]) == {"event_id", "msisdn", "kind", "package_id", "timestamp"}
    assert schema["properties"]["msisdn"]["pattern"] == r"^\+?[0-9]{5,15}$"


# --- generated -----------------------------------------------------------------------------------

events = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=40),
        "msisdn": st.from_regex(r"\A\+?[0-9]{5,15}\Z"),
        "kind": st.sampled_from([k.value for k in UsageKind]),
        "package_id": st.text(min_size=1, max_size=20),
        "timestamp": st.floats(min_value=0, max_value=4e9, allow_nan=False),
    },
    optional={
        "sequence": st.integers(min_value=0, max_value=2**40),
        "used_bytes": st.integers(min_value=0, max_value=2**50),
        "quota_bytes": st.integers(min_value=0, max_value=2**50),
        "percent": st.floats(min_value=0, max_value=100),
        "period": st.text(min_size=1, max_size=10),
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(events, max_size=8))
def test_generated_valid_events_survive_every_framing(batch: list[dict[str, Any]]) -> None:
    lines = parse_json_lines(b"\n".join(line(event) for event in batch), "s")
    array = parse_json(json.dumps(batch).encode(), "s")
    if not batch:
        assert lines.events == [] and array.events == []
        return
    assert lines.errors == [] and array.errors == []
    assert lines.events == array.events
    for raw, event in zip(batch, lines.events, strict=True):
        assert event.event_id == raw["event_id"]
        assert event.msisdn == raw["msisdn"].lstrip("+")
        assert event.event_time == raw["timestamp"]
        assert event.sequence == raw.get("sequence")
        if "percent" in raw:
            assert event.percent == raw["percent"]
        elif raw.get("quota_bytes") and "used_bytes" in raw:
            assert event.percent is not None and math.isclose(
                event.percent, min(100.0, raw["used_bytes"] * 100 / raw["quota_bytes"])
            )


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=120).map(str.encode))
def test_any_bytes_give_events_or_errors_never_an_exception(body: bytes) -> None:
    for parse in (parse_json, parse_json_lines):
        parsed = parse(body, "s")
        assert parsed.events or parsed.errors
        for error in parsed.errors:
            assert error.error and error.line >= 0

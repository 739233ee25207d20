"""The DPI event JSON schema (gateway.ingest.schema): what is accepted, what is refused and how the
refusal reads, JSON lines and arrays with per-line errors, and a fuzz rule (any bytes -> events or
errors, never an exception)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.schema import (
    DpiEvent,
    EventError,
    JsonLinesEvents,
    _validators,
    json_schema,
    parse_event,
    parse_json,
    parse_json_lines,
    to_usage_event,
)
from protocols.errors import DecodeError

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()

MakeDpi = Callable[..., dict[str, Any]]
DPI_EVENT = TypeAdapter(DpiEvent)


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
        ({"used_bytes": 10**400, "quota_bytes": 1}, 100.0),  # no OverflowError for absurd counts
        ({"used_bytes": 10**400, "quota_bytes": 10**401}, 10.0),
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


# --- the direct validator (JSON -> UsageEvent in pydantic-core) against DpiEvent -----------------


def reference(raw: bytes, source: str) -> UsageEvent | None:
    """What ``DpiEvent`` then ``to_usage_event`` make of one object (None: refused)."""
    try:
        return to_usage_event(DPI_EVENT.validate_json(raw), source)
    except ValidationError:
        return None


def direct(raw: bytes, source: str) -> UsageEvent | None:
    try:
        event: UsageEvent = _validators(source)[0](raw)
    except ValidationError:
        return None
    return event


def exactly(event: UsageEvent | None) -> str:
    """Equal events, and every value of the same type with the same bits (repr tells -0.0 from 0.0)."""
    return repr(None if event is None else [(type(value), value) for value in dataclasses.astuple(event)])


def anything() -> st.SearchStrategy[Any]:
    return st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.just([])


def mostly(valid: st.SearchStrategy[Any], *edges: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values nine times in ten, else values at and past the edges, or anything at all."""
    wrong = st.one_of(*edges, anything())
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: valid if n else wrong)


offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
date_times = st.datetimes(timezones=offsets).map(datetime.isoformat) | st.datetimes(timezones=offsets).map(
    lambda t: t.isoformat().replace("+00:00", "Z").replace("T", " ")
)
timestamps = mostly(
    st.floats(min_value=0, max_value=1e11, exclude_max=True)
    | st.integers(min_value=0, max_value=10**11 - 1)
    | date_times,
    st.floats(min_value=-10, max_value=2e11) | st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from([0, -0.0, 1e11, 1e11 - 1, 99999999999.99998, 2**53 + 1, math.inf, math.nan]),
    st.datetimes().map(datetime.isoformat),  # no offset
    st.from_regex(
        r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]{1,9})?([Zz]|[+-][0-2][0-9]:?[0-5][0-9])?\Z"
    ),
)
counts = mostly(
    st.none() | st.integers(min_value=0, max_value=2**70),
    st.integers(min_value=-5, max_value=-1),
    st.floats(min_value=-1, max_value=1e20),
)
names = mostly(st.text(min_size=1, max_size=10), st.just(""), st.text(min_size=255, max_size=257))
dpi_events = st.fixed_dictionaries(
    {
        "event_id": names,
        "msisdn": mostly(
            st.from_regex(r"\A[0-9]{5,15}\Z") | st.from_regex(r"\A\+[0-9]{5,15}\Z"),
            st.from_regex(r"\A\+{0,2}[0-9]{3,17}\n?\Z"),
            st.sampled_from(["1234", "+1234", "12345", "+12345", "++12345", "12345\n", "123456789012345"]),
            st.sampled_from(
                [
                    "+123456789012345",
                    "1234567890123456",
                    "+1234567890123456",
                    "\uff11\uff12\uff13\uff14\uff15",
                ]
            ),
        ),
        "kind": mostly(
            st.sampled_from([k.value for k in UsageKind]), st.sampled_from(["USAGE", "Usage", ""])
        ),
        "package_id": names,
        "timestamp": timestamps,
    },
    optional={
        "sequence": counts,
        "used_bytes": counts,
        "quota_bytes": counts,
        "percent": mostly(
            st.none() | st.floats(min_value=0, max_value=100),
            st.floats(min_value=-1, max_value=101),
            st.sampled_from([0, 100, -0.0, 100.0]),
        ),
        "period": mostly(
            st.none() | st.text(min_size=1, max_size=10), st.just(""), st.text(min_size=127, max_size=130)
        ),
        "source": anything(),
        "event_time": anything(),
    },
)
metered_events = st.fixed_dictionaries(
    {
        "event_id": st.just("m"),
        "msisdn": st.just("46701234567"),
        "kind": st.sampled_from([k.value for k in UsageKind]),
        "package_id": st.just("p"),
        "timestamp": timestamps,
        "used_bytes": st.integers(min_value=0, max_value=2**70),
        "quota_bytes": st.integers(min_value=0, max_value=2**70),
    },
    optional={"percent": st.none()},
)


@settings(max_examples=300, deadline=None)
@given(dpi_events | metered_events)
def test_the_direct_validator_takes_and_refuses_exactly_what_dpi_event_does(event: dict[str, Any]) -> None:
    raw = json.dumps(event).encode()  # NaN and Infinity included: pydantic's parser reads them
    expected = reference(raw, "dpi:test")
    assert exactly(direct(raw, "dpi:test")) == exactly(expected)
    parsed = parse_json_lines(raw, "dpi:test")  # the fast path and the slow path say the same
    assert exactly(parsed.events[0] if parsed.events else None) == exactly(expected)


EDGES: list[tuple[str, object]] = [
    *[("msisdn", m) for m in ("1234", "12345", "123456789012345", "1234567890123456", "012345", "12345\n")],
    *[("msisdn", m) for m in ("+1234", "+12345", "+123456789012345", "+1234567890123456", "++12345", "+")],
    *[("msisdn", m) for m in (" 12345", "12 345", "\uff11\uff12\uff13\uff14\uff15", "", 12345)],
    *[("event_id", "x" * n) for n in (0, 1, 256, 257)],
    *[("package_id", "x" * n) for n in (0, 1, 256, 257)],
    *[("period", p) for p in ("", "x", "x" * 128, "x" * 129, None, 5)],
    *[("kind", k) for k in ("usage", "USAGE", "renewed", "", None, 1)],
    *[
        (f, c)
        for f in ("sequence", "used_bytes", "quota_bytes")
        for c in (-1, 0, 2**64, 10**400, 1.0, True, "5", None)
    ],
    *[("percent", p) for p in (-0.0, 0, 100, 100.0000001, -1e-300, None, "90", True, math.nan, math.inf)],
    *[
        ("timestamp", t)
        for t in (0, -0.0, -1, 1e11, 1e11 - 1, 99999999999, 100000000000, 1.5, math.nan, True)
    ],
    *[("timestamp", t) for t in ("1717243200", "2024-06-01T12:00:00Z", "2024-06-01t12:00:00z", None, "")],
    *[
        ("timestamp", t)
        for t in ("2024-06-01T12:00:00", "2024-06-01T12:00:00+24:00", "2024-06-01T12:00:00+0200")
    ],
    *[
        ("timestamp", t)
        for t in ("2024-06-01T12:00:00.123456789-01:30", "2024-06-30T23:59:60Z", "2024-06-01Z")
    ],
    *[
        ("timestamp", t)
        for t in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2024-02-30T00:00Z")
    ],
]


@pytest.mark.parametrize(("field", "value"), EDGES)
def test_the_direct_validator_agrees_with_dpi_event_at_the_edges(
    make_dpi: MakeDpi, field: str, value: object
) -> None:
    for base in (make_dpi("e"), make_dpi("e", used_bytes=450, quota_bytes=500)):
        raw = json.dumps({**base, field: value}).encode()
        assert exactly(direct(raw, "s")) == exactly(reference(raw, "s"))
    without = make_dpi("e", used_bytes=450, quota_bytes=500)
    without.pop(field, None)
    raw = json.dumps(without).encode()
    assert exactly(direct(raw, "s")) == exactly(reference(raw, "s"))


def test_the_direct_validator_is_the_common_path(make_dpi: MakeDpi) -> None:
    """Typical events never need the DpiEvent path (which would cost as much again)."""
    for raw in (
        make_dpi("a", used_bytes=1, quota_bytes=3),
        make_dpi("b", msisdn="+46701234567", timestamp="2024-06-01T12:00:00.5+02:00", percent=None),
        make_dpi("c", sequence=3, period="p", percent=99.5, source="forged", event_time=1),
    ):
        event = direct(line(raw), "dpi:test")
        assert event is not None
        assert exactly(event) == exactly(reference(line(raw), "dpi:test"))
        assert event.source == "dpi:test"  # never taken from the event's own fields
    assert direct(line(make_dpi("b", msisdn="+46701234567")), "dpi:test").msisdn == "46701234567"  # type: ignore[union-attr]
    assert direct(line(make_dpi("a", used_bytes=1, quota_bytes=3)), "s").percent == 100 / 3  # type: ignore[union-attr]


def test_json_lines_keep_the_lines_that_gave_the_events(make_dpi: MakeDpi) -> None:
    good = b"\n".join(line(make_dpi(f"e{i}", percent=float(i))) for i in range(5)) + b"\n"
    parsed = parse_json_lines(good, "s")
    assert parsed.lines is good  # every line valid: the body itself, no copy
    bad = b"\r\n".join(
        [line(make_dpi("a")), b"{broken", b"", line(make_dpi("b", msisdn="12")), line(make_dpi("c")), b" "]
    )
    parsed = parse_json_lines(bad, "s")
    assert [event.event_id for event in parsed.events] == ["a", "c"]
    assert parsed.lines is not None and b"broken" not in parsed.lines and b'"b"' not in parsed.lines
    again = parse_json_lines(parsed.lines, "s")
    assert again.errors == [] and again.events == parsed.events
    assert parse_json_lines(b"{bad\n", "s").lines is None
    assert parse_json(json.dumps([make_dpi("a")]).encode(), "s").lines is None  # arrays: events journaled


def test_to_take_gives_the_events_with_their_lines(make_dpi: MakeDpi) -> None:
    body = b"\n".join(line(make_dpi(f"e{i}")) for i in range(3))
    parsed = parse_json_lines(body, "dpi:x")
    taken = parsed.to_take()
    assert isinstance(taken, JsonLinesEvents)
    assert list(taken) == parsed.events and len(taken) == 3 and taken[1] == parsed.events[1]
    assert taken[1:] == tuple(parsed.events[1:])
    assert taken.lines is body and taken.source == "dpi:x"
    assert JsonLinesEvents([], b"").source is None
    array = parse_json(json.dumps([make_dpi("a")]).encode(), "s")
    assert array.to_take() is array.events


@settings(max_examples=60, deadline=None)
@given(st.lists(dpi_events | metered_events, max_size=6))
def test_arrays_take_and_refuse_like_dpi_event_item_by_item(batch: list[dict[str, Any]]) -> None:
    parsed = parse_json(json.dumps(batch).encode(), "s")
    expected = [reference(json.dumps(item).encode(), "s") for item in batch]
    assert [exactly(event) for event in parsed.events] == [exactly(e) for e in expected if e is not None]
    assert [error.line for error in parsed.errors] == [
        i + 1 for i, e in enumerate(expected) if e is None
    ] or (not batch and parsed.errors == [])

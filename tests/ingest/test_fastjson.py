"""The optional C fast path of DPI JSON lines (gateway/ingest/_fastjson.c) against pydantic-core's
direct validator (``_validators(source)[0]`` of gateway/ingest/schema.py), the reference.

The module skips only when the extension is not built (CI builds it: it is an ext-module of the
project). Properties, over hypothesis lines (valid events with any field values, unknown scalar
fields, whitespace, nulls, integer and fraction and exponent numbers, long integers, strings at the
length limits; and wrong types, escapes, UTF-8, duplicate names, nested values, numbers out of range,
trailing garbage, truncated and mutated lines):

- whenever C takes a line, its event equals pydantic's, the type and bits of every field included
  (``kind`` the very UsageKind member); whenever pydantic refuses a line, C declines it;
- on the lines within C's remit (printable ASCII without escapes, numeric timestamps, scalars) C
  takes exactly what pydantic takes, so the fast path is really the common path (the bench lines
  among them);
- ``parse_json_lines`` and ``parse_json`` give equal results with the C path on and off, on bodies
  mixing good, bad and blank lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib.util
import json
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_schema import EDGES, dpi_events, metered_events

import gateway.ingest
from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest import schema
from gateway.ingest.schema import _KINDS, ParsedBatch, _validators, parse_json, parse_json_lines

C = pytest.importorskip(
    "gateway.ingest._fastjson",
    reason="gateway.ingest._fastjson is not built (pip install -e . with a C compiler builds it)",
)

SOURCE = "dpi:test"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


# --- the two sides ---------------------------------------------------------------------------------


def fast(body: bytes) -> UsageEvent | None:
    """C's event of a body that is one object (blank lines around it allowed); None: declined."""
    events: list[UsageEvent] = []
    if C.parse_lines(body, 0, events, UsageEvent, _KINDS, SOURCE) == len(body) and len(events) == 1:
        return events[0]
    return None


def direct(body: bytes) -> UsageEvent | None:
    try:
        event: UsageEvent = _validators(SOURCE)[0](body)
    except ValidationError:
        return None
    return event


def exactly(event: UsageEvent | None) -> str:
    """Equal events, every value of the same type with the same bits (repr tells -0.0 from 0.0)."""
    if event is None:
        return "None"
    values = [getattr(event, field.name) for field in dataclasses.fields(event)]
    return repr([(type(value), value) for value in values])


def agree(body: bytes) -> tuple[UsageEvent | None, UsageEvent | None]:
    """C's and pydantic's events of a body, checked: what C takes, pydantic takes alike."""
    mine, theirs = fast(body), direct(body)
    if mine is not None:
        assert theirs is not None, f"C took what pydantic refuses: {body!r}"
        assert exactly(mine) == exactly(theirs), body
        assert mine.kind is theirs.kind
        assert type(mine) is UsageEvent
    return mine, theirs


@contextmanager
def c_path(on: bool, gives_up: int | None = None) -> Iterator[None]:
    """Run the block with schema.py's C fast path switched on or off (the module globals it reads),
    ``gives_up``: after how many lines in a row it declines it leaves the rest to pydantic."""
    saved = schema._parse_lines, schema._C_GIVES_UP
    schema._parse_lines = C.parse_lines if on else None
    schema._C_GIVES_UP = saved[1] if gives_up is None else gives_up
    try:
        yield
    finally:
        schema._parse_lines, schema._C_GIVES_UP = saved


def shape(batch: ParsedBatch) -> Any:
    return ([exactly(event) for event in batch.events], batch.errors, batch.lines)


def same_batches(
    parse: Callable[[bytes, str], ParsedBatch], body: bytes, gives_up: int | None = None
) -> ParsedBatch:
    with c_path(on=True, gives_up=gives_up):
        with_c = parse(body, SOURCE)
    with c_path(on=False):
        without = parse(body, SOURCE)
    assert with_c == without
    assert shape(with_c) == shape(without)
    assert (with_c.lines is body) == (without.lines is body)  # the body itself when all lines are good
    return with_c


# --- lines -------------------------------------------------------------------------------------------

WS = st.text(alphabet=" \t\r", max_size=2)
PLAIN = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\')


def plain(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """A JSON string of printable ASCII without escapes: what C takes."""
    return st.text(PLAIN, min_size=min_size, max_size=max_size).map(lambda s: f'"{s}"')


def formatted(value: float, how: str, digits: int) -> str:
    return repr(value) if how == "r" else f"{value:.{digits}{how}}"


def floats(low: float, high: float) -> st.SearchStrategy[str]:
    """Number tokens of floats in [low, high], in the ways JSON writers put them."""
    return st.builds(
        formatted,
        st.floats(low, high),
        st.sampled_from(["r", "e", "E", "f", "g"]),
        st.integers(0, 20),
    )


NUMBER = st.from_regex(r"\A-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z")

# odd value tokens: each is tried in every field by test_every_field_with_every_odd_value, and drawn
# now and then by the hypothesis lines
ODD_SCALARS = ["true", "false", "null", "-0", "-0.0", "1E+2", "0e0", "1e400", "-1e400", "1e-400", "-5"]
ODD_STRINGS = [
    '"\x7f"',
    '"\x1f"',
    '"a\x1fb"',
    '"a\\/b"',
    '"\\u0041"',
    '"\\n"',
    '"a\tb"',
    '"\x00"',
    '"\u00e9"',
]
NESTED = ["[]", "{}", "[1]", '{"a":1}', '{"event_id":"x"}', '["usage"]', "[ ]", "{ }"]
NOT_JSON = [
    *["", "NaN", "Infinity", "-Infinity", "nul", "tru", "fals", "nulx", "nulll", "trux", "falsy", "nope"],
    *["-", "01", "00", "-01", "1.", ".5", "+1", "+0", "1e", "1e+", "1e+-1", "0.e1", "0x10", "1_000", "--1"],
    *['"', '"abc', "'a'", "abc", "1 2", '"a" "b"', ":", ","],
]
# past pydantic's 4300 digits, and past the 64 characters C takes
LONG_NUMBERS = ["9" * 4301, "-" + "9" * 4301, "1" * 65, "0." + "1" * 70, "1e" + "0" * 70, "1" * 64]
ANY_ODD = ODD_SCALARS + ODD_STRINGS + NESTED + NOT_JSON + LONG_NUMBERS
EDGE_TOKENS: dict[str, list[str]] = {
    "event_id": ['""', '"e"', f'"{"x" * 256}"', f'"{"x" * 257}"'],
    "msisdn": [
        *map(json.dumps, ["1234", "+1234", "12345", "+12345", "123456789012345", "+123456789012345"]),
        *map(json.dumps, ["1234567890123456", "+1234567890123456", "++12345", "+", "", " 12345", "12 345"]),
        *map(json.dumps, ["012345", "12345 ", "+-12345", "-12345", "1234a", "a12345", "12345+"]),
        *['"\uff11\uff12\uff13\uff14\uff15"', '"12345\\n"', '"\\u0031\\u0032345"', "12345"],
    ],
    "kind": [
        *['"USAGE"', '""', '"usage "', '"usag"', '"usagee"', '" usage"', '"Usage"', "1", '"usage\\u0000"'],
        *['"renewed"', '"payg"', '"payg_started"', '"payg_startedx"', '"threshold"', '"exhausted"'],
    ],
    "package_id": ['""', '"p"', f'"{"x" * 256}"', f'"{"x" * 257}"'],
    "timestamp": [
        *["-0", "-0.0", "-1", "1e11", "100000000000", "99999999999.999999", "99999999999.99999", "1e400"],
        *["99999999999", "0", "0.0", "1E10", "1e+10", "5e-324", "1e-400", "0e999", "1.5", "2e10"],
        *['"2024-06-01T12:00:00Z"', '"2024-06-01T12:00:00"', '"1717243200"', '"1717243200.5"'],
    ],
    "sequence": [
        *["-1", "-0", "1.0", "5e0", "05", '"5"', "1e2", "-9", "0.0", "0", "5"],
        *["999999999999999999", "1000000000000000000", "18446744073709551616", "9223372036854775808"],
    ],
    "percent": [
        *["-0", "-0.0", "100.0000001", "1e2", "100e0", "-1e-300", "101", "100.5", '"90"', "100", "100.0"],
        *["0", "0e5", "99.99999999999999999", "100.00000000000001", "1e-400", "5e-324", "50"],
    ],
    "period": ['""', '"p"', f'"{"x" * 128}"', f'"{"x" * 129}"', "5"],
}
EDGE_TOKENS["used_bytes"] = EDGE_TOKENS["quota_bytes"] = EDGE_TOKENS["sequence"]

SCALAR = st.one_of(plain(0, 8), NUMBER, st.integers(-(2**70), 2**70).map(str), st.sampled_from(ODD_SCALARS))
ODD_STRING = st.one_of(
    st.text(max_size=6).map(json.dumps),  # escapes, \uXXXX
    st.text(max_size=6).map(lambda s: json.dumps(s, ensure_ascii=False)),  # UTF-8 as it is
    st.text(max_size=4).map(lambda s: f'"{s}"'),  # raw: control characters, quotes, backslashes
    st.sampled_from(ODD_STRINGS),
)
ANY_VALUE = st.one_of(SCALAR, ODD_STRING, st.sampled_from(ANY_ODD))

REQUIRED = ("event_id", "msisdn", "kind", "package_id", "timestamp")
OPTIONAL = ("sequence", "used_bytes", "quota_bytes", "percent", "period")
IDS = st.one_of(plain(1, 12), plain(255, 256))
MSISDNS = st.from_regex(r"\A\+?[0-9]{5,15}\Z").map(json.dumps)
TIMESTAMPS = st.one_of(
    floats(0, 1e11),
    st.integers(0, 10**11 - 1).map(str),
    st.from_regex(r"\A(0|[1-9][0-9]{0,10})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?\Z"),
)
COUNTS = st.one_of(st.integers(0, 10**18 - 1).map(str), st.just("null"))
PERCENTS = st.one_of(floats(0, 100), st.integers(0, 100).map(str), st.just("null"))
PERIODS = st.one_of(plain(1, 10), plain(127, 128), st.just("null"))
UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["source", "event_time", "vendor", "Kind", "event_id ", "timestamp_ms", "e", ""]),
    plain(0, 10).map(lambda s: s[1:-1]).filter(lambda name: name not in {*REQUIRED, *OPTIONAL}),
)

PLAIN_FIELDS: dict[str, st.SearchStrategy[str]] = {
    "event_id": IDS,
    "msisdn": MSISDNS,
    "kind": st.sampled_from([json.dumps(kind.value) for kind in UsageKind]),
    "package_id": IDS,
    "timestamp": TIMESTAMPS,
    "sequence": COUNTS,
    "used_bytes": COUNTS,
    "quota_bytes": COUNTS,
    "percent": PERCENTS,
    "period": PERIODS,
}
EXTRA_ODD: dict[str, st.SearchStrategy[str]] = {
    "event_id": ODD_STRING,
    "msisdn": st.from_regex(r"\A\+{0,2}[0-9]{3,17}\Z").map(json.dumps),
    "package_id": ODD_STRING,
    "timestamp": NUMBER | floats(-10, 2e11),
    "sequence": st.integers(-5, 2**70).map(str) | NUMBER,
    "used_bytes": st.integers(-5, 2**70).map(str) | NUMBER,
    "quota_bytes": st.integers(-5, 2**70).map(str) | NUMBER,
    "percent": NUMBER | floats(-1, 101),
    "period": ODD_STRING | plain(127, 130),
}
ODD_FIELDS: dict[str, st.SearchStrategy[str]] = {
    name: st.one_of(st.sampled_from(EDGE_TOKENS[name]), EXTRA_ODD.get(name, st.nothing()), ANY_VALUE)
    for name in PLAIN_FIELDS
}
FAULTS = ["values", "values", "values", "missing", "duplicate", "escaped name", "odd unknown", "mutation"]


@st.composite
def event_lines(draw: st.DrawFn, odd: bool) -> bytes:
    """One JSON object on one line. ``odd``: one kind of fault, often the only one of the line, or
    something C leaves to pydantic (which may take it): odd field values, a field missing, a name
    twice, an escaped name, an odd value of an unknown field, a mutated line."""
    fault = draw(st.sampled_from(FAULTS)) if odd else None
    odd_fields = (
        draw(st.sets(st.sampled_from(REQUIRED + OPTIONAL), min_size=1, max_size=2))
        if fault == "values"
        else set()
    )
    pairs: list[tuple[str, str]] = []
    for name in REQUIRED + OPTIONAL:
        if name in REQUIRED or name in odd_fields or draw(st.booleans()):
            pairs.append((json.dumps(name), draw((ODD_FIELDS if name in odd_fields else PLAIN_FIELDS)[name])))
    for name in draw(st.lists(UNKNOWN_NAMES, max_size=3, unique=True)):
        pairs.append((json.dumps(name), draw(SCALAR)))
    if fault == "odd unknown":
        pairs.append((json.dumps(draw(UNKNOWN_NAMES)), draw(ANY_VALUE)))
    elif fault == "missing":
        del pairs[draw(st.integers(0, len(REQUIRED) - 1))]
    elif fault == "duplicate":
        name, value = pairs[draw(st.integers(0, len(pairs) - 1))]
        pairs.append((name, draw(st.just(value) | ANY_VALUE)))
    elif fault == "escaped name":
        escaped = ['"event\\u005fid"', '"x\\n"', '"k\u00e9"', '"\\u006bind"', '"a\x1fb"', '"source\\""']
        pairs.append((draw(st.sampled_from(escaped)), draw(st.sampled_from(['"v"', '"e"', '"usage"', "1"]))))
    order = draw(st.permutations(range(len(pairs))))
    members = [draw(WS) + pairs[i][0] + draw(WS) + ":" + draw(WS) + pairs[i][1] + draw(WS) for i in order]
    raw = (draw(WS) + "{" + ",".join(members) + "}" + draw(WS)).encode()
    return draw(mutated(raw)) if fault == "mutation" else raw


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    how = draw(st.sampled_from(["cut", "insert", "set", "append"]))
    at = draw(st.integers(0, len(raw)))
    junk = draw(
        st.sampled_from([b'"', b",", b"}", b"{", b"\\", b"x", b"\x00", b"\xff", b" ", b"\x0b", b"\x0c", b"-"])
        | st.binary(min_size=1, max_size=3)
    )
    if how == "cut":
        return raw[:at]
    if how == "insert":
        return raw[:at] + junk + raw[at:]
    if how == "set":
        return raw[:at] + junk[:1] + raw[at + 1 :]
    return raw + draw(st.sampled_from([b"x", b"{}", b",", b"}", b"]", b"0", b"\x00", b'"']))


PLAIN_LINES = event_lines(odd=False)
ODD_LINES = event_lines(odd=True)
TEST_SCHEMA_LINES = (dpi_events | metered_events).map(lambda event: json.dumps(event).encode())


# --- the extension is there, and the switch works ------------------------------------------------------


def test_the_extension_is_used_when_built() -> None:
    if schema._load_fastjson({}) is None:
        pytest.fail("gateway.ingest._fastjson imports but _load_fastjson does not load it")
    assert schema._load_fastjson({}) is C.parse_lines
    assert schema._load_fastjson({"TGW_PURE_PYTHON": "0"}) is C.parse_lines
    assert schema._load_fastjson({"TGW_PURE_PYTHON": ""}) is C.parse_lines


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_tgw_pure_python_forces_pydantic_alone(value: str) -> None:
    assert schema._load_fastjson({"TGW_PURE_PYTHON": value}) is None


def test_a_missing_extension_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a machine without a C compiler sees: the import fails
    monkeypatch.setitem(sys.modules, "gateway.ingest._fastjson", None)
    monkeypatch.delattr(gateway.ingest, "_fastjson", raising=False)
    assert schema._load_fastjson({}) is None


def test_the_field_order_is_usage_events() -> None:
    assert tuple(field.name for field in dataclasses.fields(UsageEvent)) == C.FIELDS


def test_the_kinds_are_the_usage_kind_members() -> None:
    assert {kind.value.encode(): kind for kind in UsageKind} == _KINDS
    assert len(_KINDS) == len(UsageKind)


# --- C takes the common lines ----------------------------------------------------------------------


def bench_event_line() -> Callable[[int], bytes]:
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    event_line: Callable[[int], bytes] = module.event_line
    return event_line


def test_c_takes_the_bench_lines() -> None:
    event_line = bench_event_line()
    for i in (0, 1, 999, 99_999, 100_000, 123_456, 250_001, 299_999):
        mine, _ = agree(event_line(i))
        assert mine is not None, f"C declined a plain event: {event_line(i)!r}"
    body = b"\n".join(event_line(i) for i in range(10_000)) + b"\n"
    events: list[UsageEvent] = []
    assert C.parse_lines(body, 0, events, UsageEvent, _KINDS, SOURCE) == len(body)
    assert len(events) == 10_000
    parsed = same_batches(parse_json_lines, body)
    assert parsed.errors == [] and parsed.lines is body
    assert [exactly(event) for event in parsed.events] == [exactly(event) for event in events]


def test_c_takes_the_events_of_the_other_tests(make_dpi: Callable[..., dict[str, Any]]) -> None:
    for raw in (
        make_dpi("a"),
        make_dpi("b", msisdn="+46701234567", sequence=7, used_bytes=4_500, quota_bytes=5_000),
        make_dpi("c", percent=None, used_bytes=1, quota_bytes=3, period="2024-06"),
        make_dpi("d", kind="payg_started", timestamp=1717243200, source="forged", event_time=1),
        make_dpi("e", kind="renewed", percent=99.5, used_bytes=10, quota_bytes=0),
    ):
        for body in (json.dumps(raw).encode(), json.dumps(raw, separators=(",", ":")).encode()):
            mine, _ = agree(body)
            assert mine is not None, body


@pytest.mark.parametrize(
    ("fields", "percent"),
    [
        ('"used_bytes":450,"quota_bytes":500', 90.0),
        ('"used_bytes":600,"quota_bytes":500', 100.0),
        ('"used_bytes":500,"quota_bytes":500', 100.0),
        ('"used_bytes":1,"quota_bytes":3', 100 / 3),
        ('"used_bytes":1,"quota_bytes":3,"percent":null', 100 / 3),
        (
            '"used_bytes":999999999999999998,"quota_bytes":999999999999999999',
            999999999999999998 * 100 / 999999999999999999,
        ),
        ('"used_bytes":450,"quota_bytes":0', None),
        ('"used_bytes":null,"quota_bytes":500', None),
        ('"quota_bytes":500', None),
        ('"used_bytes":450', None),
        ('"used_bytes":450,"quota_bytes":500,"percent":42.5', 42.5),
        ('"used_bytes":450,"quota_bytes":500,"percent":0', 0.0),
    ],
)
def test_the_computed_percent(fields: str, percent: float | None) -> None:
    body = b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,%s}' % (
        fields.encode()
    )
    mine, _ = agree(body)
    assert mine is not None
    assert exactly(mine) == exactly(dataclasses.replace(mine, percent=percent))


# --- differential ----------------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ODD_LINES)
def test_c_takes_only_what_pydantic_takes_and_alike(line: bytes) -> None:
    agree(line)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PLAIN_LINES)
def test_c_takes_every_plain_line_pydantic_takes(line: bytes) -> None:
    mine, theirs = agree(line)
    assert (mine is None) == (theirs is None), f"C declined a plain line pydantic takes: {line!r}"


@settings(max_examples=300, deadline=None)
@given(TEST_SCHEMA_LINES)
def test_the_lines_of_test_schema_agree(line: bytes) -> None:
    agree(line)


@pytest.mark.parametrize(("field", "value"), EDGES)
def test_the_edges_of_test_schema_agree(
    make_dpi: Callable[..., dict[str, Any]], field: str, value: object
) -> None:
    for base in (make_dpi("e"), make_dpi("e", used_bytes=450, quota_bytes=500)):
        for separators in ((", ", ": "), (",", ":")):
            agree(json.dumps({**base, field: value}, separators=separators).encode())
    without = make_dpi("e", used_bytes=450, quota_bytes=500)
    without.pop(field, None)
    agree(json.dumps(without).encode())


def odd_lines(field: str) -> Iterator[bytes]:
    """Lines of plain events with one odd value (or a plain one at an edge) for ``field``."""
    for token in EDGE_TOKENS.get(field, []) + ANY_ODD:
        for base in (
            '"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1',
            '"event_id":"e","msisdn":"+12345","kind":"renewed","package_id":"p","timestamp":1.5,'
            '"sequence":3,"used_bytes":450,"quota_bytes":500,"percent":null,"period":"2024-06","x":"y"',
        ):
            pairs = [pair.split(":", 1) for pair in base.split(",")]
            values = {name: value for name, value in pairs if name != json.dumps(field)}
            values[json.dumps(field)] = token  # replaced, or added at the end
            for gap in ("", " ", "\t\r "):
                yield (
                    "{"
                    + ",".join(f"{gap}{name}{gap}:{gap}{value}{gap}" for name, value in values.items())
                    + "}"
                ).encode()


@pytest.mark.parametrize("field", [*PLAIN_FIELDS, "x", "vendor"])
def test_every_field_with_every_odd_value(field: str) -> None:
    taken = 0
    for line in odd_lines(field):
        mine, _ = agree(line)
        taken += mine is not None
    assert taken  # the plain tokens among them


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        TIMESTAMPS,
        NUMBER,
        floats(0, 1e11),
        st.floats(0, 1e11).map(repr),
        st.floats(0, 1e-300).map(repr),  # subnormals
    ),
    st.one_of(floats(0, 100), NUMBER, st.floats(0, 100).map(repr), st.floats(99, 100).map(repr)),
)
def test_numbers_are_rounded_like_pydantic(timestamp: str, percent: str) -> None:
    body = (
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p",'
        b'"timestamp":%s,"percent":%s}' % (timestamp.encode(), percent.encode())
    )
    mine, theirs = agree(body)
    if theirs is not None and not timestamp.startswith("-") and not percent.startswith("-"):
        assert mine is not None, f"C declined plain numbers: {body!r}"


@pytest.mark.parametrize(
    "token",
    [
        "0",
        "0.0",
        "0e0",
        "0e999",
        "1e-400",
        "5e-324",
        "4.9406564584124654e-324",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "2.2250738585072011e-308",
        "2.2250738585072014e-308",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203126",
        "0.1",
        "0.30000000000000004",
        "123456789012345",
        "1234567890.12345",
        "1234567890.123456",
        "99999999999",
        "99999999999.99999",
        "99999999999.999999",
        "1e10",
        "1E10",
        "1e+10",
        "1e-22",
        "1e-23",
        "12345e-22",
        "123456789012345e-22",
        "1234567890123456e-22",
        "0.000000000000001",
        "1780000000.005",
        "1780000123.456",
        "9e9",
        "1" + "0" * 10,
        "1" + "0" * 11,
        "0." + "0" * 60 + "1",
        "1." + "0" * 61,
    ],
)
def test_numbers_at_the_edges(token: str) -> None:
    head = b'{"event_id": "e", "msisdn": "12345", "kind": "usage", "package_id": "p", '
    for body in (
        head + b'"timestamp": %s}' % token.encode(),
        head + b'"timestamp": 1, "percent": %s}' % token.encode(),
    ):
        mine, theirs = agree(body)
        if theirs is not None and len(token) <= 64:
            assert mine is not None, f"C declined a plain number: {body!r}"


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"{}",
        b"[]",
        b"null",
        b'{"event_id":"e"}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":"2024-06-01T12:00:00Z"}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":-0.0}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"sequence":1234567890123456789}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"x":[]}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"x":NaN}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"x":1,"x":1}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"kind":"usage"}',
        b'{"event_id":"\\u0065","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}',
        b'{"event_id":"\xc3\xa9","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}x',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,}',
        b'\xef\xbb\xbf{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}',
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,'
        + b",".join(b'"u%d":%d' % (i, i) for i in range(17))
        + b"}",  # more unknown names than C remembers
        # number tokens over 64 characters: pydantic refuses the first one (over 4300 digits)
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"x":%s}'
        % (b"9" * 4301),
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1,"x":%s}'
        % (b"1" * 65),
        b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1.%s}' % (b"0" * 63),
    ],
)
def test_c_declines(line: bytes) -> None:
    assert fast(line) is None
    agree(line)


def test_c_declines_the_line_and_says_where() -> None:
    good = b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}'
    body = good + b"\r\n \t\r\n\n" + good + b"\n" + b'{"event_id":"\\u0065"}\n' + good
    events: list[UsageEvent] = []
    stop = C.parse_lines(body, 0, events, UsageEvent, _KINDS, SOURCE)
    assert body[stop:].startswith(b'{"event_id":"\\u0065"}')
    assert len(events) == 2
    rest = body.index(b"\n", stop) + 1
    assert C.parse_lines(body, rest, events, UsageEvent, _KINDS, SOURCE) == len(body)
    assert len(events) == 3
    assert C.parse_lines(body, len(body), events, UsageEvent, _KINDS, SOURCE) == len(body)
    assert C.parse_lines(b"", 0, events, UsageEvent, _KINDS, SOURCE) == 0
    assert C.parse_lines(b" \x0b \n", 0, events, UsageEvent, _KINDS, SOURCE) == 0  # blank to Python only
    assert len(events) == 3


# --- parse_json_lines and parse_json with the C path on and off ---------------------------------------

BLANK = st.sampled_from([b"", b" ", b"\r", b" \t\r", b"\x0b", b"\x0c ", b"\t"])
ANY_LINE = st.one_of(PLAIN_LINES, ODD_LINES, BLANK, st.binary(max_size=20).filter(lambda b: b"\n" not in b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ANY_LINE, max_size=12),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.sampled_from([None, 1, 2, 3]),
)
def test_json_lines_parse_alike_with_and_without_c(
    lines: list[bytes], end: bytes, trailing: bool, gives_up: int | None
) -> None:
    body = end.join(lines) + (end if trailing else b"")
    same_batches(parse_json_lines, body, gives_up)


class Spy:
    """parse_lines, counting its calls and the events it made."""

    def __init__(self) -> None:
        self.calls = 0
        self.events = 0

    def __call__(self, body: bytes, start: int, events: list[UsageEvent], *args: Any) -> int:
        before = len(events)
        stop: int = C.parse_lines(body, start, events, *args)
        self.calls += 1
        self.events += len(events) - before
        return stop


@contextmanager
def spying() -> Iterator[Spy]:
    spy = Spy()
    saved = schema._parse_lines
    schema._parse_lines = spy
    try:
        yield spy
    finally:
        schema._parse_lines = saved


def test_c_goes_on_after_the_lines_it_declines() -> None:
    event_line = bench_event_line()
    odd = [
        event_line(i).replace(b'"timestamp":', b'"timestamp":"2026-05-28T12:00:00Z","t":') for i in range(100)
    ]
    body = b"\n".join(odd[i] if i % 5 == 0 else event_line(i) for i in range(100))  # each 5th: RFC 3339
    with spying() as spy:
        parsed = parse_json_lines(body, SOURCE)
    assert len(parsed.events) == 100 and not parsed.errors
    assert spy.events == 80 and spy.calls == 21
    assert parsed == same_batches(parse_json_lines, body)


def test_c_leaves_a_body_it_declines_line_after_line_to_pydantic() -> None:
    event_line = bench_event_line()
    lines = [
        event_line(i).replace(b'"timestamp":', b'"timestamp":"2026-05-28T12:00:00Z","t":') for i in range(100)
    ]
    lines[50] = b"{broken"
    body = b"\n".join([event_line(1000), b"", *lines, event_line(1001)]) + b"\n"
    with spying() as spy:
        parsed = parse_json_lines(body, SOURCE)
    assert spy.calls == 1 + schema._C_GIVES_UP  # the first call took a line
    assert spy.events == 1  # the first line, then the lines it declined
    assert len(parsed.events) == 101 and [error.line for error in parsed.errors] == [53]
    assert parsed == same_batches(parse_json_lines, body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PLAIN_LINES, min_size=1, max_size=6), st.booleans())
def test_good_bodies_parse_alike_and_keep_their_bytes(lines: list[bytes], trailing: bool) -> None:
    body = b"\n".join(lines) + (b"\n" if trailing else b"")
    parsed = same_batches(parse_json_lines, body)
    if not parsed.errors:
        assert parsed.lines is body


def test_json_lines_with_faults_parse_alike(make_dpi: Callable[..., dict[str, Any]]) -> None:
    def line(event: dict[str, Any]) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode()

    body = b"\n".join(
        [
            line(make_dpi("a")),
            b"",
            b"{not json",
            line(make_dpi("b", msisdn="12")),
            line(make_dpi("c")) + b"\r",
            b"   ",
            b"[1, 2]",
            line(make_dpi("d", timestamp="2024-06-01T12:00:00Z")),  # declined by C, taken by pydantic
            line(make_dpi("\u00e9", kind="exhausted")),
            b"\x0b",
            line(make_dpi("f")),
            b"",
        ]
    )
    parsed = same_batches(parse_json_lines, body)
    assert [event.event_id for event in parsed.events] == ["a", "c", "d", "\u00e9", "f"]
    assert [error.line for error in parsed.errors] == [3, 4, 7]
    assert parsed.lines is not None and b"not json" not in parsed.lines
    assert same_batches(parse_json_lines, parsed.lines).events == parsed.events
    assert same_batches(parse_json_lines, b"\n \n").errors[0].error == "empty body: no events"


SINGLE_BODIES = st.one_of(
    PLAIN_LINES,
    ODD_LINES,
    st.tuples(PLAIN_LINES, PLAIN_LINES).map(b"\n".join),  # two objects: not one JSON value
    st.tuples(BLANK, PLAIN_LINES, BLANK).map(b"\n".join),
    dpi_events.map(lambda event: json.dumps(event, indent=2).encode()),  # pretty-printed
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SINGLE_BODIES)
def test_single_object_bodies_parse_alike_with_and_without_c(body: bytes) -> None:
    same_batches(parse_json, body)


def test_a_single_object_body_takes_the_c_path(make_dpi: Callable[..., dict[str, Any]]) -> None:
    body = b"\n " + json.dumps(make_dpi("a", sequence=1)).encode() + b"\r\n"
    with spying() as spy:
        parsed = parse_json(body, SOURCE)
    assert (spy.calls, spy.events) == (1, 1)
    assert [event.event_id for event in parsed.events] == ["a"]
    with spying() as spy:
        parsed = parse_json(body + body, SOURCE)  # two objects: refused
    assert (spy.calls, spy.events) == (1, 2)
    assert parsed.events == [] and parsed.errors[0].error.startswith("invalid JSON: trailing characters")


# --- the events themselves, the arguments, reference counts -------------------------------------------


def test_events_are_usage_events_out_of_the_cycle_collector() -> None:
    event = fast(b'{"event_id":"e","msisdn":"+12345","kind":"usage","package_id":"p","timestamp":1.5}')
    assert event is not None
    assert type(event) is UsageEvent and event.msisdn == "12345" and event.source == SOURCE
    assert not gc.is_tracked(event)  # atoms and a UsageKind member: it cannot be in a garbage cycle
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.msisdn = "1"  # type: ignore[misc]
    assert dataclasses.replace(event, percent=1.0).percent == 1.0
    assert hash(event) == hash(
        direct(b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1.5}')
    )


class Source(str):
    """A str subclass: its instances have a __dict__."""


def test_other_bodies_and_sources_are_declined() -> None:
    body = b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}'
    events: list[UsageEvent] = []
    assert C.parse_lines(bytearray(body), 3, events, UsageEvent, _KINDS, SOURCE) == 3  # type: ignore[arg-type]
    assert C.parse_lines(body, 0, events, UsageEvent, _KINDS, Source(SOURCE)) == 0
    assert events == []
    with c_path(on=True):  # pydantic takes them, as it did before
        assert parse_json_lines(bytearray(body + b"\n" + body), SOURCE).events == [direct(body)] * 2  # type: ignore[arg-type]
        parsed = parse_json_lines(body, Source(SOURCE))
    assert type(parsed.events[0].source) is Source


class NotAnEvent:
    __slots__ = ("event_id",)


@dataclasses.dataclass(frozen=True, slots=True)
class SubEvent(UsageEvent):
    pass


def test_bad_arguments_raise() -> None:
    body = b'{"event_id":"e","msisdn":"12345","kind":"usage","package_id":"p","timestamp":1}'
    parse: Any = C.parse_lines
    with pytest.raises(TypeError, match="takes 6 positional arguments but 2 were given"):
        parse(body, 0)
    with pytest.raises(TypeError, match="events must be a list, kinds a dict"):
        parse(body, 0, (), UsageEvent, _KINDS, SOURCE)
    with pytest.raises(TypeError, match="events must be a list, kinds a dict"):
        parse(body, 0, [], UsageEvent, list(_KINDS.items()), SOURCE)
    with pytest.raises(TypeError, match="keys of kinds must be bytes"):
        parse(body, 0, [], UsageEvent, {"usage": UsageKind.USAGE}, SOURCE)
    for start in (-1, len(body) + 1):
        with pytest.raises(ValueError, match="start must be within the body"):
            parse(body, start, [], UsageEvent, _KINDS, SOURCE)
        with pytest.raises(ValueError, match="start must be within the body"):
            parse(bytearray(body), start, [], UsageEvent, _KINDS, SOURCE)
    for cls in (NotAnEvent, SubEvent, object(), dict):
        with pytest.raises(TypeError, match=r"cls must be a class|has no slot"):
            parse(body, 0, [], cls, _KINDS, SOURCE)
    events: list[UsageEvent] = []
    assert parse(body, 0, events, UsageEvent, _KINDS, SOURCE) == len(body)  # the cache is right again
    assert events and type(events[0]) is UsageEvent


def test_no_references_leak_on_any_path() -> None:
    good = b'{"event_id":"e","msisdn":"+12345","kind":"usage","package_id":"p","timestamp":1.25,"used_bytes":1,"quota_bytes":3,"period":"x","y":"z"}'
    body = b"\n".join([good, b"", good, b'{"event_id":"e","x":[1]}', good])
    kinds = dict(_KINDS)
    watched = [None, body, kinds, UsageEvent, SOURCE, *kinds.values(), *kinds]

    def run(n: int) -> None:
        for _ in range(n):
            events: list[UsageEvent] = []
            stop = C.parse_lines(body, 0, events, UsageEvent, kinds, SOURCE)
            C.parse_lines(body, body.index(b"\n", stop) + 1, events, UsageEvent, kinds, SOURCE)
            with contextlib.suppress(TypeError):
                C.parse_lines(body, 0, events, NotAnEvent, kinds, SOURCE)  # type: ignore[arg-type]
            assert len(events) == 3

    run(100)
    gc.disable()  # a collection in between would move the counts
    try:
        before = [sys.getrefcount(o) for o in watched]
        run(1000)
        after = [sys.getrefcount(o) for o in watched]
    finally:
        gc.enable()
    assert after == before
    tracemalloc.start()
    try:
        run(2000)
        first, _ = tracemalloc.get_traced_memory()
        run(20000)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 64 * 1024, f"{second - first} octets more after 20000 more rounds"

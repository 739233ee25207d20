"""The DPI event JSON schema: what a DPI/PCEF posts to ``POST /v1/events`` or publishes over MQTT.

One event is one JSON object (RFC 8259 section 4); a batch is a JSON array of them (section 5) or
JSON lines (one object per line, ``application/x-ndjson``, ``application/jsonl``). Fields:

``event_id`` (string, 1..256, required)
    Unique per notification at the source, so a re-delivery is recognised.
``msisdn`` (string, required)
    5 to 15 digits, E.164 (ITU-T E.164 section 6) without the ``+``; a leading ``+`` is accepted and
    stripped.
``kind`` (string, required)
    ``usage``, ``threshold``, ``exhausted``, ``payg_started`` or ``renewed`` (``UsageKind``).
``package_id`` (string, 1..256, required)
``timestamp`` (required)
    When the network saw the usage: an RFC 3339 section 5.6 ``date-time`` WITH its offset (``Z`` or
    ``+hh:mm``), or a number of seconds since the Unix epoch (below 1e11, so milliseconds are refused
    rather than read as a date in the year 50 000). Becomes ``UsageEvent.event_time``.
``sequence`` (integer >= 0), ``used_bytes`` / ``quota_bytes`` (integers >= 0), ``percent`` (number
0..100), ``period`` (string, 1..128): optional, ``null`` means absent. When ``percent`` is absent and
both byte counts are given (quota > 0), it is computed as ``used * 100 / quota`` (capped at 100).

Unknown fields are allowed and ignored (forward compatibility); the types of known fields are checked
strictly (``"5"`` is not an integer, ``true`` is not a number, ``NaN`` is refused).

The schema is a pydantic v2 ``TypedDict`` (``DpiEvent``), validated by pydantic-core from the raw bytes
(its Rust JSON parser and validator). Events are not validated through it but through a second
pydantic-core schema built from the very same field schemas that validates straight into
``UsageEvent`` (a dataclass schema: the instance is filled from Rust, neither a dict nor a Python
``__init__`` per event), with the ``+`` stripped, RFC 3339 times turned into epoch seconds and the
percent computed inside it (Python runs only for ``+`` numbers, date-time strings and missing
percents). Measured on the 2-core development box, a 10k-event JSON-lines body: 23k instructions per
event against 37k for ``DpiEvent`` then ``to_usage_event``. Whatever it refuses (a bad line, a blank
line) goes through ``DpiEvent`` again, which says exactly what is wrong, and which would take the
event should the two ever disagree (``tests/ingest/test_schema.py`` checks they never do).

JSON lines are validated line by line: one call per line costs no more than one call over the whole
body joined into an array, keeps line numbers exact, and cannot mistake two broken lines for one
object (a joined body could). Without the C fast path below, the direct validator is ``map``-ped
over the lines until a line is refused.

The C fast path (``gateway/ingest/_fastjson.c``, optional: not built, or ``TGW_PURE_PYTHON`` set to
anything but "" or "0", and pydantic-core does it all) walks the lines of the body and takes the
plain ones: names and strings of printable ASCII without escapes, numeric timestamps, scalar values
only, no name twice. Of those it makes the very ``UsageEvent`` the direct validator makes (same
values, same types; ``tests/ingest/test_fastjson.py`` checks it against pydantic), at about a
seventh of the cost (0.4 against 2.6 us per event of ``bench/ingest.py``'s lines, split included).
It stops at the first line it is not sure about, which goes to the direct validator and, if
refused there, to ``DpiEvent`` as above; then C goes on with the next line. A one-object JSON body
(``parse_json``) tries it too. Its events are left out of the cycle collector (see the C file).

The lines that gave the events are kept (``ParsedBatch.lines``: the body itself, not a copy, when every
line is valid): the journal stores them instead of re-encoding the events (``JsonLinesEvents``) and
replays them through ``parse_json_lines``, which gives the very same events again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NotRequired, overload

from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import ErrorDetails, SchemaValidator, core_schema
from typing_extensions import TypedDict  # pydantic refuses typing.TypedDict before Python 3.12

from campaign_core.usage import UsageEvent, UsageKind
from protocols._fast import pure_python_asked
from protocols.errors import DecodeError

__all__ = [
    "EPOCH_SECONDS_LIMIT",
    "NO_EVENTS",
    "DpiEvent",
    "EventError",
    "JsonLinesEvents",
    "ParsedBatch",
    "json_schema",
    "parse_event",
    "parse_json",
    "parse_json_lines",
    "to_usage_event",
]

EPOCH_SECONDS_LIMIT = 1e11
"""Numeric timestamps must be below this (year 5138): a value in milliseconds (1.7e12) is refused."""

MSISDN_PATTERN = r"^\+?[0-9]{5,15}$"

_Count = Annotated[int, Field(ge=0)]


@with_config(ConfigDict(strict=True, allow_inf_nan=False, extra="ignore"))
class DpiEvent(TypedDict):
    """One DPI event as validated (see the module docstring for the rules of each field)."""

    event_id: Annotated[str, Field(min_length=1, max_length=256)]
    msisdn: Annotated[str, Field(pattern=MSISDN_PATTERN)]
    kind: UsageKind
    package_id: Annotated[str, Field(min_length=1, max_length=256)]
    timestamp: Annotated[float, Field(ge=0, lt=EPOCH_SECONDS_LIMIT)] | AwareDatetime
    sequence: NotRequired[_Count | None]
    used_bytes: NotRequired[_Count | None]
    quota_bytes: NotRequired[_Count | None]
    percent: NotRequired[Annotated[float, Field(ge=0, le=100)] | None]
    period: NotRequired[Annotated[str, Field(min_length=1, max_length=128)] | None]


_ONE = TypeAdapter(DpiEvent)
_MANY = TypeAdapter(list[DpiEvent])
# pydantic-core's validators themselves: TypeAdapter.validate_json adds a Python call per event
_validate_one = _ONE.validator.validate_json
_validate_many = _MANY.validator.validate_json


# --- the C fast path (gateway/ingest/_fastjson.c) -------------------------------------------------

_ParseLines = Callable[[bytes, int, list[UsageEvent], type[UsageEvent], dict[bytes, UsageKind], str], int]

_KINDS = {kind.value.encode(): kind for kind in UsageKind}
"""What the C fast path makes of a ``kind`` value (the JSON octets of each member's value)."""


def _load_fastjson(environ: Mapping[str, str]) -> _ParseLines | None:
    """The C fast path's ``parse_lines``, or None if it is not built or ``TGW_PURE_PYTHON`` is set
    to anything but "" or "0"."""
    if pure_python_asked(environ):
        return None
    try:
        from gateway.ingest import _fastjson  # noqa: PLC0415 (here, so that tests can replay the choice)
    except ImportError:  # not built (no C compiler at install time): pydantic-core alone
        return None
    return _fastjson.parse_lines


# read once, at import; a module global read at call time, so tests can switch it off in-process
_parse_lines = _load_fastjson(os.environ)


# --- the direct validator: JSON -> UsageEvent in pydantic-core ------------------------------------

_MSISDN_DIGITS = r"^[0-9]{5,15}$"
_MSISDN_PLUS = r"^\+[0-9]{5,15}$"


def _strip_plus(msisdn: str) -> str:
    return msisdn[1:]


def _epoch_seconds(timestamp: datetime) -> float:
    return timestamp.timestamp()


def _used_percent(used: int, quota: int) -> float:
    """``used * 100 / quota`` capped at 100 (``quota`` > 0); never an OverflowError for huge counts."""
    return 100.0 if used >= quota else used * 100 / quota


def _computed_percent(data: dict[str, Any]) -> float | None:
    used = data.get("used_bytes")
    quota = data.get("quota_bytes")
    if quota and used is not None:
        return _used_percent(used, quota)
    return None


def _percent_for_null(_: None, info: core_schema.ValidationInfo) -> float | None:
    return _computed_percent(info.data)


def _usage_event_schema(source: str) -> core_schema.CoreSchema:
    """``DpiEvent``'s field schemas rearranged into ``UsageEvent``'s fields (see the module docstring)."""
    typed_dict: Any = _ONE.core_schema  # a typed-dict schema: its fields' schemas are reused as they are
    assert typed_dict["type"] == "typed-dict"

    def field(name: str) -> Any:
        return typed_dict["fields"][name]["schema"]

    def optional(name: str) -> core_schema.DataclassField:
        return core_schema.dataclass_field(name, core_schema.with_default_schema(field(name), default=None))

    timestamp = field("timestamp")
    number, date_time = timestamp["choices"]
    assert timestamp["type"] == "union" and (number["type"], date_time["type"]) == ("float", "datetime")
    percent = field("percent")
    assert percent["type"] == "nullable"
    arguments = [
        core_schema.dataclass_field("event_id", field("event_id")),
        core_schema.dataclass_field(
            "msisdn",
            core_schema.union_schema(
                [
                    core_schema.str_schema(pattern=_MSISDN_DIGITS),
                    core_schema.no_info_after_validator_function(
                        _strip_plus, core_schema.str_schema(pattern=_MSISDN_PLUS)
                    ),
                ],
                mode="left_to_right",
            ),
        ),
        core_schema.dataclass_field("kind", field("kind")),
        core_schema.dataclass_field("package_id", field("package_id")),
        core_schema.dataclass_field(
            "event_time",
            # the same union (and union mode) as DpiEvent's, a date-time becoming epoch seconds
            {
                **timestamp,
                "choices": [number, core_schema.no_info_after_validator_function(_epoch_seconds, date_time)],
            },
            validation_alias="timestamp",
        ),
        # never read from the input (a "source" key in the JSON is an unknown field, ignored)
        core_schema.dataclass_field(
            "source", core_schema.with_default_schema(core_schema.str_schema(), default=source), init=False
        ),
        optional("sequence"),
        optional("used_bytes"),
        optional("quota_bytes"),
        core_schema.dataclass_field(
            "percent",
            core_schema.with_default_schema(
                core_schema.union_schema(
                    [
                        percent["schema"],
                        core_schema.with_info_after_validator_function(
                            _percent_for_null, core_schema.none_schema()
                        ),
                    ],
                    mode="left_to_right",
                ),
                default_factory=_computed_percent,
                default_factory_takes_data=True,
            ),
        ),
        optional("period"),
    ]
    names = [argument["name"] for argument in arguments]
    assert names == [f.name for f in dataclasses.fields(UsageEvent)]
    return core_schema.dataclass_schema(
        UsageEvent,
        core_schema.dataclass_args_schema("UsageEvent", arguments, extra_behavior="ignore"),
        names,
        slots=True,
        frozen=True,
        config=typed_dict["config"],
    )


_usage_event_schema("")  # at import, not at the first event, should pydantic lay DpiEvent out otherwise


@functools.lru_cache(maxsize=64)
def _validators(
    source: str,
) -> tuple[Callable[[bytes | str], UsageEvent], Callable[[bytes], list[UsageEvent]]]:
    """The direct validators of one event and of an array of events, per source (sources are few)."""
    one = _usage_event_schema(source)
    return (
        SchemaValidator(one).validate_json,
        SchemaValidator(core_schema.list_schema(one)).validate_json,
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event, for documentation and for DPI vendors."""
    return _ONE.json_schema()


@dataclass(frozen=True, slots=True)
class EventError:
    """Why one event of a batch was refused.

    ``line`` is the 1-based line of a JSON-lines body, or the 1-based position in a JSON array (1 for
    a single object); 0 means the body as a whole (not JSON, not an object or array, empty).
    """

    line: int
    error: str
    event_id: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"line": self.line}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        out["error"] = self.error
        return out


NO_EVENTS = EventError(0, "an empty array: no events")
"""What adapters answer for a body that parsed to nothing at all (``[]``): a refusal must say why."""


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """The good events of a body and the errors of the bad ones; bad events never stop a batch.

    ``lines``: for a JSON-lines body, the lines that gave ``events`` (blank lines possibly among
    them), which ``parse_json_lines`` turns into the very same events again; None otherwise.
    """

    events: list[UsageEvent]
    errors: list[EventError]
    lines: bytes | None = None

    def to_take(self) -> Sequence[UsageEvent]:
        """What to hand to ``EventSink.take``: the events, with their lines when known."""
        if self.lines is None:
            return self.events
        return JsonLinesEvents(self.events, self.lines)


class JsonLinesEvents(Sequence[UsageEvent]):
    """Events together with the JSON lines they were validated from (``ParsedBatch.lines``).

    Handed to ``EventSink.take`` like any sequence of events. The journal recognises it: it stores
    the lines as they came instead of encoding every event again, and decodes them with
    ``parse_json_lines`` on replay. Immutable, so the lines and the events cannot drift apart; made
    by ``ParsedBatch.to_take`` (the lines must be exactly what ``parse_json_lines`` made the events of).
    """

    __slots__ = ("_events", "lines")

    def __init__(self, events: Iterable[UsageEvent], lines: bytes) -> None:
        self._events = tuple(events)
        self.lines = lines

    @property
    def source(self) -> str | None:
        """The source of every event (the parser gives them all the same); None when empty."""
        return self._events[0].source if self._events else None

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> UsageEvent: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[UsageEvent, ...]: ...

    def __getitem__(self, index: int | slice) -> UsageEvent | tuple[UsageEvent, ...]:
        return self._events[index]

    def __iter__(self) -> Iterator[UsageEvent]:
        return iter(self._events)

    def __repr__(self) -> str:
        return f"JsonLinesEvents({len(self._events)} events, {len(self.lines)} octets)"


def to_usage_event(event: DpiEvent, source: str) -> UsageEvent:
    """The ``UsageEvent`` of a validated DPI event (``+`` stripped, time in epoch seconds, percent filled)."""
    msisdn = event["msisdn"]
    if msisdn[0] == "+":
        msisdn = msisdn[1:]
    timestamp = event["timestamp"]
    event_time = timestamp if isinstance(timestamp, float) else timestamp.timestamp()
    used = event.get("used_bytes")
    quota = event.get("quota_bytes")
    percent = event.get("percent")
    if percent is None and quota and used is not None:
        percent = _used_percent(used, quota)
    return UsageEvent(
        event["event_id"],
        msisdn,
        event["kind"],
        event["package_id"],
        event_time,
        source,
        event.get("sequence"),
        used,
        quota,
        percent,
        event.get("period"),
    )


def parse_event(data: bytes | str, source: str) -> UsageEvent:
    """One JSON object -> ``UsageEvent``; ``DecodeError`` says what is wrong."""
    try:
        return _validators(source)[0](data)
    except ValidationError:
        pass
    try:  # refused: DpiEvent says why (and would take it, should the two validators disagree)
        return to_usage_event(_validate_one(data), source)
    except ValidationError as exc:
        raise DecodeError(_explain(exc.errors(include_url=False))) from None


def parse_json_lines(body: bytes, source: str) -> ParsedBatch:
    """A JSON-lines body: one object per line; blank lines are skipped, ``\\r\\n`` is fine."""
    events: list[UsageEvent] = []
    errors: list[EventError] = []
    pos = index = 0  # where the lines left to pydantic alone start, and the index of the first
    if _parse_lines is not None:
        pos, index = _fast_json_lines(_parse_lines, body, source, events, errors)
    if pos < len(body):
        _validate_json_lines(_lines(body[pos:] if pos else body), index, source, events, errors)
    if not events:
        if not errors:
            errors.append(EventError(0, "empty body: no events"))
        return ParsedBatch(events, errors)
    if errors:  # each names its line (1-based)
        skip = {error.line - 1 for error in errors}
        body = b"\n".join(line for index, line in enumerate(_lines(body)) if index not in skip)
    return ParsedBatch(events, errors, body)


_C_GIVES_UP = 16
"""Lines in a row the C fast path declines before it leaves the rest of a body to pydantic: a body of
lines it does not take (RFC 3339 timestamps, escapes) then costs what it costs without it."""


def _fast_json_lines(
    fast: _ParseLines, body: bytes, source: str, events: list[UsageEvent], errors: list[EventError]
) -> tuple[int, int]:
    """The lines of ``body`` through the C fast path, each line it declines through pydantic; returns
    where the lines it gave up on start and the index of the first (``len(body)`` when done)."""
    validate = _validators(source)[0]
    size = len(body)
    pos = index = 0  # the start of a line, and its index
    declined = 0  # lines in a row C declined at once
    while (stop := fast(body, pos, events, UsageEvent, _KINDS, source)) < size:
        declined = declined + 1 if stop == pos else 0
        index += body.count(b"\n", pos, stop)
        end = body.find(b"\n", stop)
        line = body[stop:] if end < 0 else body[stop:end]
        try:
            events.append(validate(line))
        except ValidationError:
            _refused_line(line, index, source, events, errors)
        if end < 0:
            break
        pos = end + 1
        index += 1
        if declined == _C_GIVES_UP:
            return pos, index
    return size, index


def _validate_json_lines(
    lines: list[bytes], first: int, source: str, events: list[UsageEvent], errors: list[EventError]
) -> None:
    """The lines through pydantic alone (``first``: the index of the first in the body): the direct
    validator ``map``-ped over them until it refuses one, which goes to ``_refused_line``."""
    validate = _validators(source)[0]
    rest = iter(lines)
    done = 0  # lines consumed from `rest`
    while True:
        before = len(events)
        try:
            events.extend(map(validate, rest))  # keeps the events made before a line is refused
            return
        except ValidationError:
            index = done + len(events) - before  # the refused line, consumed by map
            done = index + 1
        _refused_line(lines[index], first + index, source, events, errors)


def _lines(body: bytes) -> list[bytes]:
    """The lines of a JSON-lines body: ``\\n`` ends them, the last one may have none."""
    lines = body.split(b"\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the newline ending the last line
    return lines


def _refused_line(
    line: bytes, index: int, source: str, events: list[UsageEvent], errors: list[EventError]
) -> None:
    """A line (0-based ``index``) the direct validator refused: skipped if blank, else judged by
    ``_line_outcome``, its event or its error added to ``events`` or ``errors``."""
    if not line or line.isspace():
        return
    outcome = _line_outcome(line, index + 1, source)
    if isinstance(outcome, EventError):
        errors.append(outcome)
    else:
        events.append(outcome)


def _line_outcome(line: bytes, number: int, source: str) -> UsageEvent | EventError:
    """The slow path of a line the direct validator refused: DpiEvent says exactly what is wrong."""
    try:
        return to_usage_event(_validate_one(line), source)
    except ValidationError as exc:
        return EventError(number, _explain(exc.errors(include_url=False)), _event_id_of(line))


def parse_json(body: bytes, source: str) -> ParsedBatch:
    """A JSON body: one event object, or an array of them (each item validated on its own)."""
    start = body.lstrip()[:1]
    validate_one, validate_many = _validators(source)
    if start == b"{":
        if _parse_lines is not None:
            events: list[UsageEvent] = []
            # one event from the whole body: its lines were one object and blank lines around it
            if _parse_lines(body, 0, events, UsageEvent, _KINDS, source) == len(body) and len(events) == 1:
                return ParsedBatch(events, [])
        try:
            return ParsedBatch([validate_one(body)], [])
        except ValidationError:
            pass
        try:
            return ParsedBatch([to_usage_event(_validate_one(body), source)], [])
        except ValidationError as exc:
            details = exc.errors(include_url=False)
            line = 0 if _is_syntax_error(details) else 1
            return ParsedBatch([], [EventError(line, _explain(details), _event_id_of(body))])
    if start != b"[":
        what = "an empty body" if not start else "not a JSON object or array"
        return ParsedBatch([], [EventError(0, f"{what}: expected one event object or an array of them")])
    try:
        return ParsedBatch(validate_many(body), [])
    except ValidationError:
        pass
    try:
        return ParsedBatch([to_usage_event(item, source) for item in _validate_many(body)], [])
    except ValidationError as exc:
        details = exc.errors(include_url=False)
    if _is_syntax_error(details):
        return ParsedBatch([], [EventError(0, _explain(details))])
    return _array_with_errors(body, details, source)


def _array_with_errors(body: bytes, details: list[ErrorDetails], source: str) -> ParsedBatch:
    """The slow path of an array with bad items: the other items are validated again without them."""
    by_item: dict[int, list[ErrorDetails]] = {}
    for detail in details:
        index = detail["loc"][0]
        assert isinstance(index, int)  # a list's errors are located by item index first
        by_item.setdefault(index, []).append({**detail, "loc": detail["loc"][1:]})
    try:
        items = json.loads(body)  # valid JSON to pydantic: only the schema failed
    except (ValueError, RecursionError) as exc:  # (unless the stdlib parser disagrees, e.g. on nesting depth)
        return ParsedBatch([], [EventError(0, f"invalid JSON: {exc}")])
    errors = [
        EventError(index + 1, _explain(item_details), _event_id_from(items[index]))
        for index, item_details in sorted(by_item.items())
    ]
    good = [item for index, item in enumerate(items) if index not in by_item]
    events = [to_usage_event(event, source) for event in _validate_many(json.dumps(good))]
    return ParsedBatch(events, errors)


# --- error messages ------------------------------------------------------------------------------


def _is_syntax_error(details: list[ErrorDetails]) -> bool:
    return any(detail["type"] == "json_invalid" for detail in details)


def _event_id_of(raw: bytes) -> str | None:
    """The event_id of a refused object, when it has a usable one (to name it in the error)."""
    try:
        return _event_id_from(json.loads(raw))
    except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return None
    except RecursionError:  # nested deeper than the stdlib parser recurses: no usable id either
        return None


def _event_id_from(item: object) -> str | None:
    if isinstance(item, dict):
        event_id = item.get("event_id")
        if isinstance(event_id, str) and 0 < len(event_id) <= 256:
            return event_id
    return None


def _shown(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _explain(details: list[ErrorDetails]) -> str:
    """One line saying what is wrong, field by field (``msisdn: ...; timestamp: ...``)."""
    messages: list[str] = []
    seen_fields: set[str] = set()
    for detail in details:
        loc = detail["loc"]
        kind = detail["type"]
        if kind == "json_invalid":
            return f"invalid JSON: {detail.get('ctx', {}).get('error', detail['msg'])}"
        if not loc:
            if kind in ("dict_type", "model_type", "typed_dict_type"):
                return f"an event must be a JSON object, not {_json_type(detail['input'])}"
            messages.append(detail["msg"])
            continue
        field = str(loc[0])
        if field in seen_fields:
            continue  # the other branch of the timestamp union says the same thing again
        seen_fields.add(field)
        messages.append(f"{field}: {_field_message(field, detail, details)}")
    return "; ".join(messages) or "invalid event"


def _field_message(field: str, detail: ErrorDetails, details: list[ErrorDetails]) -> str:
    kind = detail["type"]
    value = detail["input"]
    if kind == "missing":
        return "required field is missing"
    if field == "msisdn" and kind == "string_pattern_mismatch":
        return f"must be 5 to 15 digits (E.164, an optional leading +), got {_shown(value)}"
    if field == "kind" and kind == "enum":
        return f"must be one of {', '.join(k.value for k in UsageKind)}, got {_shown(value)}"
    if field == "timestamp":
        return _timestamp_message(value, [d for d in details if d["loc"][:1] == ("timestamp",)])
    ctx = detail.get("ctx", {})
    plain = {
        "int_type": "must be a whole number",
        "float_type": "must be a number",
        "string_type": "must be a string",
        "finite_number": "must be a finite number",
        "greater_than_equal": f"must be at least {ctx.get('ge', 0):g}",
        "less_than_equal": f"must be at most {ctx.get('le', 0):g}",
        "string_too_short": f"must have at least {ctx.get('min_length')} character(s)",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters",
    }.get(kind)
    if plain is not None:
        return f"{plain}, got {_shown(value)}"
    return f"{_lower_first(detail['msg'])} (got {_shown(value)})"


def _timestamp_message(value: object, details: list[ErrorDetails]) -> str:
    if isinstance(value, str):
        parsing = next((d for d in details if d["loc"][-1:] == ("datetime",)), None)
        if parsing is not None and parsing["type"] == "timezone_aware":
            return f"{_shown(value)} has no UTC offset (RFC 3339 needs Z or +hh:mm)"
        reason = parsing.get("ctx", {}).get("error", "invalid") if parsing is not None else "invalid"
        return f"{_shown(value)} is not an RFC 3339 date-time ({reason})"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return "must be a finite number"
        if value < 0:
            return f"epoch seconds must not be negative, got {_shown(value)}"
        return f"epoch seconds must be below {EPOCH_SECONDS_LIMIT:.0e} (milliseconds?), got {_shown(value)}"
    return f"must be an RFC 3339 date-time string or epoch seconds, got {_shown(value)}"


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]

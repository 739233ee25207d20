"""JSON forms of the campaign engine's events and commands (``campaign_core.model``), for the store's
event log and outbox and for ``tgw replay`` / ``tgw explain``.

Each value becomes a JSON object with a ``"type"`` member naming its class (``"TriggerRaised"``,
``"PushStk"``, ``"Record"``, ...) and one member per dataclass field, always all of them, under the
field's own name:

- ``Decimal`` as its exact string (``"90"``, ``"4.50"``; decoding accepts only finite decimals written as
  strings, never a JSON number, which would be a binary float);
- enums (``TriggerKind``, ``Channel``, ``Payment``, ``ResponseChannel``, ``RecordKind``) as their values;
- ``Profile`` / ``ActivePackage`` / ``OfferOption`` as nested objects (without ``"type"``), tuples of them
  as arrays;
- floats (times, timeouts) as JSON numbers: Python's ``json`` writes ``repr``, so they come back bit for bit;
  an integer is accepted where a float is expected;
- a ``Record``'s ``detail`` as a JSON object (it holds plain JSON data; tuples come back as arrays).

Decoding is strict: a missing field without a default, an unknown member, a value of the wrong type, a
non-finite number or an unknown ``type`` raises ``protocols.errors.DecodeError`` whose message names the
place (``"TriggerRaised.event_time: expected a number, got 'soon'"``). A missing field that has a default
takes it, so hand-written event logs may leave defaults out, and a field added later with a default
reads from logs written before it (``ActivationFailed.outcome_known``: True). The objects hold only JSON types, so
``json.dumps(..., allow_nan=False)`` always works on them; pure (no I/O).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    Command,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    OfferDropped,
    ProfileUpdated,
    Purchased,
    PushStk,
    QueryCredit,
    Record,
    Reply,
    Responded,
    SendSms,
    SubmitFailed,
    Tick,
    TriggerRaised,
)
from protocols.errors import DecodeError

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "command_from_json",
    "command_to_json",
    "event_from_json",
    "event_to_json",
    "json_value",
]

EVENT_TYPES: Mapping[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        TriggerRaised,
        ProfileUpdated,
        CreditScored,
        CreditFailed,
        SubmitFailed,
        DeliveryReported,
        Responded,
        Activated,
        ActivationFailed,
        Purchased,
        OfferDropped,
        Tick,
    )
}
"""The events ``event_from_json`` knows, by their ``"type"``."""

COMMAND_TYPES: Mapping[str, type[Any]] = {
    cls.__name__: cls for cls in (QueryCredit, PushStk, SendSms, Activate, Reply, Record)
}
"""The commands ``command_from_json`` knows, by their ``"type"``."""

_MISSING = object()


def event_to_json(event: Event) -> dict[str, Any]:
    """The JSON object of ``event`` (see the module docstring)."""
    return _encode_tagged(event, EVENT_TYPES)


def event_from_json(data: object) -> Event:
    """The event of a JSON object ``event_to_json`` wrote; ``DecodeError`` naming the field otherwise."""
    value: Event = _decode_tagged(data, EVENT_TYPES, "event")
    return value


def command_to_json(command: Command) -> dict[str, Any]:
    """The JSON object of ``command`` (a ``Record`` included)."""
    return _encode_tagged(command, COMMAND_TYPES)


def command_from_json(data: object) -> Command:
    """The command of a JSON object ``command_to_json`` wrote; ``DecodeError`` naming the field otherwise."""
    value: Command = _decode_tagged(data, COMMAND_TYPES, "command")
    return value


def json_value(value: object, where: str = "value") -> object:
    """``value`` as plain JSON data (dicts with string keys, lists, str, int, finite float, bool, None);
    tuples become lists. ``ValueError`` naming the place for anything else."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string")
            out[key] = json_value(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [json_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise ValueError(f"{where}: {type(value).__name__} is not JSON data")


# --- the machinery: one plan per dataclass, read from its type hints ------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    hint: Any
    default: object  # _MISSING when the field is required


_PLANS: dict[type[Any], tuple[_Field, ...]] = {}


def _plan(cls: type[Any]) -> tuple[_Field, ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields: list[_Field] = []
        for field in dataclasses.fields(cls):
            if field.default is not dataclasses.MISSING:
                default: object = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory
            else:
                default = _MISSING
            fields.append(_Field(field.name, hints[field.name], default))
        plan = _PLANS[cls] = tuple(fields)
    return plan


def _encode_tagged(value: object, known: Mapping[str, type[Any]]) -> dict[str, Any]:
    name = type(value).__name__
    if known.get(name) is not type(value):
        raise ValueError(f"{name} is not one of {', '.join(known)}")
    out: dict[str, Any] = {"type": name}
    out.update(_encode_fields(value, name))
    return out


def _encode_fields(value: object, where: str) -> dict[str, Any]:
    return {
        field.name: _encode(getattr(value, field.name), field.hint, f"{where}.{field.name}")
        for field in _plan(type(value))
    }


def _encode(value: object, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _encode(value, inner, where)
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ValueError(f"{where}: expected a tuple, got {type(value).__name__}")
        inner = typing.get_args(hint)[0]
        return [_encode(item, inner, f"{where}[{index}]") for index, item in enumerate(value)]
    if origin is Mapping:
        return json_value(value, where)
    if hint is Decimal:
        if not isinstance(value, Decimal):
            raise ValueError(f"{where}: expected a Decimal, got {type(value).__name__}")
        return str(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        if not isinstance(value, hint):
            raise ValueError(f"{where}: expected a {hint.__name__}, got {value!r}")
        return value.value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ValueError(f"{where}: expected a {hint.__name__}, got {type(value).__name__}")
        return _encode_fields(value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{where}: expected a {hint.__name__}, got {_shown(value)}")
    return json_value(value, where)


def _decode_tagged(data: object, known: Mapping[str, type[Any]], what: str) -> Any:
    if not isinstance(data, Mapping):
        raise DecodeError(f"{what}: expected a JSON object, got {_shown(data)}")
    name = data.get("type")
    cls = known.get(name) if isinstance(name, str) else None
    if cls is None:
        raise DecodeError(f"{what}.type: {_shown(name)} is not one of {', '.join(known)}")
    return _decode_fields(cls, data, cls.__name__, skip="type")


def _decode_fields(cls: type[Any], data: Mapping[str, object], where: str, skip: str | None = None) -> Any:
    plan = _plan(cls)
    names = {field.name for field in plan}
    for key in data:
        if key != skip and key not in names:
            raise DecodeError(f"{where}.{key}: unknown field")
    values: dict[str, object] = {}
    for field in plan:
        item = data.get(field.name, _MISSING)
        if item is _MISSING:
            if field.default is _MISSING:
                raise DecodeError(f"{where}.{field.name}: missing")
            continue  # the dataclass fills its default
        values[field.name] = _decode(item, field.hint, f"{where}.{field.name}")
    return cls(**values)


def _decode(data: object, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(data, inner, where)
    if origin is tuple:
        if not isinstance(data, list):
            raise DecodeError(f"{where}: expected an array, got {_shown(data)}")
        inner = typing.get_args(hint)[0]
        return tuple(_decode(item, inner, f"{where}[{index}]") for index, item in enumerate(data))
    if origin is Mapping:
        if not isinstance(data, Mapping):
            raise DecodeError(f"{where}: expected an object, got {_shown(data)}")
        value_hint = typing.get_args(hint)[1]
        if value_hint is str:
            for key, item in data.items():
                if not isinstance(item, str):
                    raise DecodeError(f"{where}.{key}: expected a string, got {_shown(item)}")
            return dict(data)
        try:
            return json_value(data, where)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None
    decoder = _SCALARS.get(hint)
    if decoder is not None:
        return decoder(data, where)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(data)
        except ValueError:
            choices = ", ".join(repr(member.value) for member in hint)
            raise DecodeError(f"{where}: {_shown(data)} is not one of {choices}") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(data, Mapping):
            raise DecodeError(f"{where}: expected an object, got {_shown(data)}")
        return _decode_fields(hint, data, where)
    raise DecodeError(f"{where}: cannot decode a {hint!r}")  # pragma: no cover - a new field type


def _decode_str(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise DecodeError(f"{where}: expected a string, got {_shown(data)}")
    return data


def _decode_int(data: object, where: str) -> int:
    if not isinstance(data, int) or isinstance(data, bool):
        raise DecodeError(f"{where}: expected an integer, got {_shown(data)}")
    return data


def _decode_float(data: object, where: str) -> float:
    if not isinstance(data, int | float) or isinstance(data, bool):
        raise DecodeError(f"{where}: expected a number, got {_shown(data)}")
    try:
        value = float(data)
    except OverflowError:  # an integer beyond the largest float (JSON has no limit on digits)
        raise DecodeError(f"{where}: {_shown(data)} is out of range") from None
    if not math.isfinite(value):
        raise DecodeError(f"{where}: {_shown(data)} is not a finite number")
    return value


def _decode_bool(data: object, where: str) -> bool:
    if not isinstance(data, bool):
        raise DecodeError(f"{where}: expected true or false, got {_shown(data)}")
    return data


def _decode_decimal(data: object, where: str) -> Decimal:
    if not isinstance(data, str):
        raise DecodeError(
            f'{where}: expected a decimal written as a string (e.g. "4.50"), got {_shown(data)}'
        )
    try:
        value = Decimal(data)
    except InvalidOperation:
        raise DecodeError(f"{where}: {data!r} is not a decimal number") from None
    if not value.is_finite():
        raise DecodeError(f"{where}: {data!r} is not a finite decimal")
    return value


_SCALARS: Mapping[object, Callable[[object, str], object]] = {
    str: _decode_str,
    int: _decode_int,
    float: _decode_float,
    bool: _decode_bool,
    Decimal: _decode_decimal,
}


def _shown(data: object) -> str:
    text = repr(data)
    return text if len(text) <= 40 else text[:37] + "..."

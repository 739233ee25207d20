"""Diameter dictionary built at import from ``dictionary.json`` (one data file, sources cited there).

Covers the base protocol (RFC 6733 section 4.5, 5, 8), credit control (RFC 4006 section 8),
Gx usage monitoring (3GPP TS 29.212 section 5.3, vendor 10415), Sy spending limits
(3GPP TS 29.219 section 5.3) and the Gy quota AVPs of TS 32.299 section 7.2.

``avp(name, value)`` builds an ``Avp`` with the flags the definition asks for (V when
vendor-specific, M when the M bit "must" be set) and the typed encoding of its data format;
``value_of(avp)`` decodes one by the dictionary. ``check_flags`` answers 3009
DIAMETER_INVALID_AVP_BITS for an AVP whose M bit contradicts its definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib import resources
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any

from protocols.diameter import codec
from protocols.diameter.codec import Avp, AvpFlag, Message, OtherAddress, ResultCode
from protocols.errors import DecodeError, LocalProtocolError

__all__ = [
    "VENDOR_3GPP",
    "ApplicationDef",
    "AvpDef",
    "AvpType",
    "AvpValue",
    "CommandDef",
    "FlagRule",
    "all_avps",
    "avp",
    "check_flags",
    "enum_name",
    "find",
    "find_all",
    "lookup",
    "lookup_application",
    "lookup_code",
    "lookup_command",
    "value_of",
]

VENDOR_3GPP = 10415
_VENDOR_BIT = int(AvpFlag.VENDOR)
_MANDATORY_BIT = int(AvpFlag.MANDATORY)

AvpValue = bytes | int | float | str | datetime | IPv4Address | IPv6Address | OtherAddress | tuple[Avp, ...]
"""What ``value_of`` returns; ``avp`` also takes a list of Avp for Grouped and a name for Enumerated."""


class AvpType(StrEnum):
    """The data formats of RFC 6733 sections 4.2 and 4.3."""

    OCTET_STRING = "OctetString"
    INTEGER32 = "Integer32"
    INTEGER64 = "Integer64"
    UNSIGNED32 = "Unsigned32"
    UNSIGNED64 = "Unsigned64"
    FLOAT32 = "Float32"
    FLOAT64 = "Float64"
    GROUPED = "Grouped"
    ADDRESS = "Address"
    TIME = "Time"
    UTF8_STRING = "UTF8String"
    DIAMETER_IDENTITY = "DiameterIdentity"
    DIAMETER_URI = "DiameterURI"
    ENUMERATED = "Enumerated"


class FlagRule(StrEnum):
    """An AVP flag rule of the specs' flag tables."""

    MUST = "must"
    MAY = "may"
    MUST_NOT = "mustnot"


@dataclass(frozen=True, slots=True)
class AvpDef:
    """One AVP definition: ``vendor_id`` is 0 for IETF AVPs (no V bit)."""

    name: str
    code: int
    vendor_id: int
    type: AvpType
    mandatory: FlagRule
    enum: Mapping[str, int]
    source: str

    @property
    def flags(self) -> int:
        """The flags ``avp()`` sets: V for vendor AVPs, M when the rule is "must"."""
        flags = _VENDOR_BIT if self.vendor_id else 0  # plain ints: avp() reads this for every AVP built
        if self.mandatory is FlagRule.MUST:
            flags |= _MANDATORY_BIT
        return flags


@dataclass(frozen=True, slots=True)
class CommandDef:
    name: str
    code: int
    request: str
    answer: str
    source: str


@dataclass(frozen=True, slots=True)
class ApplicationDef:
    name: str
    id: int
    source: str


def _load() -> tuple[
    dict[str, AvpDef], dict[tuple[int, int], AvpDef], dict[str | int, CommandDef], dict[int, ApplicationDef]
]:
    raw: dict[str, Any] = json.loads(
        resources.files("protocols.diameter").joinpath("dictionary.json").read_text("utf-8")
    )
    by_name: dict[str, AvpDef] = {}
    by_code: dict[tuple[int, int], AvpDef] = {}
    for row in raw["avps"]:
        definition = AvpDef(
            name=row["name"],
            code=row["code"],
            vendor_id=row["vendor"],
            type=AvpType(row["type"]),
            mandatory=FlagRule(row["m"]),
            enum=MappingProxyType(dict(row.get("enum", {}))),
            source=row["source"],
        )
        by_name[definition.name] = definition
        by_code[definition.code, definition.vendor_id] = definition
    commands: dict[str | int, CommandDef] = {}
    for row in raw["commands"]:
        command = CommandDef(row["name"], row["code"], row["request"], row["answer"], row["source"])
        for key_ in (command.name, command.code, command.request, command.answer):
            commands[key_] = command
    applications = {
        row["id"]: ApplicationDef(row["name"], row["id"], row["source"]) for row in raw["applications"]
    }
    return by_name, by_code, commands, applications


_BY_NAME, _BY_CODE, _COMMANDS, _APPLICATIONS = _load()


def lookup(name: str) -> AvpDef:
    """The definition named ``name``; ``KeyError`` if the dictionary has none."""
    return _BY_NAME[name]


def all_avps() -> tuple[AvpDef, ...]:
    """Every AVP definition of the dictionary."""
    return tuple(_BY_CODE.values())


def lookup_code(code: int, vendor_id: int | None = 0) -> AvpDef | None:
    """The definition of AVP ``code`` of ``vendor_id`` (0 or None: IETF), None if unknown."""
    return _BY_CODE.get((code, vendor_id or 0))


def lookup_command(key: str | int) -> CommandDef | None:
    """A command by code (272), name ("Credit-Control") or abbreviation ("CCR", "CCA")."""
    return _COMMANDS.get(key)


def lookup_application(application_id: int) -> ApplicationDef | None:
    return _APPLICATIONS.get(application_id)


def enum_name(name: str, value: int) -> str | None:
    """The name of an Enumerated value of AVP ``name``; None when the dictionary does not name it."""
    for label, number in lookup(name).enum.items():
        if number == value:
            return label
    return None


def _encode_enumerated(definition: AvpDef, value: object) -> bytes:
    if isinstance(value, str):
        try:
            return codec.encode_enumerated(definition.enum[value])
        except KeyError:
            raise LocalProtocolError(f"{definition.name} has no value named {value!r}") from None
    return codec.encode_enumerated(_expect(int, value, definition))


def _expect(kind: Any, value: object, definition: AvpDef) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise LocalProtocolError(f"{definition.name} ({definition.type}) cannot hold {value!r}")
    return value


def _encode_grouped(definition: AvpDef, value: object) -> bytes:
    members = _expect(Sequence, value, definition)
    if isinstance(members, str | bytes) or not all(isinstance(member, Avp) for member in members):
        raise LocalProtocolError(f"{definition.name} (Grouped) takes a sequence of Avp")
    return codec.encode_grouped(members)


def _encode_float(encoder: Callable[[float], bytes]) -> Callable[[AvpDef, object], bytes]:
    def encode(definition: AvpDef, value: object) -> bytes:
        return encoder(float(_expect(int | float, value, definition)))

    return encode


def _encode_typed(kind: Any, encoder: Callable[[Any], bytes]) -> Callable[[AvpDef, object], bytes]:
    def encode(definition: AvpDef, value: object) -> bytes:
        return encoder(_expect(kind, value, definition))

    return encode


_ENCODERS: dict[AvpType, Callable[[AvpDef, object], bytes]] = {
    AvpType.OCTET_STRING: _encode_typed(bytes, codec.encode_octet_string),
    AvpType.INTEGER32: _encode_typed(int, codec.encode_integer32),
    AvpType.INTEGER64: _encode_typed(int, codec.encode_integer64),
    AvpType.UNSIGNED32: _encode_typed(int, codec.encode_unsigned32),
    AvpType.UNSIGNED64: _encode_typed(int, codec.encode_unsigned64),
    AvpType.FLOAT32: _encode_float(codec.encode_float32),
    AvpType.FLOAT64: _encode_float(codec.encode_float64),
    AvpType.GROUPED: _encode_grouped,
    AvpType.ADDRESS: _encode_typed(IPv4Address | IPv6Address | OtherAddress, codec.encode_address),
    AvpType.TIME: _encode_typed(datetime, codec.encode_time),
    AvpType.UTF8_STRING: _encode_typed(str, codec.encode_utf8_string),
    AvpType.DIAMETER_IDENTITY: _encode_typed(str, codec.encode_diameter_identity),
    AvpType.DIAMETER_URI: _encode_typed(str, codec.encode_diameter_uri),
    AvpType.ENUMERATED: _encode_enumerated,
}

_DECODERS: dict[AvpType, Callable[[bytes], AvpValue]] = {
    AvpType.OCTET_STRING: codec.decode_octet_string,
    AvpType.INTEGER32: codec.decode_integer32,
    AvpType.INTEGER64: codec.decode_integer64,
    AvpType.UNSIGNED32: codec.decode_unsigned32,
    AvpType.UNSIGNED64: codec.decode_unsigned64,
    AvpType.FLOAT32: codec.decode_float32,
    AvpType.FLOAT64: codec.decode_float64,
    AvpType.GROUPED: codec.decode_grouped,
    AvpType.ADDRESS: codec.decode_address,
    AvpType.TIME: codec.decode_time,
    AvpType.UTF8_STRING: codec.decode_utf8_string,
    AvpType.DIAMETER_IDENTITY: codec.decode_diameter_identity,
    AvpType.DIAMETER_URI: codec.decode_diameter_uri,
    AvpType.ENUMERATED: codec.decode_enumerated,
}


def avp(name: str, value: object) -> Avp:
    """Build AVP ``name`` holding ``value`` (list of Avp for Grouped, int or name for Enumerated)."""
    definition = lookup(name)
    data = _ENCODERS[definition.type](definition, value)
    return Avp(definition.code, definition.flags, definition.vendor_id or None, data)


def value_of(item: Avp) -> AvpValue:
    """The typed value of ``item`` by its definition; raw bytes for an AVP the dictionary lacks.

    Raises ``DecodeError`` (5014 wrong size, 5004 bad value) when the data does not fit the type.
    """
    definition = lookup_code(item.code, item.vendor_id)
    if definition is None:
        return item.data
    return _DECODERS[definition.type](item.data)


def check_flags(item: Avp) -> None:
    """Raise ``DecodeError`` 3009 when the M bit contradicts the AVP's definition (unknown: no check)."""
    definition = lookup_code(item.code, item.vendor_id)
    if definition is None:
        return
    if (definition.mandatory is FlagRule.MUST and not item.is_mandatory) or (
        definition.mandatory is FlagRule.MUST_NOT and item.is_mandatory
    ):
        raise DecodeError(
            f"{definition.name}: M bit {'clear' if definition.mandatory is FlagRule.MUST else 'set'}",
            ResultCode.DIAMETER_INVALID_AVP_BITS,
        )


def _avps_of(where: Message | Iterable[Avp]) -> Iterable[Avp]:
    return where.avps if isinstance(where, Message) else where


def find(where: Message | Iterable[Avp], name: str) -> Avp | None:
    """The first AVP named ``name`` among ``where``'s top-level AVPs, None if absent."""
    definition = lookup(name)
    for item in _avps_of(where):
        if item.code == definition.code and (item.vendor_id or 0) == definition.vendor_id:
            return item
    return None


def find_all(where: Message | Iterable[Avp], name: str) -> list[Avp]:
    """Every AVP named ``name`` among ``where``'s top-level AVPs, in order."""
    definition = lookup(name)
    return [
        item
        for item in _avps_of(where)
        if item.code == definition.code and (item.vendor_id or 0) == definition.vendor_id
    ]

"""The optional C accelerator of the Diameter decode side (protocols/diameter/_speedups.c) against the
pure-Python reference in protocols/diameter/codec.py and credit_control.py (RFC 6733 sections 3, 4.1,
7.5; RFC 4006 section 3).

The extension must be built here: CI installs the project with a C compiler, so a missing extension
fails this module instead of skipping it, unless ``TGW_PURE_PYTHON`` asks for the pure-Python code
(then the differential tests still switch the built extension on in-process, and skip only if it was
not built).

Properties, each over hypothesis examples:

- framing: for random and mutated AVP octets (truncated headers, AVP Lengths too short or overrunning,
  non-zero padding, V bits with and without a Vendor-ID) ``scan_avps`` / ``decode_avps`` return exactly
  what ``codec._scan_avps`` / ``_decode_avps`` return, types included, and None exactly where they
  raise;
- grammar: ``members`` returns exactly what ``_Parser.members`` returns (None included), and
  ``collect`` what ``_Parser.collect`` returns or None where it raises, over Grouped AVP data with M
  bits right and wrong, unknown AVPs with and without M, names over their limit, required names
  missing, nested groups;
- ``Found`` and ``Reader`` give what ``_PyFound`` and the ``_py_`` readers give, values or exceptions;
- whole requests: ``decode`` + ``parse_request`` of Gy/Gx CCRs and Sy SNRs from the builders, and of
  mutated versions of them, give the same typed request or the same error (type, message,
  Result-Code, Failed-AVP) with the C path on and off;
- and for valid requests the C path never declines: no Python fallback runs at all, nor the
  ``__init__`` of any typed value (the makers set their slots; test_speedups_makers.py checks them
  against the classes, test_speedups_encode.py the encode side).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_credit_control import identity, msccs, pcsrs, subscription_ids, text, times, u32, umis

import protocols.diameter
from protocols.diameter import codec, peer
from protocols.diameter import credit_control as cc
from protocols.diameter.codec import HEADER_LENGTH, Avp, Message, decode, encode, encode_avp
from protocols.diameter.credit_control import (
    CcRequestType,
    EventTrigger,
    FailedAvpError,
    build_gx_ccr_update,
    build_gy_ccr,
    build_sy_snr,
    parse_request,
)
from protocols.diameter.dictionary import avp
from protocols.errors import DecodeError

try:
    from protocols.diameter import _speedups as C
except ImportError:
    C = None  # type: ignore[assignment]

PURE_FORCED = os.environ.get("TGW_PURE_PYTHON", "") not in ("", "0")
# without TGW_PURE_PYTHON a missing extension fails (test_the_extension_is_built and every C test)
needs_c = pytest.mark.skipif(C is None and PURE_FORCED, reason="TGW_PURE_PYTHON set and no C extension")

M_RULES = cc._DICTIONARY_M_RULE
GRAMMARS = {
    name: value for name, value in vars(cc).items() if isinstance(value, cc._Grammar) and name != "_Grammar"
}
# AVP keys: every grammar's, some of the dictionary outside them (M must / must not / may), unknown ones
KEYS: list[int | tuple[int, int]] = sorted(
    {key for grammar in GRAMMARS.values() for key in grammar.by_key}
    | {1, 25, 33, 55, 257, 263, 264, 278, 279, 296, 873, (873, 10415), (874, 10415), (2, 10415)}
    | {99999, (99999, 10415), (1, 10415), (443, 10415)},
    key=str,
)
# the Python readers and the kind of Reader that stands in for each (credit_control's names), with the
# enumeration whose members an enum reader returns
READERS: dict[str, tuple[str, str, type[IntEnum] | None]] = {
    "_u32": ("u32", "_py_u32", None),
    "_u64": ("u64", "_py_u64", None),
    "_enum": ("i32", "_py_enum", None),
    "_utf8": ("utf8", "_py_utf8", None),
    "_identity": ("ascii", "_py_identity", None),
    "_reporting_reason": ("i32", "_py_reporting_reason", cc.ReportingReason),
    "_subscription_id_type": ("i32", "_py_subscription_id_type", cc.SubscriptionIdType),
    "_event_trigger": ("i32", "_py_event_trigger", cc.EventTrigger),
}
# the makers credit_control, codec and peer build their values with, and the classes they stand for
MAKERS: dict[tuple[Any, str], type] = {
    **{
        (cc, name): cls
        for name, cls in {
            "_new_ccr": cc.CreditControlRequest,
            "_new_snr": cc.SpendingStatusNotificationRequest,
            "_new_subscription_id": cc.SubscriptionId,
            "_new_mscc": cc.MultipleServicesCreditControl,
            "_new_gsu": cc.GrantedServiceUnit,
            "_new_rsu": cc.RequestedServiceUnit,
            "_new_usu": cc.UsedServiceUnit,
            "_new_fui": cc.FinalUnitIndication,
            "_new_redirect_server": cc.RedirectServer,
            "_new_umi": cc.UsageMonitoringInformation,
            "_new_pcsr": cc.PolicyCounterStatusReport,
            "_new_pending": cc.PendingPolicyCounterInformation,
        }.items()
    },
    (peer, "_new_request_received"): peer.RequestReceived,
}


def c_reader(name: str, fallback: Callable[..., Any] | None = None) -> Any:
    """The C Reader that stands in for credit_control's reader ``name`` (with another fallback)."""
    assert C is not None
    kind, python, registry = READERS[name]
    members = None if registry is None else registry._value2member_map_
    return C.Reader(kind, getattr(cc, python) if fallback is None else fallback, members)


# --- switching the C path on and off in-process --------------------------------------------------------


def _globals(c_on: bool) -> dict[tuple[Any, str], Any]:
    """The module globals codec.py and credit_control.py read at call time, for either path."""
    if c_on:
        assert C is not None, "protocols.diameter._speedups is not built"
        values: dict[tuple[Any, str], Any] = {
            (codec, "_c_scan_avps"): C.scan_avps,
            (codec, "_c_decode_avps"): C.decode_avps,
            (codec, "_c_encode_avps"): C.encode_avps,
            (codec, "_c_encode_parts"): C.encode_parts,
            (codec, "_c_new_message"): codec._record_maker(Message, C.Maker),
            (cc, "_c_members"): C.members,
            (cc, "_c_collect"): C.collect,
            (cc, "_c_select"): C.select,
            (cc, "_new_found"): C.Found,
        }
        for name in READERS:
            values[cc, name] = c_reader(name)
        for key, cls in MAKERS.items():
            values[key] = codec._record_maker(cls, C.Maker)
        return values
    values = {
        (codec, "_c_scan_avps"): None,
        (codec, "_c_decode_avps"): None,
        (codec, "_c_encode_avps"): None,
        (codec, "_c_encode_parts"): None,
        (codec, "_c_new_message"): None,
        (cc, "_c_members"): None,
        (cc, "_c_collect"): None,
        (cc, "_c_select"): None,
        (cc, "_new_found"): cc._PyFound,
    }
    for name, (_kind, python, _registry) in READERS.items():
        values[cc, name] = getattr(cc, python)
    values.update(MAKERS)  # the classes themselves
    return values


@contextmanager
def c_path(c_on: bool) -> Iterator[None]:
    """Run the block with the C accelerator switched on or off (the module globals the code reads)."""
    values = _globals(c_on)
    saved = {key: getattr(*key) for key in values}
    for (module, name), value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def shape(value: Any) -> Any:
    """A value with the type of every part (bytes and bytearray, int and IntEnum are equal but differ
    here), dicts with their order (the first name over its limit is found in insertion order)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(shape(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, tuple | list):
        return (type(value), tuple(shape(v) for v in value))
    if isinstance(value, dict):
        return (type(value), tuple((shape(k), shape(v)) for k, v in value.items()))
    if isinstance(value, cc._PyFound) or (C is not None and isinstance(value, C.Found)):
        return ("found", shape(value._avps))
    return (type(value), value)


def outcome(run: Callable[[], Any]) -> Any:
    try:
        result = run()
    except Exception as exc:
        return (
            "raised",
            type(exc),
            str(exc),
            getattr(exc, "status", None),
            shape(getattr(exc, "failed_avp", None)),
        )
    return ("returned", shape(result))


def both(run: Callable[[], Any]) -> Any:
    """Run with the C path and without, assert the same outcome, and return it."""
    with c_path(c_on=True):
        fast = outcome(run)
    with c_path(c_on=False):
        slow = outcome(run)
    assert fast == slow
    return fast


# --- the extension is there, and the switch works ------------------------------------------------------


def test_the_extension_is_built() -> None:
    if PURE_FORCED:
        assert codec._SPEEDUPS is None
        assert codec._c_decode_avps is None and cc._c_members is None and cc._new_found is cc._PyFound
        assert codec._c_encode_avps is None and codec._c_encode_parts is None and cc._c_select is None
        assert codec._c_new_message is None
        for name, (_kind, python, _registry) in READERS.items():
            assert getattr(cc, name) is getattr(cc, python)
        for (module, name), cls in MAKERS.items():
            assert getattr(module, name) is cls  # record_maker hands out the class itself
    else:
        assert C is not None, "protocols.diameter._speedups is not built: pip install -e . with a C compiler"
        assert codec._c_scan_avps is C.scan_avps and codec._c_decode_avps is C.decode_avps
        assert codec._c_encode_avps is C.encode_avps and codec._c_encode_parts is C.encode_parts
        assert cc._c_members is C.members and cc._c_collect is C.collect and cc._new_found is C.Found
        assert cc._c_select is C.select
        for name, (kind, python, registry) in READERS.items():
            reader = getattr(cc, name)
            assert type(reader) is C.Reader and reader.kind == kind
            assert reader.fallback is getattr(cc, python)
            assert reader.members is (None if registry is None else registry._value2member_map_)
        for (module, name), cls in {**MAKERS, (codec, "_c_new_message"): Message}.items():
            maker = getattr(module, name)
            assert type(maker) is C.Maker and maker.cls is cls, name


def test_every_maker_is_switched_by_the_tests() -> None:
    """A new ``_new_*`` maker in credit_control or peer must join MAKERS (so c_path switches it)."""
    for module in (cc, peer):
        names = {name for name in vars(module) if name.startswith("_new_") and name != "_new_found"}
        assert names == {name for (m, name) in MAKERS if m is module}, module.__name__


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_tgw_pure_python_forces_the_fallback(value: str) -> None:
    assert codec._load_speedups({"TGW_PURE_PYTHON": value}) is None


@needs_c
@pytest.mark.parametrize("environ", [{}, {"TGW_PURE_PYTHON": ""}, {"TGW_PURE_PYTHON": "0"}])
def test_the_extension_is_used_unless_switched_off(environ: dict[str, str]) -> None:
    assert C is not None
    assert codec._load_speedups(environ) == (
        C.scan_avps,
        C.decode_avps,
        C.encode_avps,
        C.encode_parts,
        C.select,
        C.members,
        C.collect,
        C.Found,
        C.Reader,
        C.Maker,
    )


def test_a_missing_extension_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a machine without a C compiler sees: the import fails
    monkeypatch.setitem(sys.modules, "protocols.diameter._speedups", None)
    monkeypatch.delattr(protocols.diameter, "_speedups", raising=False)
    assert codec._load_speedups({}) is None


# --- strategies: AVP octets, broken now and then -------------------------------------------------------

U8 = st.integers(0, 255)


def _split(key: int | tuple[int, int]) -> tuple[int, int | None]:
    return key if isinstance(key, tuple) else (key, None)


@st.composite
def avp_octets(draw: st.DrawFn, depth: int = 1) -> bytes:
    """One AVP on the wire: mostly well-formed, sometimes with its V bit and Vendor-ID at odds, an AVP
    Length that lies (short of its header, overrunning, off by a few), or non-zero padding."""
    code, vendor = _split(draw(st.sampled_from(KEYS)))
    with_vendor = vendor is not None
    if draw(st.integers(0, 9)) == 0:
        with_vendor = not with_vendor  # a Vendor-ID written without the V bit, or the V bit without one
    v_bit = vendor is not None
    flags = (
        (0x80 if v_bit else 0)
        | draw(st.sampled_from([0x00, 0x40]))
        | draw(st.sampled_from([0, 0, 0x20, 0x07]))
    )
    if depth and draw(st.integers(0, 3)) == 0:
        data = b"".join(draw(st.lists(avp_octets(depth - 1), max_size=3)))  # a group
    else:
        data = draw(
            st.one_of(
                st.binary(max_size=10),
                st.integers(0, 2**32 - 1).map(lambda n: n.to_bytes(4, "big")),
                st.integers(0, 2**64 - 1).map(lambda n: n.to_bytes(8, "big")),
            )
        )
    header = 12 if with_vendor else 8
    length = header + len(data)
    lie = draw(st.integers(0, 12))
    if lie == 0:
        length = draw(st.integers(0, 0xFFFFFF))
    elif lie == 1:
        length = max(0, length + draw(st.integers(-6, 6)))
    padding = bytes(-(header + len(data)) % 4)
    if padding and draw(st.integers(0, 5)) == 0:
        padding = padding[:-1] + bytes([draw(st.integers(1, 255))])
    out = code.to_bytes(4, "big") + bytes([flags]) + length.to_bytes(3, "big")
    if with_vendor:
        out += (vendor if vendor is not None else draw(u32)).to_bytes(4, "big")
    return out + data + padding


@st.composite
def avp_runs(draw: st.DrawFn) -> bytes:
    """A run of AVPs, cut, flipped or extended with junk now and then."""
    out = b"".join(draw(st.lists(avp_octets(), max_size=5)))
    how = draw(st.sampled_from(["keep", "keep", "cut", "flip", "junk", "random"]))
    if how == "cut" and out:
        out = out[: draw(st.integers(0, len(out) - 1))]
    elif how == "flip" and out:
        at = draw(st.integers(0, len(out) - 1))
        out = out[:at] + bytes([draw(U8)]) + out[at + 1 :]
    elif how == "junk":
        out += draw(st.binary(min_size=1, max_size=12))
    elif how == "random":
        out = draw(st.binary(max_size=40))
    return out


@st.composite
def group_data(draw: st.DrawFn, grammar: cc._Grammar) -> bytes:
    """A Grouped AVP's data for ``grammar``: its names (each up to its limit, now and then one over,
    required ones now and then missing) with the M bit it wants (now and then not), AVPs outside it
    (known ones with M right or wrong, unknown ones with or without M), well-formed or broken."""
    chosen: list[tuple[int | tuple[int, int], int]] = []
    if draw(st.integers(0, 4)):
        for key, (name, mandatory, most) in sorted(grammar.by_key.items(), key=str):
            required = name in grammar.required_names
            count = draw(st.integers(1 if required else 0, 1 if most == 1 else 2))
            if draw(st.integers(0, 15)) == 0:
                count += 1  # over its limit
            if required and draw(st.integers(0, 15)) == 0:
                count = 0  # missing
            chosen += [(key, mandatory or 0)] * count
        chosen = list(draw(st.permutations(chosen)))
        if chosen and draw(st.integers(0, 10)) == 0:
            at = draw(st.integers(0, len(chosen) - 1))
            chosen[at] = (chosen[at][0], chosen[at][1] ^ 0x40)  # the M bit the dictionary does not want
    for _ in range(draw(st.integers(0, 2 if chosen else 5))):
        chosen.insert(
            draw(st.integers(0, len(chosen))),
            (draw(st.sampled_from(KEYS)), draw(st.sampled_from([0x00, 0x40]))),
        )
    out = b""
    for key, flags in chosen:
        code, vendor = _split(key)
        flags |= draw(st.sampled_from([0x00, 0x00, 0x20])) | (0x80 if vendor is not None else 0)
        if draw(st.integers(0, 8)) == 0:
            data = draw(group_data(GRAMMARS[draw(st.sampled_from(sorted(GRAMMARS)))]))  # nested
        else:
            data = draw(st.sampled_from([b"", b"\x00\x00\x00\x05", bytes(8), b"abc"]) | st.binary(max_size=9))
        if vendor is None and draw(st.integers(0, 7)) == 0:
            vendor = 0  # the V bit with Vendor-ID 0: still the IETF key (credit_control._key)
            flags |= 0x80
        out += encode_avp(Avp(code, flags, vendor, data))
    if draw(st.integers(0, 5)) == 0:
        how = draw(st.sampled_from(["cut", "flip", "junk", "avp"]))
        if how == "cut" and out:
            out = out[: draw(st.integers(0, len(out) - 1))]
        elif how == "flip" and out:
            at = draw(st.integers(0, len(out) - 1))
            out = out[:at] + bytes([draw(U8)]) + out[at + 1 :]
        elif how == "junk":
            out += draw(st.binary(min_size=1, max_size=12))
        else:
            out += draw(avp_octets())
    return out


# --- framing: scan_avps and decode_avps ---------------------------------------------------------------


def python_scan(data: bytes, offset: int, end: int) -> Any:
    with c_path(c_on=False):
        return outcome(lambda: codec._scan_avps(data, offset, end))


def python_decode_avps(data: bytes, offset: int, end: int) -> Any:
    with c_path(c_on=False):
        return outcome(lambda: codec._decode_avps(data, offset, end))


@needs_c
@settings(max_examples=600, deadline=None)
@given(data=avp_runs(), prefix=st.binary(max_size=6), suffix=st.binary(max_size=6))
def test_scan_and_decode_avps_equal_python_or_decline_where_it_raises(
    data: bytes, prefix: bytes, suffix: bytes
) -> None:
    assert C is not None
    whole = prefix + data + suffix
    offset, end = len(prefix), len(prefix) + len(data)
    for function, python in ((C.scan_avps, python_scan), (C.decode_avps, python_decode_avps)):
        args = (whole, offset, end) if function is C.scan_avps else (whole, offset, end, Avp)
        fast = function(*args)  # type: ignore[operator]
        expected = python(whole, offset, end)
        if fast is None:
            assert expected[0] == "raised" and expected[1] is DecodeError, expected
        else:
            assert ("returned", shape(fast)) == expected
    both(lambda: codec.scan_avps(data))
    both(lambda: codec.decode_avps(data))


@needs_c
@settings(max_examples=300, deadline=None)
@given(avps=st.lists(avp_octets(depth=2), max_size=6))
def test_well_formed_runs_are_never_declined(avps: list[bytes]) -> None:
    assert C is not None
    data = b"".join(avps)
    expected = python_scan(data, 0, len(data))
    assume(expected[0] == "returned")
    assert C.scan_avps(data, 0, len(data)) is not None, "the C scan declined a well-formed run"
    decoded = C.decode_avps(data, 0, len(data), Avp)
    assert decoded is not None, "the C decode declined a well-formed run"
    assert decoded == tuple(Avp(*raw) for raw in codec.scan_avps(data))  # as Avp(...) checks and builds them


@needs_c
@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x00\x01", "truncated header"),
        (b"\x00\x00\x01\x07\x40\x00\x00\x07", "AVP Length shorter than the header"),
        (b"\x00\x00\x03\x68\xc0\x00\x00\x0b\x00\x00\x28\xaf", "V bit, AVP Length shorter than its 12"),
        (b"\x00\x00\x01\x07\x40\x00\x00\x10\x00\x00\x00\x01", "overrun"),
        (b"\x00\x00\x01\x07\x40\x00\x00\x09\x01\x00\x00\x01", "non-zero padding"),
        (b"\x00\x00\x01\x07\x40\x00\x00\x09\x01\x00\x00", "padding cut off"),
    ],
)
def test_c_framing_leaves_faults_to_python(data: bytes, why: str) -> None:
    assert C is not None
    assert C.scan_avps(data, 0, len(data)) is None, why
    assert C.decode_avps(data, 0, len(data), Avp) is None, why
    kind, error_type, *_ = both(lambda: codec.decode_avps(data))
    assert (kind, error_type) == ("raised", DecodeError), why
    assert both(lambda: codec.scan_avps(data))[:2] == ("raised", DecodeError)


@needs_c
def test_c_framing_leaves_other_inputs_to_python() -> None:
    assert C is not None
    good = encode_avp(avp("Session-Id", "s")) + encode_avp(avp("CC-Request-Number", 1))
    assert C.scan_avps(good, 0, len(good)) is not None
    assert C.scan_avps(bytearray(good), 0, len(good)) is None  # type: ignore[arg-type]
    assert C.scan_avps(memoryview(good), 0, len(good)) is None  # type: ignore[arg-type]
    for offset, end in [(-1, len(good)), (0, len(good) + 1), (5, 4), (0, 2**70), (True, len(good))]:
        assert C.scan_avps(good, offset, end) is None, (offset, end)
        assert C.decode_avps(good, offset, end, Avp) is None, (offset, end)
    assert C.scan_avps(good, 0, 0) == [] and C.decode_avps(good, len(good), len(good), Avp) == ()
    assert C.scan_avps(good, 0, len(good) - 4) is None  # ends inside the second AVP


@dataclasses.dataclass(frozen=True, slots=True)
class OtherAvp:
    """Not Avp, but built the same way: decode_avps makes what it is given."""

    code: int
    flags: int
    vendor_id: int | None
    data: bytes


@dataclasses.dataclass(frozen=True)
class NoSlots:
    code: int
    flags: int
    vendor_id: int | None
    data: bytes


class PropertyCode:
    __slots__ = ("_code", "data", "flags", "vendor_id")

    @property
    def code(self) -> int:
        return 1


@dataclasses.dataclass(frozen=True, slots=True)
class SubAvp(Avp):
    pass


@needs_c
def test_decode_avps_builds_the_class_it_is_given_through_its_slots() -> None:
    assert C is not None
    data = encode_avp(avp("Session-Id", "s")) + encode_avp(Avp(873, 0xC0, 10415, b""))
    others = C.decode_avps(data, 0, len(data), OtherAvp)
    assert others == (OtherAvp(263, 0x40, None, b"s"), OtherAvp(873, 0xC0, 10415, b""))
    assert [type(o) for o in others] == [OtherAvp, OtherAvp]  # type: ignore[union-attr]
    # back to Avp: the module state follows the class passed in
    assert C.decode_avps(data, 0, len(data), Avp) == codec.decode_avps(data)
    for odd in (NoSlots, PropertyCode, SubAvp, int, object(), None, Avp.__dict__["code"]):
        assert C.decode_avps(data, 0, len(data), odd) is None, odd  # type: ignore[arg-type]
    assert C.decode_avps(data, 0, len(data), Avp) is not None


@needs_c
def test_c_functions_check_their_argument_count() -> None:
    assert C is not None
    with pytest.raises(TypeError, match="takes 3 positional arguments but 1 were given"):
        C.scan_avps(b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 4 positional arguments but 3 were given"):
        C.decode_avps(b"", 0, 0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 5 positional arguments but 2 were given"):
        C.members(b"", {})  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 6 positional arguments but 0 were given"):
        C.collect()  # type: ignore[call-arg]


# --- grammar: members and collect ----------------------------------------------------------------------


def python_members(strict: bool, data: bytes, grammar: cc._Grammar) -> Any:
    with c_path(c_on=False):
        found = cc._Parser(strict).members((456, 0x40, None, data), grammar)
    return None if found is None else shape(found._avps)


@needs_c
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(GRAMMARS)), strict=st.booleans(), data=st.data())
def test_members_equal_python_members(name: str, strict: bool, data: st.DataObject) -> None:
    assert C is not None
    grammar = GRAMMARS[name]
    octets = data.draw(group_data(grammar))
    expected = python_members(strict, octets, grammar)
    for required in (grammar.required, grammar.required_names):
        fast = C.members(octets, grammar.by_key, M_RULES, strict, required)
        assert (None if fast is None else shape(fast)) == expected
    # and through the parser, with the C path on: the same _Found contents
    with c_path(c_on=True):
        found = cc._Parser(strict).members((456, 0x40, None, octets), grammar)
        assert (None if found is None else shape(found._avps)) == expected
    # what the one pass finds, the long way finds too
    if expected is not None:
        with c_path(c_on=False):
            assert shape(cc._Parser(strict).collect(codec.scan_avps(octets), grammar)._avps) == expected


@needs_c
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(GRAMMARS)), strict=st.booleans(), data=st.data())
def test_collect_equals_python_collect_or_declines_where_it_raises(
    name: str, strict: bool, data: st.DataObject
) -> None:
    assert C is not None
    grammar = GRAMMARS[name]
    octets = data.draw(group_data(grammar))
    with c_path(c_on=False):
        try:
            avps = codec.decode_avps(octets)
        except DecodeError:
            assume(False)
        parser = cc._Parser(strict)
        expected = outcome(
            lambda: parser.collect([(a.code, a.flags, a.vendor_id, a.data) for a in avps], grammar)
        )
    fast = C.collect(avps, Avp, grammar.by_key, M_RULES, strict, grammar.required)
    if fast is None:
        assert expected[0] == "raised" and expected[1] is FailedAvpError, expected
    else:
        assert ("returned", ("found", shape(fast))) == expected
    assert C.collect(avps, Avp, grammar.by_key, M_RULES, strict, grammar.required_names) == fast


ODD_FIELDS = st.sampled_from(
    [
        {"vendor_id": 0, "flags": 0xC0},  # V bit, Vendor-ID 0: the IETF key
        {"data": bytearray(b"\x00\x00\x00\x01")},  # carried along as it is
        {"data": None},
        {"code": EventTrigger.USAGE_REPORT},  # an int subclass: left to Python
        {"flags": True},
        {"flags": 2**80 | 0x40},
        {"flags": -1},
        {"flags": 0x140},
        {"vendor_id": 2**40, "flags": 0x80},
        {"vendor_id": True, "flags": 0x80},
        {"vendor_id": "10415", "flags": 0x80},
        {"code": "263"},
    ]
)


def odd_avp(base: Avp, fields: dict[str, Any]) -> Avp:
    """An Avp holding what its annotations do not allow (built through the slots, unchecked)."""
    item = object.__new__(Avp)
    for name in ("code", "flags", "vendor_id", "data"):
        Avp.__dict__[name].__set__(item, fields.get(name, getattr(base, name)))
    return item


@needs_c
@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(GRAMMARS)), strict=st.booleans(), fields=ODD_FIELDS, data=st.data())
def test_collect_of_hand_built_avps_equals_python_or_declines(
    name: str, strict: bool, fields: dict[str, Any], data: st.DataObject
) -> None:
    assert C is not None
    grammar = GRAMMARS[name]
    octets = data.draw(group_data(grammar))
    try:
        avps = list(codec.decode_avps(octets))
    except DecodeError:
        avps = []
    avps.insert(
        data.draw(st.integers(0, len(avps))),
        odd_avp(Avp(data.draw(st.sampled_from([263, 432, 99999])), 0x40, None, b"x"), fields),
    )
    with c_path(c_on=False):
        parser = cc._Parser(strict)
        expected = outcome(
            lambda: parser.collect([(a.code, a.flags, a.vendor_id, a.data) for a in avps], grammar)
        )
    fast = C.collect(tuple(avps), Avp, grammar.by_key, M_RULES, strict, grammar.required)
    if fast is not None:  # None is always allowed here: Python decides
        assert ("returned", ("found", shape(fast))) == expected


@needs_c
def test_collect_leaves_other_inputs_to_python() -> None:
    assert C is not None
    grammar = cc._SUBSCRIPTION_ID
    avps = (avp("Subscription-Id-Type", 0), avp("Subscription-Id-Data", "1"))
    args = (grammar.by_key, M_RULES, True, grammar.required)
    assert C.collect(avps, Avp, *args) is not None
    unset = object.__new__(Avp)  # no field set: Python's attribute access raises
    sub = SubAvp(450, 0x40, None, b"\x00\x00\x00\x00")
    for odd in (
        list(avps),
        (*avps, unset),
        (*avps, sub),
        (*avps, "not an AVP"),
    ):
        assert C.collect(odd, Avp, *args) is None  # type: ignore[arg-type]
    assert C.collect(avps, OtherAvp, *args) is None  # type: ignore[arg-type]
    assert C.collect(avps, NoSlots, *args) is None  # type: ignore[arg-type]
    with c_path(c_on=False), pytest.raises(AttributeError):
        cc._Parser(True).collect([(a.code, a.flags, a.vendor_id, a.data) for a in (*avps, unset)], grammar)


@needs_c
@pytest.mark.parametrize(
    "change",
    [
        {"by_key": "not a dict"},
        {"m_rules": []},
        {"required": ["Subscription-Id-Type"]},
        {"strict": None},
        {"strict": 1.0},
        {"by_key_entry": ("Subscription-Id-Type", 0x40)},
        {"by_key_entry": ["Subscription-Id-Type", 0x40, 1]},
        {"by_key_entry": (b"Subscription-Id-Type", 0x40, 1)},
        {"by_key_entry": ("Subscription-Id-Type", "M", 1)},
        {"by_key_entry": ("Subscription-Id-Type", 0x40, "1")},
        {"by_key_entry": ("Subscription-Id-Type", 0x40, -1)},
        {"by_key_entry": ("Subscription-Id-Type", 0x40, 2**70)},
        {"by_key_entry": ("Subscription-Id-Type", 2**70, 1)},
        {"m_rule": "M"},
    ],
)
def test_grammar_tables_of_other_shapes_are_left_to_python(change: dict[str, Any]) -> None:
    assert C is not None
    grammar = cc._SUBSCRIPTION_ID
    by_key: Any = dict(grammar.by_key)
    m_rules: Any = dict(M_RULES)
    required: Any = grammar.required
    strict: Any = True
    if "by_key_entry" in change:
        by_key[450] = change["by_key_entry"]
    if "m_rule" in change:
        m_rules[99999] = change["m_rule"]
    by_key = change.get("by_key", by_key)
    m_rules = change.get("m_rules", m_rules)
    required = change.get("required", required)
    strict = change.get("strict", strict)
    octets = (
        encode_avp(avp("Subscription-Id-Type", 0))
        + encode_avp(avp("Subscription-Id-Data", "1"))
        + encode_avp(Avp(99999, 0, None, b""))
    )
    assert C.members(octets, by_key, m_rules, strict, required) is None
    avps = codec.decode_avps(octets)
    assert C.collect(avps, Avp, by_key, m_rules, strict, required) is None


@needs_c
def test_members_takes_strict_as_bool_or_int() -> None:
    assert C is not None
    grammar = cc._MSCC
    unknown_m = encode_avp(Avp(99999, 0x40, None, b"")) + encode_avp(avp("Rating-Group", 1))
    args = (grammar.by_key, M_RULES)
    assert C.members(unknown_m, *args, True, grammar.required) is None  # 5001 for Python to raise
    assert C.members(unknown_m, *args, 1, grammar.required) is None
    lenient = C.members(unknown_m, *args, False, grammar.required)
    assert lenient is not None and list(lenient) == ["Rating-Group"]
    assert C.members(unknown_m, *args, 0, grammar.required) == lenient
    assert C.members(bytearray(unknown_m), *args, False, grammar.required) is None  # type: ignore[arg-type]


# --- Found and Reader ------------------------------------------------------------------------------------

RAW = st.tuples(st.integers(0, 2**32 - 1), U8, st.none() | u32, st.binary(max_size=9))


def returning(item: Any) -> Any:
    return ("decoded", item)


def raising(item: Any) -> Any:
    raise FailedAvpError(f"AVP {item!r} refused", 5004, None)


class Picky:
    """A decoder that refuses some items."""

    def __call__(self, item: Any) -> Any:
        if isinstance(item, tuple) and item and item[0] % 3 == 0:
            raise ValueError(f"no {item[0]}")
        return item[0] if isinstance(item, tuple) else item


DECODERS = st.sampled_from([returning, raising, Picky(), len, "not callable"])
NAMES = st.sampled_from(["Rating-Group", "Used-Service-Unit", "Session-Id", "absent"])
FOUND_VALUES = st.one_of(
    st.lists(RAW, max_size=3),
    st.lists(RAW, max_size=2).map(tuple),
    st.sampled_from([[], (), None, 0, "", "xy", b"ab"]),
)


@needs_c
@settings(max_examples=500, deadline=None)
@given(
    avps=st.dictionaries(NAMES, FOUND_VALUES, max_size=3),
    method=st.sampled_from(["all", "one", "optional", "many"]),
    name=NAMES | st.sampled_from([("Rating-Group",), 1, ["unhashable"]]),
    decoder=DECODERS,
)
def test_found_equals_python_found(avps: dict[Any, Any], method: str, name: Any, decoder: Any) -> None:
    assert C is not None
    args = (name,) if method == "all" else (name, decoder)
    fast = outcome(lambda: getattr(C.Found(avps), method)(*args))
    slow = outcome(lambda: getattr(cc._PyFound(avps), method)(*args))
    assert fast == slow


@needs_c
def test_found_takes_exact_dicts_and_sees_list_changes() -> None:
    assert C is not None
    with pytest.raises(TypeError):
        C.Found([])  # type: ignore[arg-type]

    class Dict(dict):  # type: ignore[type-arg]
        pass

    with pytest.raises(TypeError):
        C.Found(Dict())
    assert C.Found(avps={})._avps == {}
    with pytest.raises(AttributeError):
        C.Found({})._avps = {}  # type: ignore[misc]
    # a decoder that appends while many() runs: both see the list grow, as a comprehension does
    for found_type in (C.Found, cc._PyFound):
        items: list[Any] = [(1,), (2,)]

        def grow(item: Any, items: list[Any] = items) -> Any:
            if len(items) < 4:
                items.append((len(items) + 1,))
            return item[0]

        assert found_type({"x": items}).many("x", grow) == (1, 2, 3, 4)


READER_DATA = st.one_of(
    st.binary(max_size=9),
    st.sampled_from([b"\x80", b"\xff\xfe", "pgw.exämple".encode(), b"\xed\xa0\x80", bytes(4), bytes(8)]),
    st.text(max_size=5).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=8).map(bytearray),
    st.sampled_from([None, "text", 5]),
)
READER_ITEMS = st.one_of(
    st.builds(lambda code, data: (code, 0x40, None, data), st.integers(0, 2**32 - 1), READER_DATA),
    st.builds(lambda data, extra: (1, 0x40, None, data, *extra), READER_DATA, st.lists(U8, max_size=2)),
    st.sampled_from([(), (1, 2, 3), [1, 0x40, None, b"\x00\x00\x00\x01"], None, b"\x00\x00\x00\x01"]),
)


@needs_c
@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(READERS)), item=READER_ITEMS)
def test_readers_equal_the_python_readers(name: str, item: Any) -> None:
    assert C is not None
    python = getattr(cc, READERS[name][1])
    reader = c_reader(name)
    assert outcome(lambda: reader(item)) == outcome(lambda: python(item))


@needs_c
def test_reader_calls_its_fallback_for_anything_but_the_common_case() -> None:
    assert C is not None
    calls: list[Any] = []

    def fallback(item: Any) -> str:
        calls.append(item)
        return "fallback"

    u32 = C.Reader("u32", fallback)
    assert u32((1, 0x40, None, b"\x00\x00\x01\x00")) == 256 and not calls
    assert u32((1, 0x40, None, b"\x00\x01\x00")) == "fallback"
    assert u32((1, 0x40, None, bytearray(4))) == "fallback"  # type: ignore[arg-type]
    assert C.Reader("u64", fallback)((1, 0, None, b"\xff" * 8)) == 2**64 - 1
    assert C.Reader("i32", fallback)((1, 0, None, b"\xff\xff\xff\xfe")) == -2
    assert C.Reader("utf8", fallback)((1, 0, None, "ä".encode())) == "ä"
    assert C.Reader("utf8", fallback)((1, 0, None, b"\xc3")) == "fallback"
    assert C.Reader("ascii", fallback)((1, 0, None, b"pgw")) == "pgw"
    assert C.Reader("ascii", fallback)((1, 0, None, "ä".encode())) == "fallback"
    assert len(calls) == 4
    assert repr(u32).startswith("Reader(u32, <function") and u32.fallback is fallback
    with pytest.raises(ValueError, match="unknown Reader kind"):
        C.Reader("u16", fallback)
    with pytest.raises(TypeError, match="callable"):
        C.Reader("u32", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keyword"):
        u32(item=(1, 0, None, b""))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 1 positional arguments but 2 were given"):
        u32(1, 2)  # type: ignore[call-arg]


# --- whole requests: decode + parse_request ---------------------------------------------------------------

msisdns = st.none() | st.from_regex(r"[0-9]{5,15}", fullmatch=True)
GY = st.builds(
    build_gy_ccr,
    session_id=text,
    origin_host=identity,
    origin_realm=identity,
    destination_realm=identity,
    cc_request_type=st.sampled_from(CcRequestType),
    cc_request_number=u32,
    msisdn=msisdns,
    multiple_services_credit_control=st.lists(msccs, max_size=2),
    event_timestamp=st.none() | times,
    destination_host=st.none() | identity,
    origin_state_id=st.none() | u32,
    subscription_id=st.lists(subscription_ids, max_size=1),
)
GX = st.builds(
    build_gx_ccr_update,
    session_id=text,
    origin_host=identity,
    origin_realm=identity,
    destination_realm=identity,
    cc_request_number=u32,
    msisdn=msisdns,
    usage_monitoring_information=st.lists(umis, max_size=2),
    event_trigger=st.lists(st.sampled_from(EventTrigger), max_size=2),
    event_timestamp=st.none() | times,
    destination_host=st.none() | identity,
    origin_state_id=st.none() | u32,
)
SY = st.builds(
    build_sy_snr,
    session_id=text,
    origin_host=identity,
    origin_realm=identity,
    destination_realm=identity,
    destination_host=identity,
    policy_counter_status_report=st.lists(pcsrs, max_size=2),
    msisdn=msisdns,
    origin_state_id=st.none() | u32,
    sn_request_type=st.none() | u32,
)
REQUESTS = st.one_of(GY, GX, SY)


def _m_flipped(item: Avp) -> Avp:
    return Avp(item.code, item.flags ^ 0x40, item.vendor_id, item.data)


@st.composite
def mutated(draw: st.DrawFn, message: Message) -> bytes:
    """The request's octets with a fault or two a peer may send: an AVP dropped (5005), repeated
    (5009), with its M bit flipped (3009), of the wrong size (5014) or text (5004), an unknown AVP
    with or without M (5001 or ignored), a Grouped AVP's data replaced by broken or odd members
    (errors wrapped in their group), or octets changed anywhere (framing: 5014, 5015, ...)."""
    avps = list(message.avps)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(
            st.sampled_from(["drop", "repeat", "m-bit", "size", "text", "unknown", "group", "nested", "none"])
        )
        at = draw(st.integers(0, len(avps) - 1)) if avps else 0
        if how == "drop" and avps:
            del avps[at]
        elif how == "repeat" and avps:
            avps.insert(draw(st.integers(0, len(avps))), avps[at])
        elif how == "m-bit" and avps:
            avps[at] = _m_flipped(avps[at])
        elif how == "size" and avps:
            a = avps[at]
            avps[at] = Avp(a.code, a.flags, a.vendor_id, a.data[: draw(st.integers(0, 7))])
        elif how == "text" and avps:
            a = avps[at]
            avps[at] = Avp(a.code, a.flags, a.vendor_id, draw(st.sampled_from([b"\xff", "ä".encode(), b""])))
        elif how == "unknown":
            code, vendor = _split(draw(st.sampled_from([99999, (99999, 10415), 873, (873, 10415), 55])))
            flags = draw(st.sampled_from([0x00, 0x40])) | (0x80 if vendor else 0)
            avps.insert(
                draw(st.integers(0, len(avps))), Avp(code, flags, vendor, draw(st.binary(max_size=6)))
            )
        elif how == "group" and avps:
            a = avps[at]
            grammar = GRAMMARS[draw(st.sampled_from(sorted(GRAMMARS)))]
            avps[at] = Avp(a.code, a.flags, a.vendor_id, draw(group_data(grammar)))
        elif how == "nested" and avps:
            # a fault one level down: an MSCC's USU or a UMI's GSU with a member mutated
            a = avps[at]
            try:
                inner = list(codec.decode_avps(a.data))
            except DecodeError:
                continue
            if inner:
                i = draw(st.integers(0, len(inner) - 1))
                inner[i] = draw(st.sampled_from([_m_flipped(inner[i]), Avp(99999, 0x40, None, b"")]))
                avps[at] = Avp(a.code, a.flags, a.vendor_id, b"".join(encode_avp(x) for x in inner))
    wire = bytearray(encode(dataclasses.replace(message, avps=tuple(avps))))
    if draw(st.integers(0, 4)) == 0:  # and now and then the octets themselves
        at = draw(st.integers(0, len(wire) - 1))
        wire[at] = draw(U8)
        if draw(st.booleans()) and len(wire) > HEADER_LENGTH:
            del wire[draw(st.integers(HEADER_LENGTH, len(wire) - 1)) :]
            wire[1:4] = len(wire).to_bytes(3, "big")
    return bytes(wire)


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=REQUESTS, strict=st.booleans(), data=st.data())
def test_mutated_requests_parse_alike(message: Message, strict: bool, data: st.DataObject) -> None:
    wire = data.draw(mutated(message))
    if both(lambda: decode(wire))[0] == "raised":
        return
    decoded = decode(wire)
    both(lambda: parse_request(decoded, reject_unknown_mandatory=strict))


@needs_c
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=REQUESTS, strict=st.booleans())
def test_requests_parse_alike(message: Message, strict: bool) -> None:
    wire = encode(message)
    assert both(lambda: decode(wire)) == ("returned", shape(message))
    kind, _result = both(lambda: parse_request(decode(wire), reject_unknown_mandatory=strict))
    assert kind == "returned"


class PythonRan(AssertionError):
    pass


@contextmanager
def no_python_fallback() -> Iterator[None]:
    """The C path on, and every Python fallback of the decode side refusing to run."""

    def refuse(what: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            raise PythonRan(f"the Python {what} ran")

        return run

    def unknown_only(name: str) -> Callable[..., Any]:
        """An enum reader's fallback that may run only for a value its members lack (the enum then
        makes its UNKNOWN_ member, in Python), read by the C path."""
        registry = READERS[name][2]
        assert registry is not None and C is not None
        read = C.Reader("i32", refuse(name))

        def fallback(item: Any) -> Any:
            value = read(item)
            if value in registry._value2member_map_:
                raise PythonRan(f"the Python {name} ran for a member")
            return cc._member(registry, value)

        return fallback

    assert C is not None
    saved = (cc._Parser.collect, codec._scan_avps)
    classes = [*MAKERS.values(), Message]
    inits = [vars(cls)["__init__"] for cls in classes]
    with c_path(c_on=True):
        for name, (_kind, _python, registry) in READERS.items():
            setattr(cc, name, c_reader(name, refuse(name) if registry is None else unknown_only(name)))
        cc._Parser.collect = refuse("collect")  # type: ignore[method-assign]
        codec._scan_avps = refuse("_scan_avps")
        for cls in classes:  # the makers set the slots: no __init__ runs
            cls.__init__ = refuse(f"{cls.__name__}.__init__")  # type: ignore[misc]
        try:
            yield
        finally:
            cc._Parser.collect, codec._scan_avps = saved  # type: ignore[method-assign]
            for cls, init in zip(classes, inits, strict=True):
                cls.__init__ = init  # type: ignore[misc]


@needs_c
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=REQUESTS, strict=st.booleans())
def test_valid_requests_never_leave_the_c_path(message: Message, strict: bool) -> None:
    assert C is not None
    wire = encode(message)
    assert C.decode_avps(wire, HEADER_LENGTH, len(wire), Avp) is not None, "the C decode declined"
    with c_path(c_on=False):
        expected = outcome(lambda: parse_request(decode(wire), reject_unknown_mandatory=strict))
    with no_python_fallback():
        fast = outcome(lambda: parse_request(decode(wire), reject_unknown_mandatory=strict))
    assert fast == expected and fast[0] == "returned"


@needs_c
def test_the_c_path_takes_the_benchmark_request() -> None:
    """The Gy CCR-U of bench/ingest_diameter.py (realistic shape): every step in C."""
    assert C is not None
    from protocols.diameter.credit_control import (
        MultipleServicesCreditControl,
        RequestedServiceUnit,
        SubscriptionId,
        SubscriptionIdType,
        UsedServiceUnit,
    )

    message = build_gy_ccr(
        session_id="pgw1;1717000000;0000000042;gy",
        origin_host="pgw1.epc.mnc001.mcc001.3gppnetwork.org",
        origin_realm="epc.mnc001.mcc001.3gppnetwork.org",
        destination_realm="bench.localdomain",
        cc_request_type=CcRequestType.UPDATE_REQUEST,
        cc_request_number=3,
        event_timestamp=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        subscription_id=[
            SubscriptionId(
                subscription_id_type=SubscriptionIdType.END_USER_E164, subscription_id_data="3161"
            ),
            SubscriptionId(subscription_id_type=SubscriptionIdType.END_USER_IMSI, subscription_id_data="001"),
        ],
        multiple_services_credit_control=[
            MultipleServicesCreditControl(
                rating_group=100,
                requested_service_unit=RequestedServiceUnit(),
                used_service_unit=(
                    UsedServiceUnit(cc_time=60, cc_total_octets=5, cc_input_octets=1, cc_output_octets=4),
                ),
            )
        ],
    )
    ps_information = Avp(874, 0xC0, 10415, encode_avp(Avp(30, 0x40, None, b"internet")))
    extra = (
        avp(
            "User-Equipment-Info",
            [avp("User-Equipment-Info-Type", 0), avp("User-Equipment-Info-Value", b"1")],
        ),
        avp("Service-Information", [ps_information]),
    )
    wire = encode(dataclasses.replace(message, avps=message.avps + extra))
    with no_python_fallback():
        fast = outcome(lambda: parse_request(decode(wire)))
    with c_path(c_on=False):
        assert fast == outcome(lambda: parse_request(decode(wire)))
    assert fast[0] == "returned"


# --- reference counting --------------------------------------------------------------------------------


@needs_c
def test_no_references_leak_on_any_path() -> None:
    assert C is not None
    grammar = cc._MSCC
    usu = avp("Used-Service-Unit", [avp("CC-Total-Octets", 5), avp("Reporting-Reason", 3)])
    good = b"".join(
        encode_avp(a)
        for a in (avp("Rating-Group", 100), usu, Avp(99999, 0, None, b"x"), Avp(873, 0xC0, 10415, b""))
    )
    bad_m = good + encode_avp(Avp(432, 0, None, bytes(4)))  # Rating-Group twice, the 2nd with M clear
    over = good + encode_avp(avp("Rating-Group", 7))
    broken = good[:-1]
    avps = codec.decode_avps(good)
    raws = codec.scan_avps(good)
    odd_avps = (*avps, object.__new__(Avp))
    required = grammar.required
    names = ("Rating-Group", "Used-Service-Unit", "absent")
    readers = [c_reader(name) for name in READERS]
    items = [(1, 0x40, None, b"\x00\x00\x00\x05"), (1, 0x40, None, b"\xff\xff"), (1, 0x40, None, b"\x00" * 8)]
    items.append((1, 0x40, None, b"\x00\x00\x00\x63"))  # 99: no member of the enumerations
    make_usu = codec._record_maker(cc.UsedServiceUnit, C.Maker)
    make_event = codec._record_maker(peer.RequestReceived, C.Maker)
    odd = Avp(1, 0, None, bytearray(b"x"))  # type: ignore[arg-type]  # encode_avps declines it
    parts: list[Avp | bytes] = [*avps, b"\x00\x00\x00\x01\x40\x00\x00\x08", avps[0]]
    codes = (263, 432, 873)
    watched = [
        None,
        good,
        bad_m,
        over,
        broken,
        Avp,
        grammar.by_key,
        M_RULES,
        required,
        *avps,
        *raws,
        *names,
        *items,
        *parts,
        codes,
        odd,
        make_usu,
        make_event,
        cc.UsedServiceUnit,
        cc.ReportingReason.QHT,
    ]

    def run(n: int) -> None:
        for _ in range(n):
            for data in (good, bad_m, over, broken):
                C.scan_avps(data, 0, len(data))
                C.decode_avps(data, 0, len(data), Avp)
                C.members(data, grammar.by_key, M_RULES, True, required)
                C.members(data, grammar.by_key, M_RULES, False, grammar.required_names)
            C.collect(avps, Avp, grammar.by_key, M_RULES, True, required)
            C.collect(odd_avps, Avp, grammar.by_key, M_RULES, True, required)
            found = C.Found({"Rating-Group": raws[:1], "Used-Service-Unit": [raws[1], raws[1]]})
            for name in names:
                found.all(name)
                found.optional(name, len)
                found.many(name, len)
                with suppress(KeyError):
                    found.one(name, len)
            for reader in readers:
                for item in items:
                    with suppress(FailedAvpError):
                        reader(item)
            make_usu(cc_time=1, cc_total_octets=2, reporting_reason=cc.ReportingReason.QHT)
            make_event(good)
            with suppress(TypeError):
                make_usu(cc_time=1, nothing=2)
            with suppress(TypeError):
                make_event()
            C.encode_avps(avps, Avp)
            C.encode_avps([*avps, odd], Avp)
            C.encode_parts(parts, Avp)
            C.encode_parts([*parts, odd], Avp)
            C.select(avps, Avp, codes)
            C.select(odd_avps, Avp, codes)

    run(100)  # warm caches up
    gc.disable()  # a collection in between would move the counts
    try:
        before = [sys.getrefcount(o) for o in watched]
        run(1000)
        after = [sys.getrefcount(o) for o in watched]
    finally:
        gc.enable()
    assert after == before
    # and what no watched object shows: the new objects are all freed again
    tracemalloc.start()
    try:
        run(500)
        first, _ = tracemalloc.get_traced_memory()
        run(5000)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 64 * 1024, f"{second - first} octets more after 5000 more rounds"

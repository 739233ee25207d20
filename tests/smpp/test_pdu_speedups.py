"""The optional C codec of submit_sm / deliver_sm (protocols/smpp/_speedups.c) against the pure-Python
reference in protocols/smpp/pdu.py.

The extension must be built here: CI installs the project with a C compiler, so a missing extension
fails this module instead of skipping it, unless ``TGW_PURE_PYTHON`` asks for the pure-Python codec
(then the differential tests still switch the built extension on in-process, and skip only if it was
not built).

Properties, each over hypothesis examples:

- encoding: for any valid SubmitSm / DeliverSm the C function returns the body (it does not fall back)
  and it equals the Python body byte for byte; for any field values at all, ``encode_pdu`` with and
  without the C codec gives the same bytes or the same exception (type, message, status);
- decoding: for valid PDUs the C function returns the values (no fall back); for any bytes (valid,
  mutated, random bodies) ``decode_pdu`` with and without the C codec gives the same PDU, field types
  included, or the same exception (type, message, status, command_id, sequence_number).
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import os
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pdu_roundtrip import BODY, LATIN1_NO_NUL, TLVS, U8, U32, _frame, cstr, pdu_of

import protocols.smpp
from protocols.errors import DecodeError
from protocols.smpp import pdu as p
from protocols.smpp.constants import CommandId
from protocols.smpp.pdu import HEADER_LENGTH, Pdu, body_decoder, decode_pdu, encode_pdu
from protocols.smpp.tlv import _KINDS, Tlv, _make_tlv, tlvs

try:
    from protocols.smpp import _speedups as C
except ImportError:
    C = None  # type: ignore[assignment]

PURE_FORCED = os.environ.get("TGW_PURE_PYTHON", "") not in ("", "0")
# without TGW_PURE_PYTHON a missing extension fails (test_the_extension_is_built and every C test)
needs_c = pytest.mark.skipif(C is None and PURE_FORCED, reason="TGW_PURE_PYTHON set and no C extension")

SM_CLASSES = (p.SubmitSm, p.DeliverSm)
SM_FIELDS = [f.name for f in dataclasses.fields(p.SubmitSm)][2:]  # body fields in wire order
CSTR_FIELDS = {
    "service_type": 6,
    "source_addr": 21,
    "destination_addr": 21,
    "schedule_delivery_time": 17,
    "validity_period": 17,
}
OCTET_FIELDS = [
    n for n in SM_FIELDS if n not in CSTR_FIELDS and n not in ("short_message", "optional_parameters")
]


@contextmanager
def codec(c_on: bool) -> Iterator[None]:
    """Run the block with the C codec switched on or off in pdu.py (the module globals it reads)."""
    saved = p._encode_sm, p._decode_sm
    if c_on:
        assert C is not None, "protocols.smpp._speedups is not built"
        p._encode_sm, p._decode_sm = C.encode_sm, C.decode_sm
    else:
        p._encode_sm = p._decode_sm = None
    try:
        yield
    finally:
        p._encode_sm, p._decode_sm = saved


def shape(value: Any) -> Any:
    """A value with the type of every part, so that bytes and bytearray (equal) still differ."""
    if isinstance(value, Pdu | Tlv):
        return (type(value), tuple(shape(getattr(value, f.name)) for f in dataclasses.fields(value)))  # type: ignore[arg-type]
    if isinstance(value, tuple):
        return (tuple, tuple(shape(v) for v in value))
    return (type(value), value)


def outcome(run: Callable[[], Any]) -> Any:
    try:
        result = run()
    except DecodeError as exc:
        return ("raised", type(exc), str(exc), exc.status, exc.command_id, exc.sequence_number)
    except Exception as exc:
        return ("raised", type(exc), str(exc), getattr(exc, "status", None))
    return ("returned", shape(result))


def both(run: Callable[[], Any]) -> Any:
    """Run with the C codec and without, assert the same outcome, and return it."""
    with codec(c_on=True):
        fast = outcome(run)
    with codec(c_on=False):
        slow = outcome(run)
    assert fast == slow
    return fast


def body_values(pdu: Pdu) -> list[Any]:
    return [getattr(pdu, name) for name in SM_FIELDS]


# --- the extension is there, and the switch works --------------------------------------------------


def test_the_extension_is_built() -> None:
    if PURE_FORCED:
        assert p._encode_sm is None
        assert p._decode_sm is None
    else:
        assert C is not None, "protocols.smpp._speedups is not built: pip install -e . with a C compiler"
        assert p._encode_sm is C.encode_sm
        assert p._decode_sm is C.decode_sm


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_tgw_pure_python_forces_the_fallback(value: str) -> None:
    assert p._load_speedups({"TGW_PURE_PYTHON": value}) == (None, None)


@needs_c
@pytest.mark.parametrize("environ", [{}, {"TGW_PURE_PYTHON": ""}, {"TGW_PURE_PYTHON": "0"}])
def test_the_extension_is_used_unless_switched_off(environ: dict[str, str]) -> None:
    assert C is not None
    assert p._load_speedups(environ) == (C.encode_sm, C.decode_sm)


def test_a_missing_extension_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a machine without a C compiler sees: the import fails
    monkeypatch.setitem(sys.modules, "protocols.smpp._speedups", None)
    monkeypatch.delattr(protocols.smpp, "_speedups", raising=False)
    assert p._load_speedups({}) == (None, None)


# --- encoding ----------------------------------------------------------------------------------------

SM_PDU = st.one_of([pdu_of(cls) for cls in SM_CLASSES])


@needs_c
@given(SM_PDU)
@settings(max_examples=300, deadline=None)
def test_c_encode_equals_python_encode(pdu: p.SubmitSm | p.DeliverSm) -> None:
    assert C is not None
    fast = C.encode_sm(*body_values(pdu))
    assert fast is not None, "the C codec fell back on a valid PDU"
    with codec(c_on=False):
        assert fast == pdu.encode_body()
    with codec(c_on=True):
        assert pdu.encode_body() is not None
        assert both(lambda: encode_pdu(pdu))[0] == "returned"


class Str(str):
    pass


class Octet(enum.IntEnum):
    SEVEN = 7


class HandMadeTlv:
    """Not a Tlv, but has its attributes: encode_tlvs takes it."""

    def __init__(self, tag: Any, value: Any) -> None:
        self.tag = tag
        self.value = value


class FailingTlv:
    @property
    def tag(self) -> int:
        raise RuntimeError("tag unavailable")

    value = b""


def odd_cstr(size: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        cstr(size),
        st.text(LATIN1_NO_NUL, min_size=size - 1, max_size=size + 1),  # at and over the limit
        st.text(max_size=4),  # NUL and characters beyond latin-1
        st.sampled_from(["a\x00b", "\x00", "\u20ac", "\U0001f600"]),
        cstr(size).map(Str),
        st.binary(max_size=3),
        st.none(),
        st.integers(0, 9),
    )


ODD_OCTET = st.one_of(
    U8,
    st.integers(-3, -1),
    st.integers(256, 2**70),
    st.integers(-(2**70), -(2**63)),
    st.booleans(),
    st.just(Octet.SEVEN),
    st.binary(max_size=2),  # %c takes a 1-octet bytes in the Python fast path
    st.none(),
    st.floats(0, 255, allow_nan=False),
    st.text(max_size=1),
)
ODD_SHORT_MESSAGE = st.one_of(
    st.binary(max_size=256),
    st.binary(min_size=254, max_size=256),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(memoryview),  # type: ignore[arg-type]
    st.text(max_size=3),
    st.none(),
)
ODD_TLV = st.one_of(
    st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=6)),
    st.builds(Tlv, st.sampled_from([-1, 0x10000, 2**70, True]), st.binary(max_size=2)),
    st.builds(
        Tlv,
        st.integers(0, 0xFFFF),
        st.one_of(st.text(max_size=2), st.none(), st.binary(max_size=3).map(bytearray)),
    ),
    st.builds(HandMadeTlv, st.integers(0, 0xFFFF), st.binary(max_size=3)),
    st.builds(HandMadeTlv, st.none(), st.binary(max_size=3)),
    st.just(FailingTlv()),
    st.just(Tlv(0x1400, bytes(0x10000))),  # a length that does not fit two octets
    st.just(Tlv(0x1400, bytes(0xFFFF))),  # one that just does
    st.integers(),
)
ODD_TLVS = st.one_of(
    TLVS,
    st.lists(ODD_TLV, max_size=3).map(tuple),
    st.lists(ODD_TLV, max_size=2),  # a list, not a tuple
    st.none(),
)
ODD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    **{name: odd_cstr(size) for name, size in CSTR_FIELDS.items()},
    **dict.fromkeys(OCTET_FIELDS, ODD_OCTET),
    "short_message": ODD_SHORT_MESSAGE,
    "optional_parameters": ODD_TLVS,
}


@needs_c
@given(st.sampled_from(SM_CLASSES), st.data())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_field_values_encode_alike(cls: type[Pdu], data: st.DataObject) -> None:
    # mostly valid values with a few odd ones, so that each odd value is the only fault now and then
    names = data.draw(st.sets(st.sampled_from(SM_FIELDS), max_size=3))
    pdu = cls(**{name: data.draw(ODD_FIELDS[name]) for name in names})
    both(lambda: encode_pdu(pdu))


@needs_c
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("service_type", "x" * 6),
        ("source_addr", "1" * 21),
        ("destination_addr", "2\x003"),
        ("schedule_delivery_time", "\u20ac"),
        ("validity_period", Str("")),
        ("esm_class", 256),
        ("protocol_id", -1),
        ("data_coding", 2**64),
        ("priority_flag", b"\x01"),
        ("registered_delivery", None),
        ("short_message", bytes(255)),
        ("short_message", bytearray(b"hi")),
        ("optional_parameters", [Tlv(0x1400, b"")]),
        ("optional_parameters", (Tlv(0x10000, b""),)),
        ("optional_parameters", (Tlv(0x1400, "text"),)),  # type: ignore[arg-type]
        ("optional_parameters", (Tlv(0x1400, bytes(0x10000)),)),
        ("optional_parameters", (HandMadeTlv(None, b""),)),
        ("optional_parameters", (object(),)),
        ("optional_parameters", (FailingTlv(),)),
    ],
)
def test_c_encode_leaves_what_is_not_plainly_valid_to_python(name: str, value: Any) -> None:
    assert C is not None
    values = body_values(dataclasses.replace(p.SubmitSm(), **{name: value}))
    assert C.encode_sm(*values) is None
    both(lambda: encode_pdu(p.SubmitSm(**{name: value})))


@needs_c
def test_c_encode_takes_int_subclasses_like_the_python_path() -> None:
    assert C is not None
    pdu = p.SubmitSm(esm_class=Octet.SEVEN, registered_delivery=True, optional_parameters=(Tlv(True, b""),))
    assert C.encode_sm(*body_values(pdu)) is not None
    assert both(lambda: encode_pdu(pdu))[0] == "returned"


@needs_c
@pytest.mark.parametrize("size", [0, 1, 255, 256, 300, 0x1234, 0xFFFF])
def test_c_encode_writes_tlv_lengths_of_any_size(size: int) -> None:
    assert C is not None
    params = (
        Tlv(0x1400, bytes(range(256)) * (size // 256) + bytes(size % 256)),
        *tlvs(message_payload=b"ab"),
    )
    pdu = p.DeliverSm(short_message=b"\xff" * 254, optional_parameters=params)
    fast = C.encode_sm(*body_values(pdu))
    with codec(c_on=False):
        assert fast == pdu.encode_body()
    assert both(lambda: decode_pdu(encode_pdu(pdu))) == ("returned", shape(pdu))


class Shifty:
    """A TLV whose value grows each time it is read: the C codec must not overrun its buffer."""

    tag = 0x1400

    def __init__(self) -> None:
        self.reads = 0

    @property
    def value(self) -> bytes:
        self.reads += 1
        return bytes(self.reads)


class Shrinky(Shifty):
    @property
    def value(self) -> bytes:
        self.reads += 1
        return bytes(10 - self.reads)


@needs_c
@pytest.mark.parametrize("make", [Shifty, Shrinky])
def test_c_encode_rechecks_tlv_values_it_reads_twice(make: Callable[[], Shifty]) -> None:
    assert C is not None
    tlv = make()
    assert C.encode_sm(*[*body_values(p.SubmitSm())[:-1], (tlv,)]) is None
    assert tlv.reads == 2


class Vanishing:
    """A TLV whose tag is there on the first read only."""

    value = b"v"

    def __init__(self) -> None:
        self.tag_reads = 0

    @property
    def tag(self) -> int:
        self.tag_reads += 1
        if self.tag_reads > 1:
            raise AttributeError("tag")
        return 0x1400


@needs_c
def test_c_encode_rechecks_tlvs_that_fail_on_the_second_read() -> None:
    assert C is not None
    tlv = Vanishing()
    assert C.encode_sm(*[*body_values(p.SubmitSm())[:-1], (tlv,)]) is None
    assert tlv.tag_reads == 2


@needs_c
def test_c_encode_checks_its_argument_count() -> None:
    assert C is not None
    with pytest.raises(TypeError, match="takes 18 positional arguments but 2 were given"):
        C.encode_sm("", 0)  # type: ignore[call-arg]


# --- decoding ----------------------------------------------------------------------------------------


@needs_c
@given(SM_PDU)
@settings(max_examples=300, deadline=None)
def test_c_decode_equals_python_decode(pdu: p.SubmitSm | p.DeliverSm) -> None:
    assert C is not None
    wire = encode_pdu(pdu)
    values = C.decode_sm(wire, _KINDS, _make_tlv)
    assert values is not None, "the C codec fell back on a valid PDU"
    assert shape(tuple(values)) == shape(tuple(body_values(pdu)))
    assert both(lambda: decode_pdu(wire)) == ("returned", shape(pdu))


SM_IDS = st.sampled_from([int(CommandId.SUBMIT_SM), int(CommandId.DELIVER_SM)])


@needs_c
@given(SM_IDS, U32, U32, BODY)
@settings(max_examples=500, deadline=None)
def test_random_bodies_decode_alike(command_id: int, status: int, seq: int, body: bytes) -> None:
    wire = _frame(command_id, status, seq, body)
    both(lambda: decode_pdu(wire))
    decoder = body_decoder(command_id)
    assert decoder is not None
    both(lambda: decoder(seq, status, wire))


@needs_c
@given(SM_PDU, st.data())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_pdus_decode_alike(pdu: Pdu, data: st.DataObject) -> None:
    wire = bytearray(encode_pdu(pdu))
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["set", "cut", "insert", "nul"]))
        at = data.draw(st.integers(HEADER_LENGTH, len(wire)))
        if how == "set" and at < len(wire):
            wire[at] = data.draw(U8)
        elif how == "nul" and at < len(wire):
            wire[at] = 0
        elif how == "cut":
            del wire[at:]
        else:
            wire[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    if data.draw(st.booleans()):  # most faults hide behind a wrong command_length otherwise
        wire[0:4] = len(wire).to_bytes(4, "big")
    raw = bytes(wire)
    both(lambda: decode_pdu(raw))
    decoder = body_decoder(pdu.command_id)
    assert decoder is not None
    both(lambda: decoder(pdu.sequence_number, pdu.command_status, raw))


# TLV regions: standard tags (whose lengths are checked) and others, declared lengths that may lie
TLV_PIECE = st.builds(
    lambda tag, value, lie: (
        tag.to_bytes(2, "big") + (len(value) if lie is None else lie).to_bytes(2, "big") + value
    ),
    st.one_of(st.sampled_from(sorted(_KINDS)), st.integers(0, 0xFFFF)),
    st.binary(max_size=6),
    st.one_of(st.none(), st.none(), st.integers(0, 0xFFFF)),  # the declared length, if not the true one
)


@needs_c
@given(SM_PDU, st.lists(TLV_PIECE, max_size=4).map(b"".join), st.binary(max_size=3))
@settings(max_examples=500, deadline=None)
def test_tlv_regions_decode_alike(pdu: p.SubmitSm | p.DeliverSm, region: bytes, tail: bytes) -> None:
    body = encode_pdu(dataclasses.replace(pdu, optional_parameters=()))[HEADER_LENGTH:]
    wire = _frame(pdu.command_id, 0, 1, body + region + tail)
    both(lambda: decode_pdu(wire))


@needs_c
@given(SM_IDS, st.binary(max_size=80))
def test_any_bytes_through_the_body_decoder_decode_alike(command_id: int, raw: bytes) -> None:
    decoder = body_decoder(command_id)
    assert decoder is not None
    both(lambda: decoder(1, 0, raw))


@needs_c
@pytest.mark.parametrize(
    "body",
    [
        b"",  # nothing at all
        b"abcdef\x00",  # service_type over its 6 octets
        b"\x00\x01\x01" + b"1" * 21 + b"\x00",  # source_addr over its 21 octets
        b"\x00\x01\x01\x00\x01\x01\x00" + b"\x00" * 3,  # ends inside the fixed octets
        b"\x00" * 16,  # ends before sm_length (17 octets: every field empty or 0, sm_length 0)
        b"\x00" * 16 + b"\x05abc",  # sm_length runs past
        b"\x00" * 17 + b"\x00\x01",  # truncated TLV header
        b"\x00" * 17 + b"\x14\x00\x00\x05ab",  # TLV runs past
        b"\x00" * 17 + b"\x02\x04\x00\x01\x2a",  # user_message_reference of 1 octet
        b"\x00" * 17 + b"\x02\x04\x00\x03\x00\x00\x2a",  # ... of 3 octets
        b"\x00" * 17 + b"\x00\x05\x00\x01\x01" + b"\x00\x05\x00\x02\x01\x02",  # 2nd TLV bad
    ],
)
def test_c_decode_leaves_faults_to_python(body: bytes) -> None:
    assert C is not None
    wire = _frame(CommandId.SUBMIT_SM, 0, 9, body)
    assert C.decode_sm(wire, _KINDS, _make_tlv) is None
    kind, error_type, *_ = both(lambda: decode_pdu(wire))
    assert (kind, error_type) == ("raised", DecodeError)


@needs_c
def test_c_decode_leaves_other_inputs_to_python() -> None:
    assert C is not None
    wire = encode_pdu(p.SubmitSm(short_message=b"hi", optional_parameters=tlvs(user_message_reference=1)))
    assert C.decode_sm(wire, _KINDS, _make_tlv) is not None
    assert C.decode_sm(bytearray(wire), _KINDS, _make_tlv) is None  # type: ignore[arg-type]
    assert C.decode_sm(wire, list(_KINDS.items()), _make_tlv) is None  # type: ignore[arg-type]
    assert C.decode_sm(wire, {0x0204: "odd entry"}, _make_tlv) is None  # type: ignore[dict-item]
    assert C.decode_sm(wire, {0x0204: (None, "0", 2)}, _make_tlv) is None  # type: ignore[dict-item]
    assert C.decode_sm(wire, {}, lambda tag, value: (tag, value)) is not None  # unknown tags: any length
    decoder = body_decoder(CommandId.SUBMIT_SM)
    assert decoder is not None
    both(lambda: decoder(1, 0, bytearray(wire)))  # type: ignore[arg-type]


@needs_c
def test_c_decode_passes_on_errors_of_make_tlv() -> None:
    assert C is not None
    wire = encode_pdu(p.SubmitSm(optional_parameters=tlvs(user_message_reference=1)))

    def broken(tag: int, value: bytes) -> Tlv:
        raise ValueError(f"no TLV {tag:#06x} today")

    with pytest.raises(ValueError, match="no TLV 0x0204 today"):
        C.decode_sm(wire, _KINDS, broken)
    with pytest.raises(TypeError, match="takes 3 positional arguments but 1 were given"):
        C.decode_sm(wire)  # type: ignore[call-arg]


# --- reference counting --------------------------------------------------------------------------


@needs_c
def test_no_references_leak_on_any_path() -> None:
    assert C is not None
    good = p.SubmitSm(short_message=b"x" * 40, optional_parameters=tlvs(user_message_reference=42))
    wire = encode_pdu(good)
    bad_wire = wire[:-1]  # TLV runs past: None after the TLV framing check
    bad_len = _frame(CommandId.SUBMIT_SM, 0, 1, b"\x00" * 17 + b"\x02\x04\x00\x01\x2a")
    values = body_values(good)
    odd = [*values[:-1], (FailingTlv(),)]
    watched = [None, wire, bad_wire, bad_len, _KINDS, _make_tlv, *values, good.optional_parameters[0].value]

    def run(n: int) -> None:
        for _ in range(n):
            C.encode_sm(*values)
            C.encode_sm(*odd)
            C.decode_sm(wire, _KINDS, _make_tlv)
            C.decode_sm(bad_wire, _KINDS, _make_tlv)
            C.decode_sm(bad_len, _KINDS, _make_tlv)

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
        run(2000)
        first, _ = tracemalloc.get_traced_memory()
        run(20000)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 64 * 1024, f"{second - first} octets more after 20000 more rounds"

"""The encode side of the C accelerator (protocols/diameter/_speedups.c) against the pure-Python
reference in protocols/diameter/codec.py and credit_control.py (RFC 6733 sections 3 and 4.1).

- ``encode_avps`` / ``encode_parts`` give exactly ``b"".join(encode_avp(...))`` of the Python code,
  or None wherever that raises (a code, flags or Vendor-Id out of range, an AVP Length over 2**24) or
  meets anything but the plain case (a subclass, an unset slot, data that is not bytes), and never
  decline AVPs as the decoder makes them;
- ``select`` gives the AVPs the answer scan of ``credit_control._answer_avps`` can use, or None;
- whole answers: ``encode_answer`` and ``encode`` give the same octets (or the same error) with the C
  path on and off, and for a parsed request the C path is taken (no Python encoder runs).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_speedups import REQUESTS, avp_runs, both, c_path, outcome, shape

from protocols.diameter import codec
from protocols.diameter import credit_control as cc
from protocols.diameter.codec import HEADER_LENGTH, Avp, Message, decode, encode, encode_avp
from protocols.diameter.credit_control import (
    GrantedServiceUnit,
    answer,
    answer_services,
    encode_answer,
    parse_request,
)
from protocols.diameter.dictionary import avp
from protocols.errors import DecodeError

try:
    from protocols.diameter import _speedups as C
except ImportError:
    C = None  # type: ignore[assignment]

PURE_FORCED = os.environ.get("TGW_PURE_PYTHON", "") not in ("", "0")
needs_c = pytest.mark.skipif(C is None and PURE_FORCED, reason="TGW_PURE_PYTHON set and no C extension")


class Code(IntEnum):
    SESSION_ID = 263


@dataclasses.dataclass(frozen=True, slots=True)
class SubAvp(Avp):
    pass


def unset() -> Avp:
    return object.__new__(Avp)  # every slot unset: Python raises AttributeError


def built(code: Any, flags: Any, vendor_id: Any, data: Any) -> Avp:
    """An Avp with any field values (through the slots, as the decoder builds them: no checks)."""
    item = object.__new__(Avp)
    for name, value in zip(
        ("code", "flags", "vendor_id", "data"), (code, flags, vendor_id, data), strict=True
    ):
        vars(Avp)[name].__set__(item, value)
    return item


PLAIN = st.builds(
    lambda code, flags, vendor, data: Avp(code, flags | (0x80 if vendor is not None else 0), vendor, data),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 0x40, 0x20, 0x07]),
    st.none() | st.integers(0, 2**32 - 1),
    st.binary(max_size=11),
)
ODD = st.one_of(
    st.builds(
        built,
        st.sampled_from([-1, 2**32, 2**64, Code.SESSION_ID, True, 263.0, "263", None]) | st.integers(0, 9),
        st.sampled_from([-1, 256, 0x40, True, None, 2**70]),
        st.sampled_from([None, 0, 10415, -1, 2**32, "10415", True]),
        st.sampled_from([b"", b"ab", bytearray(b"ab"), memoryview(b"ab"), "ab", None, bytes(2**24 - 8)]),
    ),
    st.builds(lambda a: SubAvp(a.code, a.flags, a.vendor_id, a.data), PLAIN),
    st.builds(unset),
)
AVP_LISTS = st.lists(st.one_of(PLAIN, PLAIN, PLAIN, ODD), max_size=5)


def python_join(items: list[Any]) -> Any:
    with c_path(c_on=False):
        return outcome(
            lambda: b"".join([item if isinstance(item, bytes) else codec.encode_avp(item) for item in items])
        )


def slots(item: Any) -> tuple[Any, ...] | None:
    """The four fields of an exact Avp, None for anything else or an unset slot."""
    if type(item) is not Avp:
        return None
    try:
        return (item.code, item.flags, item.vendor_id, item.data)
    except AttributeError:
        return None


def plain(item: Any) -> bool:
    """What the C encoder takes: exact ints in range, exact bytes that fit the AVP Length."""
    fields = slots(item)
    if fields is None:
        return False
    code, flags, vendor, data = fields
    return (
        type(code) is int
        and 0 <= code < 2**32
        and type(flags) is int
        and 0 <= flags <= 0xFF
        and (vendor is None or (type(vendor) is int and 0 <= vendor < 2**32))
        and type(data) is bytes
        and len(data) + (8 if vendor is None else 12) <= 0xFFFFFF
    )


@needs_c
@settings(max_examples=500, deadline=None)
@given(avps=AVP_LISTS, as_tuple=st.booleans())
def test_encode_avps_equals_python_or_declines_where_it_raises(avps: list[Avp], as_tuple: bool) -> None:
    assert C is not None
    fast = C.encode_avps(tuple(avps) if as_tuple else avps, Avp)
    expected = python_join(avps)
    if all(plain(a) for a in avps):
        assert fast is not None, "the C path declined plain AVPs"
    if fast is not None:
        assert ("returned", shape(fast)) == expected
    else:
        assert not all(plain(a) for a in avps)
    assert both(lambda: codec.encode_avps(avps)) == expected
    assert both(lambda: codec.encode_avps(iter(avps))) == expected  # any iterable, as before
    for item in avps:
        both(lambda item=item: codec.encode_avp(item))


@needs_c
@settings(max_examples=300, deadline=None)
@given(avps=st.lists(PLAIN, max_size=6), octets=st.lists(st.binary(max_size=12), max_size=3), data=st.data())
def test_encode_parts_copies_octets_and_encodes_avps(
    avps: list[Avp], octets: list[bytes], data: st.DataObject
) -> None:
    assert C is not None
    parts: list[Avp | bytes] = data.draw(st.permutations([*avps, *octets]))
    expected = python_join(parts)
    assert expected[0] == "returned"
    assert ("returned", shape(C.encode_parts(parts, Avp))) == expected, "the C path declined plain parts"
    assert both(lambda: codec._encode_parts(parts)) == expected
    # encode_avps takes no octets: Python would not either
    if octets:
        assert C.encode_avps(parts, Avp) is None  # type: ignore[arg-type]
    odd = [*parts, bytearray(b"x"), built(1, 300, None, b"")]
    assert C.encode_parts(odd, Avp) is None  # type: ignore[arg-type]
    assert both(lambda: codec._encode_parts(odd))[0] == "raised"  # type: ignore[arg-type]


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=avp_runs())
def test_decoded_avps_are_never_declined(data: bytes) -> None:
    assert C is not None
    try:
        avps = codec.decode_avps(data)
    except DecodeError:
        assume(False)
        return
    assert C.encode_avps(avps, Avp) == data  # encode(decode(b)) == b, in C


@needs_c
def test_encode_avps_leaves_other_inputs_to_python() -> None:
    assert C is not None
    good = [avp("Session-Id", "s"), avp("CC-Request-Number", 1)]
    assert C.encode_avps(good, Avp) == b"".join(encode_avp(a) for a in good)
    assert C.encode_avps(iter(good), Avp) is None  # type: ignore[arg-type]
    assert C.encode_avps(good, SubAvp) is None  # not the instances' class
    assert C.encode_avps([], Avp) == b"" and C.encode_parts([], Avp) == b""
    many = good * 40  # more than the 16 kept on the stack
    assert C.encode_avps(many, Avp) == b"".join(encode_avp(a) for a in many)
    with pytest.raises(TypeError, match="takes 2 positional arguments but 1 were given"):
        C.encode_avps(good)  # type: ignore[call-arg]


# --- select -----------------------------------------------------------------------------------------------

CODES = st.lists(st.sampled_from([263, 415, 416, 284, 1, 2**31]), max_size=4, unique=True).map(tuple)


def python_select(avps: list[Avp], codes: tuple[int, ...]) -> list[Avp]:
    return [a for a in avps if a.vendor_id is None and a.code in codes]


@needs_c
@settings(max_examples=500, deadline=None)
@given(avps=AVP_LISTS, codes=CODES, as_tuple=st.booleans())
def test_select_equals_python_or_declines(avps: list[Avp], codes: tuple[int, ...], as_tuple: bool) -> None:
    assert C is not None
    picked = C.select(tuple(avps) if as_tuple else avps, Avp, codes)
    selectable = all((fields := slots(a)) is not None and type(fields[0]) is int for a in avps)
    assert (picked is not None) == selectable
    if picked is not None:
        assert [id(a) for a in picked] == [id(a) for a in python_select(avps, codes)]


@needs_c
def test_select_leaves_other_inputs_to_python() -> None:
    assert C is not None
    avps = [avp("Session-Id", "s"), Avp(263, 0xC0, 0, b"v"), avp("CC-Request-Number", 1)]
    assert C.select(avps, Avp, (263, 415)) == [avps[0], avps[2]]
    assert C.select(avps, Avp, ()) == []
    for codes in [[263], (263.0,), (Code.SESSION_ID,), (-1,), (2**70,), tuple(range(9))]:
        assert C.select(avps, Avp, codes) is None, codes  # type: ignore[arg-type]
    assert C.select(iter(avps), Avp, (263,)) is None  # type: ignore[arg-type]
    assert C.select([*avps, SubAvp(263, 0, None, b"")], Avp, (263,)) is None
    assert C.select([*avps, built(Code.SESSION_ID, 0, None, b"")], Avp, (263,)) is None


# --- whole answers -------------------------------------------------------------------------------------

proxy_info = avp("Proxy-Info", [avp("Proxy-Host", "dra.example.org"), avp("Proxy-State", b"\x01")])


@needs_c
@settings(max_examples=200, deadline=None)
@given(
    message=REQUESTS,
    result=st.sampled_from([2001, 3004, 3009, 4012, 5005]),
    extra=st.lists(
        st.sampled_from([proxy_info, Avp(263, 0xC0, 10415, b"x"), avp("Session-Id", "second")]), max_size=3
    ),
    odd=st.lists(ODD, max_size=1),
    granted=st.none() | st.integers(0, 2**40),
)
def test_answers_encode_alike_with_and_without_the_c_path(
    message: Message, result: int, extra: list[Avp], odd: list[Avp], granted: int | None
) -> None:
    request = parse_request(message)
    services = (
        answer_services(
            request, result, None if granted is None else GrantedServiceUnit(cc_total_octets=granted)
        )
        if isinstance(request, cc.CreditControlRequest)
        else ()
    )
    changed = dataclasses.replace(message, avps=(*message.avps, *extra, *odd))
    kwargs: dict[str, Any] = {
        "origin_host": "gw.example.net",
        "origin_realm": "example.net",
        "multiple_services_credit_control": services,
    }
    fast = both(lambda: encode_answer(changed, result, **kwargs))
    assert both(lambda: encode(answer(changed, result, **kwargs))) == fast
    both(lambda: encode(changed))


def spied(function: Callable[..., Any], calls: list[Any]) -> Callable[..., Any]:
    def spy(*args: Any) -> Any:
        result = function(*args)
        calls.append(result)
        return result

    return spy


@needs_c
@settings(max_examples=100, deadline=None)
@given(message=REQUESTS, result=st.sampled_from([2001, 3004, 5005]))
def test_answers_to_parsed_requests_take_the_c_path(message: Message, result: int) -> None:
    """What the server sends per request: select and encode_parts in C, no Python encoder."""
    assert C is not None
    wire = encode(message)
    request = decode(wire)
    selected: list[Any] = []
    encoded: list[Any] = []
    services = answer_services(parse_request(request), result) if request.command_code == 272 else ()

    def refuse(*args: Any) -> Any:
        raise AssertionError("the Python encode_avp ran")

    with c_path(c_on=True):
        # the answer's shared AVPs (identity, MSCCs) are built and encoded once, then reused
        encode_answer(
            request, result, origin_host="gw", origin_realm="r", multiple_services_credit_control=services
        )
        saved = (cc._c_select, codec._c_encode_parts, codec.encode_avp)
        cc._c_select = spied(C.select, selected)
        codec._c_encode_parts = spied(C.encode_parts, encoded)
        codec.encode_avp = refuse
        try:
            octets = encode_answer(
                request, result, origin_host="gw", origin_realm="r", multiple_services_credit_control=services
            )
        finally:
            cc._c_select, codec._c_encode_parts, codec.encode_avp = saved
    assert selected and None not in selected and encoded and None not in encoded
    with c_path(c_on=False):
        assert octets == encode(
            answer(
                request, result, origin_host="gw", origin_realm="r", multiple_services_credit_control=services
            )
        )


@needs_c
def test_headers_encode_alike() -> None:
    fields = {"command_flags": 0, "command_code": 272, "application_id": 4, "hop_by_hop": 1, "end_to_end": 2}
    assert both(lambda: codec.encode_header(**fields, body_length=4)) == (
        "returned",
        shape(b"\x01\x00\x00\x18\x00\x00\x01\x10\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x02"),
    )
    for change in [{"command_flags": 256}, {"hop_by_hop": -1}, {"version": 2**8}, {"body_length": 2**24}]:
        kwargs = {**fields, "body_length": 4, **change}
        kind, *_ = both(lambda kwargs=kwargs: codec.encode_header(**kwargs))
        assert kind == "raised", change
    assert HEADER_LENGTH == 20

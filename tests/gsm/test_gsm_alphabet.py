"""protocols.gsm.alphabet: TS 23.038 7-bit default alphabet, packing, the <CR> rule, UCS-2 and
the part capacities, against tests/vectors/gsm/alphabet.json and two independent codecs
(pycrate ``TS23038`` and smspdudecoder ``codecs.GSM``)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from gsm_helpers import GSM7_CHARS, gsm7_text, load, unicode_text
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrate_mobile import TS23038
from smspdudecoder.codecs import GSM as SmspduGsm
from smspdudecoder.codecs import UCS2 as SmspduUcs2

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm import (
    CR,
    ESC,
    GSM7_BASIC,
    GSM7_EXTENSION,
    Coding,
    choose_coding,
    decode_gsm7,
    decode_ucs2,
    encode_gsm7,
    encode_parts,
    encode_ucs2,
    fill_bits,
    gsm7_length,
    header_septets,
    is_gsm7,
    pack_septets,
    pack_ussd,
    part_capacity,
    parts_needed,
    ucs2_length,
    unpack_septets,
    unpack_ussd,
)

V = load("alphabet")


# --- vectors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", V["gsm7_packed"], ids=[v["name"] for v in V["gsm7_packed"]])
def test_gsm7_packed_vectors(vector: dict[str, Any]) -> None:
    septets = encode_gsm7(vector["text"])
    assert len(septets) == vector["septets"] == gsm7_length(vector["text"])
    packed = bytes.fromhex(vector["hex"])
    assert pack_septets(septets) == packed
    assert decode_gsm7(unpack_septets(packed, vector["septets"])) == vector["text"]


@pytest.mark.parametrize("vector", V["ussd"], ids=[v["name"] for v in V["ussd"]])
def test_ussd_vectors(vector: dict[str, Any]) -> None:
    packed = bytes.fromhex(vector["hex"])
    assert pack_ussd(vector["text"]) == packed
    assert unpack_ussd(packed) == vector["text"]


@pytest.mark.parametrize("vector", V["ucs2"], ids=[v["name"] for v in V["ucs2"]])
def test_ucs2_vectors(vector: dict[str, Any]) -> None:
    assert encode_ucs2(vector["text"]) == bytes.fromhex(vector["hex"])
    assert decode_ucs2(bytes.fromhex(vector["hex"])) == vector["text"]
    assert choose_coding(vector["text"]) is Coding.UCS2


def test_capacities() -> None:
    caps = V["capacity"]
    for name in ("GSM7", "UCS2", "EIGHT_BIT"):
        assert [part_capacity(Coding[name], h) for h in (0, 6, 7)] == caps[name]


def test_fill_bits() -> None:
    for case in V["fill_bits"]["cases"]:
        assert fill_bits(case["header_length"]) == case["fill_bits"]
        assert header_septets(case["header_length"]) == case["header_septets"]
    assert [fill_bits(n) for n in range(8)] == [0, 6, 5, 4, 3, 2, 1, 0]


# --- the alphabet tables against pycrate and smspdudecoder --------------------------------------


def test_basic_table_matches_pycrate_and_smspdudecoder() -> None:
    assert len(GSM7_BASIC) == 128
    assert [TS23038._GSM7bLUT[i] for i in range(128)] == list(GSM7_BASIC)
    assert SmspduGsm.ALPHABET == GSM7_BASIC


def test_extension_table_matches_independent_codecs() -> None:
    assert SmspduGsm.ALPHABET_EXT == GSM7_EXTENSION
    # pycrate adds placeholders for the CR2 (0x0D) and SS2 (0x1B) control codes
    pycrate = {k: v for k, v in TS23038._GSM7bExtLUT.items() if k not in (0x0D, 0x1B)}
    assert pycrate == GSM7_EXTENSION


@settings(max_examples=200)
@given(gsm7_text.filter(lambda t: not t.endswith("\r")), st.integers(0, 6))
def test_packing_matches_pycrate(text: str, fill: int) -> None:
    # pycrate pads 7 spare bits with <CR> (but knows no <CR><CR> rule, hence the filter)
    packed, count = TS23038.encode_7b(text, fill)
    assert count == gsm7_length(text)
    assert pack_septets(encode_gsm7(text), fill, cr_pad=True) == packed


@settings(max_examples=200)
@given(gsm7_text.filter(lambda t: not t.endswith(("@", "\r", "\x1b"))))
def test_unpacking_matches_pycrate(text: str) -> None:
    # pycrate strips any trailing "@" or <CR>, so texts ending so are left out
    packed = pack_ussd(text)
    assert TS23038.decode_7b(packed) == unpack_ussd(packed) == text


@settings(max_examples=200)
@given(gsm7_text.filter(lambda t: t != ""))
def test_cr_rule_matches_smspdudecoder(text: str) -> None:
    assert pack_ussd(text).hex().upper() == SmspduGsm.encode(text, with_padding=True)
    assert pack_septets(encode_gsm7(text)).hex().upper() == SmspduGsm.encode(text)
    assert unpack_ussd(pack_ussd(text)) == SmspduGsm.decode(pack_ussd(text).hex(), True)


@settings(max_examples=100)
@given(unicode_text)
def test_ucs2_matches_smspdudecoder(text: str) -> None:
    assert encode_ucs2(text).hex().upper() == SmspduUcs2.encode(text).upper()


# --- round trips -----------------------------------------------------------------------------------


@given(gsm7_text)
def test_gsm7_roundtrip(text: str) -> None:
    septets = encode_gsm7(text)
    assert decode_gsm7(septets) == text
    assert len(septets) == gsm7_length(text)
    assert is_gsm7(text)
    assert choose_coding(text) is Coding.GSM7


@given(st.lists(st.integers(0, 127), max_size=300), st.integers(0, 6))
def test_pack_unpack_roundtrip(septets: list[int], fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets
    if fill:
        assert packed[0] & ((1 << fill) - 1) == 0  # fill bits are zero


@given(gsm7_text)
def test_ussd_cr_rule_roundtrip(text: str) -> None:
    """TS 23.038 6.1.2.3.1: the padding <CR> is dropped; a wanted final <CR> on an octet
    boundary was doubled by the sender and comes back doubled (<CR><CR> displays as <CR>)."""
    packed = pack_ussd(text)
    septets = gsm7_length(text)
    doubled = text.endswith("\r") and septets % 8 == 0
    assert len(packed) == (7 * (septets + doubled) + 7) // 8
    assert unpack_ussd(packed) == (text + "\r" if doubled else text)


@given(unicode_text)
def test_ucs2_roundtrip(text: str) -> None:
    data = encode_ucs2(text)
    assert decode_ucs2(data) == text
    assert len(data) == 2 * ucs2_length(text)


@given(unicode_text)
def test_choose_coding(text: str) -> None:
    expected = Coding.GSM7 if all(ch in GSM7_CHARS for ch in text) else Coding.UCS2
    assert choose_coding(text) is expected
    assert is_gsm7(text) is (expected is Coding.GSM7)


# --- fuzz: decoders give a value or DecodeError ----------------------------------------------------


@given(st.binary(max_size=200), st.one_of(st.none(), st.integers(0, 250)), st.integers(0, 6))
def test_unpack_septets_fuzz(data: bytes, count: int | None, fill: int) -> None:
    try:
        septets = unpack_septets(data, count, fill)
    except DecodeError:
        assert count is not None and 7 * count + fill > 8 * len(data)
        return
    assert all(0 <= s <= 127 for s in septets)
    if count is not None:
        assert len(septets) == count
    decode_gsm7(septets)


@given(st.lists(st.integers(0, 255), max_size=100))
def test_decode_gsm7_fuzz(values: list[int]) -> None:
    try:
        text = decode_gsm7(values)
    except DecodeError:
        assert any(v > 127 for v in values)
        return
    assert is_gsm7(text)  # every decoded character re-encodes


@given(st.binary(max_size=200))
def test_decode_ucs2_fuzz(data: bytes) -> None:
    try:
        text = decode_ucs2(data)
    except DecodeError:
        return
    assert encode_ucs2(text) == data


@given(st.binary(max_size=100))
def test_unpack_ussd_fuzz(data: bytes) -> None:
    assert is_gsm7(unpack_ussd(data))


# --- splitting into parts ---------------------------------------------------------------------------


def _fits(coding: Coding, part: bytes, capacity: int) -> bool:
    return len(part) // (2 if coding is Coding.UCS2 else 1) <= capacity


@settings(max_examples=150)
@given(
    st.one_of(gsm7_text, unicode_text, st.text(alphabet="a€😀Ж", max_size=400)),
    st.sampled_from(["8bit", "16bit"]),
)
def test_encode_parts_properties(text: str, concat: str) -> None:
    coding, parts = encode_parts(text, concat=concat)  # type: ignore[arg-type]
    assert coding is choose_coding(text)
    whole = bytes(encode_gsm7(text)) if coding is Coding.GSM7 else encode_ucs2(text)
    assert b"".join(parts) == whole
    assert parts_needed(text, concat=concat) == len(parts)  # type: ignore[arg-type]
    if len(parts) == 1:
        assert _fits(coding, parts[0], part_capacity(coding))
        return
    assert not _fits(coding, whole, part_capacity(coding))
    capacity = part_capacity(coding, 6 if concat == "8bit" else 7)
    for part in parts:
        assert part and _fits(coding, part, capacity)
        if coding is Coding.GSM7:
            assert part[-1] != ESC  # an extension character stays whole
        else:
            assert not 0xD8 <= part[-2] <= 0xDB  # no part ends with a high surrogate
    # greedy: each part is full unless the next unit would not have fitted
    for part, nxt in itertools.pairwise(parts):
        width = 2 if coding is Coding.UCS2 else 1
        first_unit = 2 if (coding is Coding.GSM7 and nxt[0] == ESC) else 1
        if coding is Coding.UCS2 and 0xD8 <= nxt[0] <= 0xDB:
            first_unit = 2
        assert len(part) // width + first_unit > capacity


@given(st.binary(max_size=600))
def test_encode_parts_bytes(data: bytes) -> None:
    coding, parts = encode_parts(data)
    assert coding is Coding.EIGHT_BIT
    assert b"".join(parts) == data
    limit = 140 if len(parts) == 1 else 134
    assert all(len(p) <= limit for p in parts)


def test_part_counts_at_the_limits() -> None:
    assert parts_needed("a" * 160) == 1
    assert parts_needed("a" * 161) == 2
    assert parts_needed("a" * 306) == 2
    assert parts_needed("a" * 307) == 3
    assert parts_needed("a" * 304, concat="16bit") == 2
    assert parts_needed("a" * 305, concat="16bit") == 3
    assert parts_needed("€" * 80) == 1  # 160 septets
    assert parts_needed("€" * 81) == 2
    assert parts_needed("Ж" * 70) == 1
    assert parts_needed("Ж" * 71) == 2
    assert parts_needed("Ж" * 134) == 2
    assert parts_needed("Ж" * 133, concat="16bit") == 3
    assert parts_needed("😀" * 35) == 1  # 70 UCS-2 code units
    assert parts_needed("😀" * 36) == 2
    assert parts_needed(b"\x00" * 140) == 1
    assert parts_needed(b"\x00" * 141) == 2
    assert parts_needed(b"\x00" * 268) == 2
    assert parts_needed("") == 1
    assert parts_needed("a" * 161, Coding.UCS2) == 3


def test_extension_character_not_split() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the euro would straddle septets 153/154
    coding, parts = encode_parts(text)
    assert coding is Coding.GSM7
    assert len(parts[0]) == 152
    assert parts[1][:2] == bytes((ESC, 0x65))


def test_surrogate_pair_not_split() -> None:
    text = "Ж" * 66 + "😀" + "Ж" * 10  # the pair would straddle code units 67/68
    _, parts = encode_parts(text)
    assert len(parts[0]) == 132
    assert parts[1][:4] == "😀".encode("utf-16-be")


# --- errors -----------------------------------------------------------------------------------------


def test_encode_gsm7_rejects_foreign_character() -> None:
    with pytest.raises(LocalProtocolError, match=r"'ç' \(U\+00E7\) at position 3"):
        encode_gsm7("abcçd")
    assert not is_gsm7("ç")
    assert not is_gsm7("\x1b")  # ESC is not a character of its own


def test_decode_gsm7_escape_rules() -> None:
    assert decode_gsm7([ESC, 0x65]) == "€"
    assert decode_gsm7([ESC, 0x41]) == "A"  # not in the extension table: the basic character
    assert decode_gsm7([ESC, ESC, 0x41]) == " A"  # reserved double escape shows a space
    assert decode_gsm7([0x41, ESC]) == "A "  # dangling escape
    with pytest.raises(DecodeError):
        decode_gsm7([ESC, 0x80])
    with pytest.raises(DecodeError):
        decode_gsm7([0x80])


def test_packing_argument_errors() -> None:
    with pytest.raises(LocalProtocolError):
        pack_septets([0x80])
    with pytest.raises(LocalProtocolError):
        pack_septets([1], 7)
    with pytest.raises(LocalProtocolError):
        unpack_septets(b"\x00", -1)
    with pytest.raises(LocalProtocolError):
        unpack_septets(b"\x00", 1, -1)
    with pytest.raises(DecodeError):
        unpack_septets(b"\x00", 2)
    assert unpack_septets(b"", None, 3) == []
    assert unpack_septets(b"\x1a", None) == [0x1A]  # 1 spare bit: no <CR> rule
    assert unpack_septets(bytes(7), None) == [0] * 8  # "@" is never stripped


def test_cr_rule_edges() -> None:
    assert pack_septets([CR] * 8, cr_pad=True) == pack_septets([CR] * 9)  # wanted <CR> doubled
    assert pack_septets([], cr_pad=True) == b""
    assert pack_ussd("1234567\r") == pack_septets(encode_gsm7("1234567\r\r"))
    assert unpack_ussd(pack_ussd("1234567\r")) == "1234567\r\r"


def test_ucs2_errors() -> None:
    with pytest.raises(LocalProtocolError, match="unpaired surrogate"):
        encode_ucs2("a\ud800b")
    with pytest.raises(DecodeError, match="odd"):
        decode_ucs2(b"\x00")
    with pytest.raises(DecodeError, match="unpaired surrogate"):
        decode_ucs2(b"\xd8\x00\x00\x41")
    assert ucs2_length("a😀") == 3


def test_capacity_and_parts_errors() -> None:
    with pytest.raises(LocalProtocolError):
        part_capacity(Coding.GSM7, 141)
    with pytest.raises(LocalProtocolError, match="concat"):
        parts_needed("a", concat="32bit")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="bytes"):
        encode_parts("text", Coding.EIGHT_BIT)
    with pytest.raises(LocalProtocolError, match="str"):
        encode_parts(b"\x00", Coding.GSM7)
    with pytest.raises(LocalProtocolError, match="GSM 7-bit"):
        encode_parts("Ж", Coding.GSM7)
    with pytest.raises(LocalProtocolError, match="surrogate"):
        encode_parts("\ud800", Coding.UCS2)
    assert choose_coding(b"x") is Coding.EIGHT_BIT


@given(st.one_of(gsm7_text, unicode_text))
def test_fast_length_and_membership_agree_with_the_encoder(text: str) -> None:
    """is_gsm7 / gsm7_length take C-speed shortcuts; the septet encoder is the reference."""
    try:
        septets = encode_gsm7(text)
    except LocalProtocolError:
        assert not is_gsm7(text)
        with pytest.raises(LocalProtocolError):
            gsm7_length(text)
    else:
        assert is_gsm7(text)
        assert gsm7_length(text) == len(septets)

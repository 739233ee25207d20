"""protocols.gsm.udh: TS 23.040 9.2.3.24 user data headers against tests/vectors/gsm/udh.json,
pycrate's ``TP_UDH`` decoder, round trips and a fuzz test."""

from __future__ import annotations

from typing import Any

import pytest
from gsm_helpers import ie_from_json, load
from hypothesis import given
from hypothesis import strategies as st
from pycrate_mobile.TS23040_SMS import TP_UDH

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm import (
    CommandPacketIdentifier,
    Concat8,
    Concat16,
    InformationElement,
    Ports8,
    Ports16,
    RawIe,
    ResponsePacketIdentifier,
    SimToolkitSecurity,
    SimToolkitSecurity71,
    concat_ie,
    decode_udh,
    encode_udh,
)

V = load("udh")


@pytest.mark.parametrize("vector", V["vectors"], ids=[v["name"] for v in V["vectors"]])
def test_udh_vectors(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    ies, header_length = decode_udh(data)
    assert header_length == vector["header_length"]
    assert list(ies) == [ie_from_json(i) for i in vector["ies"]]
    assert encode_udh(ies) == data[:header_length]


@pytest.mark.parametrize("vector", V["vectors"], ids=[v["name"] for v in V["vectors"]])
def test_udh_vectors_against_pycrate(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    ies, header_length = decode_udh(data)
    udh = TP_UDH()
    udh.from_bytes(data[:header_length])
    theirs = [(ie["T"].get_val(), ie["V"].to_bytes()) for ie in udh["UDH"]]
    assert theirs == [(ie.iei, ie.data()) for ie in ies]


@pytest.mark.parametrize("vector", V["truncated"], ids=[v["hex"] or "empty" for v in V["truncated"]])
def test_truncated_headers(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        decode_udh(bytes.fromhex(vector["hex"]))


def test_sim_toolkit_aliases() -> None:
    assert CommandPacketIdentifier is SimToolkitSecurity
    assert ResponsePacketIdentifier is SimToolkitSecurity71
    assert encode_udh([SimToolkitSecurity()]) == bytes.fromhex("027000")
    assert encode_udh([SimToolkitSecurity71()]) == bytes.fromhex("027100")
    assert encode_udh([]) == b"\x00"
    assert decode_udh(b"\x00") == ((), 1)


def test_known_iei_with_wrong_length_is_raw() -> None:
    ies, _ = decode_udh(bytes.fromhex("0400020102"))  # concat8 with 2 octets
    assert ies == (RawIe(0x00, b"\x01\x02"),)
    ies, _ = decode_udh(bytes.fromhex("0304010a"))  # ports8 with 1 octet
    assert ies == (RawIe(0x04, b"\x0a"),)


def test_ports_and_concat16_encoding() -> None:
    ies = (Ports8(0xF5, 0x00), Ports16(2948, 9200), Concat16(0xBEEF, 3, 2))
    data = encode_udh(ies)
    assert data == bytes.fromhex("100402f50005040b8423f00804beef0302")
    assert decode_udh(data) == (ies, len(data))


def test_concat_ie_picks_the_first_valid() -> None:
    invalid = Concat8(1, 2, 3)  # sequence above total: void (9.2.3.24.1)
    assert not invalid.is_valid
    assert not Concat8(1, 0, 0).is_valid
    assert not Concat16(1, 2, 0).is_valid
    assert concat_ie([invalid, Ports8(1, 2), Concat16(7, 2, 2)]) == Concat16(7, 2, 2)
    assert concat_ie([invalid]) is None
    assert concat_ie([]) is None


def test_value_checks() -> None:
    for bad in (
        lambda: Concat8(256, 1, 1),
        lambda: Concat8(0, -1, 1),
        lambda: Concat16(0x10000, 1, 1),
        lambda: Concat16(0, 1, 256),
        lambda: Ports8(256, 0),
        lambda: Ports16(0, 0x10000),
        lambda: RawIe(256),
        lambda: RawIe(1, b"x" * 256),
        lambda: RawIe(1, "text"),  # type: ignore[arg-type]
    ):
        with pytest.raises(LocalProtocolError):
            bad()
    with pytest.raises(LocalProtocolError, match="UDHL"):
        encode_udh([RawIe(0x20, b"x" * 200), RawIe(0x21, b"y" * 100)])
    with pytest.raises(LocalProtocolError, match="not an information element"):
        encode_udh(["concat"])  # type: ignore[list-item]


# --- round trip and fuzz ---------------------------------------------------------------------------

octet = st.integers(0, 255)
ies_strategy = st.lists(
    st.one_of(
        st.builds(Concat8, octet, octet, octet),
        st.builds(Concat16, st.integers(0, 0xFFFF), octet, octet),
        st.builds(Ports8, octet, octet),
        st.builds(Ports16, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        st.just(SimToolkitSecurity()),
        st.just(SimToolkitSecurity71()),
        # unknown IEIs only: a RawIe with a known IEI and its proper length decodes as that IE
        st.builds(RawIe, st.sampled_from([0x01, 0x0A, 0x24, 0x25, 0x7F, 0xA0]), st.binary(max_size=20)),
    ),
    max_size=8,
)


@given(ies_strategy, st.binary(max_size=20))
def test_udh_roundtrip(ies: list[InformationElement], tail: bytes) -> None:
    data = encode_udh(ies)
    assert decode_udh(data + tail) == (tuple(ies), len(data))


@given(st.binary(max_size=60))
def test_decode_udh_fuzz(data: bytes) -> None:
    try:
        ies, header_length = decode_udh(data)
    except DecodeError:
        return
    assert 1 <= header_length <= len(data)
    assert encode_udh(ies) == data[:header_length]

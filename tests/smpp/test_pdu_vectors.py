"""Byte vectors for every SMPP 3.4 PDU type (tests/vectors/smpp/pdus.json).

Each vector records its source: an SMPP 3.4 section it was assembled from by hand, an independent
implementation that produced the bytes (smpplib 2.2.4, smpp34 1.5.0) or a PROTOCOLS.md entry that
tshark decoded. The expected fields were written from the generator's inputs, not from our decoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocols.smpp import pdu as pdu_mod
from protocols.smpp.constants import CommandId
from protocols.smpp.pdu import (
    HEADER_LENGTH,
    DestAddress,
    DistributionList,
    Pdu,
    UnsuccessSme,
    decode_pdu,
    encode_pdu,
    pdu_class,
)
from protocols.smpp.tlv import Tlv

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "smpp" / "pdus.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
IDS = [v["name"] for v in VECTORS]


def _field_value(key: str, value: Any) -> tuple[str, Any]:
    if key.endswith("_hex"):
        return key.removesuffix("_hex"), bytes.fromhex(value)
    if key == "optional_parameters":
        return key, tuple(Tlv(t["tag"], bytes.fromhex(t["value_hex"])) for t in value)
    if key == "dest_addresses":
        dests: list[DestAddress | DistributionList] = []
        for d in value:
            if d["dest_flag"] == 1:
                dests.append(DestAddress(d["dest_addr_ton"], d["dest_addr_npi"], d["destination_addr"]))
            else:
                dests.append(DistributionList(d["dl_name"]))
        return key, tuple(dests)
    if key == "unsuccess_smes":
        return key, tuple(UnsuccessSme(**u) for u in value)
    return key, value


def expected_pdu(vector: dict[str, Any]) -> Pdu:
    cls = getattr(pdu_mod, vector["pdu"])
    kwargs = dict(_field_value(k, v) for k, v in vector["fields"].items())
    result: Pdu = cls(**kwargs)
    return result


def test_vector_file_covers_every_pdu_type() -> None:
    covered = {v["pdu"] for v in VECTORS}
    every = {cls.__name__ for cls in pdu_mod._ALL}
    assert covered == every
    assert all(v["source"] for v in VECTORS)
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_decode_gives_expected_fields(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    decoded = decode_pdu(data)
    expected = expected_pdu(vector)
    assert type(decoded) is type(expected)
    assert decoded == expected
    assert decoded.command_id == int.from_bytes(data[4:8], "big")
    assert pdu_class(decoded.command_id) is type(expected)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_reencode_is_byte_identical(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    assert encode_pdu(decode_pdu(data)) == data
    # the hand-written expectation encodes to the same bytes too (TLVs are listed in wire order)
    assert encode_pdu(expected_pdu(vector)) == data


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_sequence_number_override(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    pdu = decode_pdu(data)
    again = encode_pdu(pdu, sequence_number=0x01020304)
    assert again[:12] == data[:12]
    assert again[12:16] == b"\x01\x02\x03\x04"
    assert again[HEADER_LENGTH:] == data[HEADER_LENGTH:]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if any("decoded" in t for t in v["fields"].get("optional_parameters", []))],
    ids=lambda v: v["name"],
)
def test_tlv_values_decode_to_python(vector: dict[str, Any]) -> None:
    decoded = decode_pdu(bytes.fromhex(vector["hex"]))
    params = decoded.optional_parameters  # type: ignore[attr-defined]
    for got, want in zip(params, vector["fields"]["optional_parameters"], strict=True):
        assert got.tag == want["tag"]
        assert got.name == want["name"]
        value = got.decoded
        if isinstance(value, bytes):
            value = value.hex()
        assert value == want.get("decoded")


def test_is_response_follows_bit_31() -> None:
    for vector in VECTORS:
        decoded = decode_pdu(bytes.fromhex(vector["hex"]))
        assert decoded.is_response == vector["pdu"].endswith(("Resp", "Nack")), vector["name"]


def test_absent_body_vectors_reencode_without_body() -> None:
    absent = [
        v
        for v in VECTORS
        if v["fields"].get("message_id", "") is None or v["fields"].get("system_id", "") is None
    ]
    assert len(absent) >= 3
    for vector in absent:
        data = bytes.fromhex(vector["hex"])
        assert len(data) == HEADER_LENGTH
        assert encode_pdu(decode_pdu(data)) == data


# --- spot checks written out byte by byte from the spec, independent of the JSON -------------------


def test_enquire_link_bytes() -> None:
    # SMPP 3.4 section 4.11.1: a bare 16-octet header
    data = bytes.fromhex("00000010 00000015 00000000 00000001")
    assert decode_pdu(data) == pdu_mod.EnquireLink(sequence_number=1)
    assert encode_pdu(pdu_mod.EnquireLink(), sequence_number=1) == data


def test_submit_sm_resp_bytes() -> None:
    # SMPP 3.4 section 4.4.2: message_id C-Octet string
    data = bytes.fromhex("00000014 80000004 00000000 0000002A 61626300")
    assert decode_pdu(data) == pdu_mod.SubmitSmResp(sequence_number=42, message_id="abc")
    assert encode_pdu(pdu_mod.SubmitSmResp(sequence_number=42, message_id="abc")) == data
    # a latin-1 (non-ASCII) message_id takes the generic path and still round-trips
    latin = pdu_mod.SubmitSmResp(sequence_number=42, message_id="\xe9")
    assert encode_pdu(latin)[HEADER_LENGTH:] == b"\xe9\x00"
    assert decode_pdu(encode_pdu(latin)) == latin


def test_command_ids_match_the_spec_table() -> None:
    # SMPP 3.4 section 5.1.2.1
    assert pdu_mod.SubmitSm.command_id == 0x00000004 == CommandId.SUBMIT_SM
    assert pdu_mod.GenericNack.command_id == 0x80000000
    assert pdu_mod.DataSmResp.command_id == 0x80000103
    assert pdu_mod.Outbind.command_id == 0x0000000B
    assert pdu_class(0x00000102) is pdu_mod.AlertNotification
    assert pdu_class(0x0000000A) is None  # reserved
    assert len({cls.command_id for cls in pdu_mod._ALL}) == len(pdu_mod._ALL) == 27

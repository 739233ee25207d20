"""OTA secured packets (protocols/stk/ota.py): TS 102 225 5.1 / 5.2, TS 31.115 4.2 / 4.4.

Vectors live in tests/vectors/stk/ota.json, each naming its source: PROTOCOLS.md / ussd_stk.json
(cross-checked against pySim's encoder), osmocom/pysim tests/unittests/test_ota.py (incl. PoRs of
real sysmoISIM-SJA5 cards) and the opentelecoms gsm0348 data set (DES, DES-ECB, 3DES 2 and 3 keys,
AES-128/192/256, CMAC-4/8, PoRs). The clear headers are cross-checked with pycrate's
``TS31115.PacketCmdSMSPP`` / ``PacketRespSMSPP`` (not ``TS102225.PacketCmd``, whose lengths are wrong).
"""

from __future__ import annotations

import contextlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from Cryptodome.Cipher import DES, DES3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrate_mobile.TS31115 import PacketCmdSMSPP, PacketRespSMSPP

from protocols.errors import DecodeError, LocalProtocolError, ProtocolError
from protocols.stk.ota import (
    COMMAND_UDH,
    MAX_CNTR,
    RESPONSE_UDH,
    CcAlgorithm,
    CipherAlgorithm,
    CommandPacket,
    CounterMode,
    Integrity,
    KeySet,
    Kic,
    Kid,
    OtaSecurityError,
    PorMode,
    RcAlgorithm,
    ResponseStatus,
    Spi,
    build_command_packet,
    build_response_packet,
    check_counter,
    crc16,
    crc32,
    max_payload,
    parse_command_header,
    parse_command_packet,
    parse_response_packet,
)

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "stk" / "ota.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))

h = bytes.fromhex
TAR = h("BFFF01")
DISPLAY_TEXT = h("D0268103012180820281028D1B044275792031474220666F7220352E30303F205072657373204F4B")
KEYS_3DES = KeySet(h("300102030405060708090a0b0c0d0e0f"), h("301102030405060708090a0b0c0d0e0f"))
KEYS_AES = KeySet(h("200102030405060708090a0b0c0d0e0f"), h("201102030405060708090a0b0c0d0e0f"))
SPI_CC_CIPH = Spi.decode(h("1621"))  # counter higher, ciphered, CC; PoR required via SMS-SUBMIT
KIC_3DES = Kic(CipherAlgorithm.TDES_2KEY, 3)
KID_3DES = Kid(CcAlgorithm.TDES_2KEY, 3)
KIC_AES = Kic(CipherAlgorithm.AES_CBC, 2)
KID_AES = Kid(CcAlgorithm.AES_CMAC, 2)


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(v["name"]) for v in items]


def _command_args(v: dict[str, Any]) -> tuple[Spi, Kic, Kid, KeySet]:
    spi = Spi.decode(h(v["spi"]))
    return spi, Kic.decode(int(v["kic"], 16)), Kid.decode(int(v["kid"], 16), spi.integrity), _keys(v)


def _keys(v: dict[str, Any], **extra: Any) -> KeySet:
    return KeySet(h(v["kic_key"]), h(v["kid_key"]), **extra)


def _lookup(keys: KeySet, tar: bytes = TAR) -> Any:
    return lambda t, kic, kid: keys if t == tar else None


def _status(exc: pytest.ExceptionInfo[OtaSecurityError]) -> ResponseStatus:
    return exc.value.status


# --- vectors: command packets ----------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["command_packets"], ids=_ids(VECTORS["command_packets"]))
def test_command_vector_build(vector: dict[str, Any]) -> None:
    spi, kic, kid, keys = _command_args(vector)
    expected = h(vector["hex"])
    cc_length = expected[2] - 13 if spi.integrity is Integrity.CC else 8
    built = build_command_packet(
        h(vector["payload"]), spi, kic, kid, h(vector["tar"]), vector["cntr"], keys, cc_length=cc_length
    )
    assert built.hex().upper() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["command_packets"], ids=_ids(VECTORS["command_packets"]))
def test_command_vector_parse(vector: dict[str, Any]) -> None:
    spi, kic, kid, keys = _command_args(vector)
    seen: list[tuple[bytes, Kic, Kid]] = []

    def lookup(tar: bytes, k: Kic, d: Kid) -> KeySet:
        seen.append((tar, k, d))
        return keys

    packet, payload = parse_command_packet(h(vector["hex"]), lookup)
    assert payload == h(vector["payload"])
    assert seen == [(h(vector["tar"]), kic, kid)]
    assert (packet.spi, packet.kic, packet.kid, packet.tar, packet.cntr) == (
        spi,
        kic,
        kid,
        h(vector["tar"]),
        vector["cntr"],
    )
    assert packet.application_message == payload
    assert len(packet.secured_data) == len(payload) + packet.pcntr
    assert len(packet.rc_cc_ds) == h(vector["hex"])[2] - 13


@pytest.mark.parametrize("vector", VECTORS["command_packets"], ids=_ids(VECTORS["command_packets"]))
def test_command_vector_clear_header_matches_pycrate(vector: dict[str, Any]) -> None:
    data = h(vector["hex"])
    ours = parse_command_header(data)
    theirs = PacketCmdSMSPP()
    theirs.from_bytes(data)
    spi = theirs["SPI"]
    assert ours.cpl == theirs["CmdPacketLen"].get_val()
    assert ours.chl == theirs["CmdHeaderLen"].get_val()
    assert int(ours.spi.counter) == spi["CounterType"].get_val()
    assert ours.spi.ciphering == bool(spi["CipherType"].get_val())
    assert int(ours.spi.integrity) == spi["IntegrityType"].get_val()
    assert ours.spi.por_via_sms_submit == bool(spi["SMSPoR"].get_val())
    assert ours.spi.por_ciphering == bool(spi["PoRCipherType"].get_val())
    assert int(ours.spi.por_integrity) == spi["PoRIntegrityType"].get_val()
    assert int(ours.spi.por) == spi["PoRExpect"].get_val()
    kic = theirs["KIc"].get_val()
    assert ours.kic.encode() == kic[0] << 4 | kic[1] << 2 | kic[2]
    kid = theirs["KID"].get_val()
    assert ours.kid.encode() == (kid if isinstance(kid, int) else kid[0] << 4 | kid[1] << 2 | kid[2])
    assert ours.tar == theirs["TAR"].get_val().to_bytes(3, "big")
    if not ours.spi.ciphering:  # then pycrate also reads the counters, the checksum and the data
        packet, _ = parse_command_packet(data, lambda *_: _keys(vector))
        assert packet.cntr == theirs["CNTR"].get_val()
        assert packet.pcntr == theirs["PCNTR"].get_val()
        assert packet.rc_cc_ds == theirs["IntegrityCheck"].get_val()
        assert packet.secured_data == theirs["Data"].get_val()


@pytest.mark.parametrize("vector", VECTORS["embedded"], ids=_ids(VECTORS["embedded"]))
def test_embedded_user_data_is_udh_and_command_packet(vector: dict[str, Any]) -> None:
    packet = next(v for v in VECTORS["command_packets"] if v["name"] == vector["command_packet"])
    assert vector["hex"].upper().endswith((COMMAND_UDH.hex() + packet["hex"]).upper())


def test_rc_vector_crc32_covers_header_counters_data_and_padding() -> None:
    vector = VECTORS["rc_checks"][0]
    data = h(vector["hex"])
    header = parse_command_header(data)
    assert header.spi.integrity is Integrity.RC and header.kic.algorithm is CipherAlgorithm.TDES_3KEY
    clear = DES3.new(h(vector["kic_key"]), DES3.MODE_CBC, iv=bytes(8)).decrypt(data[10:])
    counters, rc, secured = clear[:6], clear[6:10], clear[10:]
    assert int.from_bytes(counters[:5], "big") == vector["cntr"]
    assert secured[: len(secured) - counters[5]] == h(vector["payload"])
    assert crc32(data[:10] + counters + secured).to_bytes(4, "big") == rc
    # the same packet with KID 05 (CRC32 named explicitly) is what we build
    spi, kic = header.spi, header.kic
    keys = KeySet(h(vector["kic_key"]))
    ours = build_command_packet(h(vector["payload"]), spi, kic, Kid(RcAlgorithm.CRC32), header.tar, 1, keys)
    assert ours[:6] + ours[7:10] == data[:6] + data[7:10] and ours[6] == 0x05
    assert parse_command_packet(ours, lambda *_: keys)[1] == h(vector["payload"])


@pytest.mark.parametrize("vector", VECTORS["crc_check_values"], ids=_ids(VECTORS["crc_check_values"]))
def test_crc_check_values(vector: dict[str, Any]) -> None:
    function = crc16 if vector["algorithm"] == "CRC16" else crc32
    assert function(vector["input_ascii"].encode("ascii")) == int(vector["value"], 16)


@given(st.binary(max_size=200))
def test_crc32_matches_zlib(data: bytes) -> None:
    assert crc32(data) == zlib.crc32(data)


# --- vectors: response packets ---------------------------------------------------------------------


def _response_args(v: dict[str, Any]) -> dict[str, Any]:
    spi = Spi.decode(h(v["command_spi"]))
    kic, kid = Kic.decode(int(v["kic"], 16)), Kid.decode(int(v["kid"], 16), spi.por_integrity)
    return {"spi": spi, "kic": kic, "kid": kid, "keys": _keys(v)}


@pytest.mark.parametrize("vector", VECTORS["response_packets"], ids=_ids(VECTORS["response_packets"]))
def test_response_vector_parse(vector: dict[str, Any]) -> None:
    por = parse_response_packet(h(vector["user_data"]), **_response_args(vector))
    assert por.tar.hex().upper() == vector["tar"]
    assert (por.cntr, por.pcntr, por.status) == (vector["cntr"], vector["pcntr"], vector["status"])
    assert por.additional_response_data.hex().upper() == vector["additional_response_data"]
    assert por.secured


@pytest.mark.parametrize("vector", VECTORS["response_packets"], ids=_ids(VECTORS["response_packets"]))
def test_response_vector_build(vector: dict[str, Any]) -> None:
    built = build_response_packet(
        h(vector["tar"]),
        vector["cntr"],
        ResponseStatus(vector["status"]),
        h(vector["additional_response_data"]),
        **_response_args(vector),
    )
    assert built.hex().upper() == vector["user_data"]


@pytest.mark.parametrize("vector", VECTORS["response_packets"], ids=_ids(VECTORS["response_packets"]))
def test_response_vector_clear_header_matches_pycrate(vector: dict[str, Any]) -> None:
    data = h(vector["user_data"])
    assert data[:3] == RESPONSE_UDH
    theirs = PacketRespSMSPP()
    theirs.from_bytes(data[3:])
    assert theirs["RespPacketLen"].get_val() == len(data) - 5
    assert theirs["TAR"].get_val() == int(vector["tar"], 16)
    spi = Spi.decode(h(vector["command_spi"]))
    if not spi.por_ciphering:
        assert theirs["CNTR"].get_val() == vector["cntr"]
        assert theirs["Status"].get_val() == vector["status"]
        assert theirs["Data"].get_val().hex().upper() == vector["additional_response_data"]


# --- size budget -----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", VECTORS["size_budget"], ids=[r["security"] for r in VECTORS["size_budget"]])
def test_size_budget_table(row: dict[str, Any]) -> None:
    spi = Spi.decode(h(row["spi"]))
    kic, kid = Kic.decode(int(row["kic"], 16)), Kid.decode(int(row["kid"], 16), spi.integrity)
    assert max_payload(spi, kic, kid) == row["max_payload"]
    keys = KEYS_AES if kic.algorithm is CipherAlgorithm.AES_CBC else KEYS_3DES
    fits = build_command_packet(bytes(row["max_payload"]), spi, kic, kid, TAR, 1, keys)
    assert len(COMMAND_UDH + fits) <= 140
    with pytest.raises(LocalProtocolError, match="1 bytes over"):
        build_command_packet(bytes(row["max_payload"] + 1), spi, kic, kid, TAR, 1, keys)


BUDGET = [  # (SPI1, KIc, KID, max payload) for a 3-octet UDH
    ("00", CipherAlgorithm.IMPLICIT, CcAlgorithm.IMPLICIT, 121),
    ("01", CipherAlgorithm.IMPLICIT, RcAlgorithm.CRC16, 119),
    ("01", CipherAlgorithm.IMPLICIT, RcAlgorithm.CRC32, 117),
    ("02", CipherAlgorithm.IMPLICIT, CcAlgorithm.TDES_2KEY, 113),
    ("02", CipherAlgorithm.IMPLICIT, CcAlgorithm.AES_CMAC, 113),
    ("04", CipherAlgorithm.TDES_2KEY, CcAlgorithm.IMPLICIT, 114),
    ("05", CipherAlgorithm.TDES_2KEY, RcAlgorithm.CRC32, 110),
    ("06", CipherAlgorithm.DES_CBC, CcAlgorithm.DES_CBC, 106),
    ("06", CipherAlgorithm.TDES_3KEY, CcAlgorithm.TDES_3KEY, 106),
    ("04", CipherAlgorithm.AES_CBC, CcAlgorithm.IMPLICIT, 106),
    ("05", CipherAlgorithm.AES_CBC, RcAlgorithm.CRC32, 102),
    ("06", CipherAlgorithm.AES_CBC, CcAlgorithm.AES_CMAC, 98),
]


@pytest.mark.parametrize(("spi1", "cipher", "mac", "expected"), BUDGET)
def test_size_budget_every_combination(spi1: str, cipher: CipherAlgorithm, mac: Any, expected: int) -> None:
    assert max_payload(Spi.decode(h(spi1 + "00")), Kic(cipher), Kid(mac)) == expected


def test_size_budget_udh_and_cc_length() -> None:
    spi = Spi.decode(h("0200"))
    assert max_payload(spi, Kic(), KID_AES, cc_length=4) == 117
    assert max_payload(spi, Kic(), KID_AES, udh_length=9) == 107  # e.g. with a concatenation IE
    assert max_payload(Spi(), Kic(), Kid(), udh_length=140) == 0


def test_over_budget_message_names_the_overshoot() -> None:
    spi = Spi.decode(h("0619"))
    with pytest.raises(LocalProtocolError) as exc:
        build_command_packet(bytes(115), spi, KIC_AES, KID_AES, TAR, 1, KEYS_AES)
    assert str(exc.value).startswith("payload is 17 bytes over the 98-byte budget for AES-CBC + CC")
    with pytest.raises(LocalProtocolError, match="5 bytes over the 121-byte budget for no security"):
        build_command_packet(bytes(126), Spi(), Kic(), Kid(), TAR, 1, KeySet())
    with pytest.raises(LocalProtocolError, match="over the 114-byte budget for 3DES-2key-CBC"):
        build_command_packet(bytes(120), Spi(ciphering=True), KIC_3DES, Kid(), TAR, 1, KEYS_3DES)


def test_multi_sms_packet_when_asked_and_cpl_limit() -> None:
    big = bytes(500)
    packet = build_command_packet(big, SPI_CC_CIPH, KIC_AES, KID_AES, TAR, 1, KEYS_AES, single_sms=False)
    assert parse_command_packet(packet, _lookup(KEYS_AES))[1] == big
    with pytest.raises(LocalProtocolError, match="2-octet CPL"):
        build_command_packet(bytes(0x10000), Spi(), Kic(), Kid(), TAR, 1, KeySet(), single_sms=False)


# --- SPI, KIc, KID ---------------------------------------------------------------------------------


def test_spi_every_value_round_trips() -> None:
    for value in range(0x10000):
        octets = value.to_bytes(2, "big")
        assert Spi.decode(octets).encode() == octets


def test_spi_fields_of_production_values() -> None:
    spi = Spi.decode(h("1621"))
    assert spi == Spi(
        integrity=Integrity.CC,
        ciphering=True,
        counter=CounterMode.HIGHER,
        por=PorMode.ALWAYS,
        por_via_sms_submit=True,
    )
    assert Spi.decode(h("0619")) == Spi(
        Integrity.CC, True, CounterMode.NO_COUNTER, PorMode.ALWAYS, Integrity.CC, True
    )
    assert Spi.decode(h("1B02")).counter is CounterMode.EXACTLY_ONE_HIGHER
    assert Spi.decode(h("0003")).por is PorMode.RESERVED
    assert Spi.decode(h("E0C0")) == Spi(reserved1=7, reserved2=3)


def test_spi_errors() -> None:
    with pytest.raises(DecodeError):
        Spi.decode(b"\x00")
    with pytest.raises(LocalProtocolError):
        Spi(reserved1=8)
    with pytest.raises(LocalProtocolError):
        Spi(reserved2=-1)


@pytest.mark.parametrize(
    ("spi1", "msl", "meets"),
    [
        ("16", 0x16, True),
        ("1E", 0x16, True),  # exactly-one-higher counter is stricter than higher
        ("06", 0x16, False),  # no counter
        ("12", 0x16, False),  # not ciphered
        ("14", 0x16, False),  # no CC
        ("17", 0x16, True),  # DS is above CC
        ("02", 0x06, False),
        ("00", 0x00, True),
        ("01", 0x02, False),
        ("08", 0x08, True),
    ],
)
def test_minimum_security_level(spi1: str, msl: int, meets: bool) -> None:
    assert Spi.decode(h(spi1 + "00")).meets(msl) is meets


def test_kic_and_kid_round_trip_every_octet() -> None:
    for octet in range(256):
        assert Kic.decode(octet).encode() == octet
        for integrity in Integrity:
            assert Kid.decode(octet, integrity).encode() == octet


def test_kic_kid_meaning() -> None:
    assert Kic.decode(0x15) == Kic(CipherAlgorithm.TDES_2KEY, 1)
    assert Kic.decode(0x12) == Kic(CipherAlgorithm.AES_CBC, 1)
    assert Kic.decode(0x35) == Kic(CipherAlgorithm.TDES_2KEY, 3)
    assert Kic.decode(0x0D).algorithm is CipherAlgorithm.DES_ECB
    assert Kic.decode(0x09).algorithm is CipherAlgorithm.TDES_3KEY
    assert Kid.decode(0x22, Integrity.CC) == Kid(CcAlgorithm.AES_CMAC, 2)
    assert Kid.decode(0x01, Integrity.RC).algorithm is RcAlgorithm.CRC16
    assert Kid.decode(0x05, Integrity.RC).algorithm is RcAlgorithm.CRC32
    assert Kid.decode(0x05, Integrity.CC).algorithm is CcAlgorithm.TDES_2KEY
    proprietary = Kic.decode(0x03).algorithm
    assert proprietary == 3 and proprietary.name == "UNKNOWN_0x03"
    with pytest.raises(LocalProtocolError):
        Kic(CipherAlgorithm.AES_CBC, 16)
    with pytest.raises(LocalProtocolError):
        Kid(CcAlgorithm(0x10))


def test_response_status_registry() -> None:
    assert ResponseStatus(0x0A) is ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    assert ResponseStatus(0x0B) is ResponseStatus.RESPONSE_DATA_VIA_SMS_SUBMIT
    assert [int(s) for s in ResponseStatus] == list(range(0x0D))
    vendor = ResponseStatus(0xC5)
    assert vendor == 0xC5 and vendor.name == "UNKNOWN_0xC5"
    with pytest.raises(ValueError):
        ResponseStatus("00")  # type: ignore[arg-type]


# --- counter policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "received", "last", "status"),
    [
        (CounterMode.NO_COUNTER, 0, 9, ResponseStatus.POR_OK),
        (CounterMode.AVAILABLE_NO_CHECK, 3, 9, ResponseStatus.POR_OK),
        (CounterMode.AVAILABLE_NO_CHECK, 3, MAX_CNTR, ResponseStatus.POR_OK),
        (CounterMode.HIGHER, 10, 9, ResponseStatus.POR_OK),
        (CounterMode.HIGHER, 1000, 9, ResponseStatus.POR_OK),
        (CounterMode.HIGHER, 9, 9, ResponseStatus.CNTR_LOW),
        (CounterMode.HIGHER, 2, 9, ResponseStatus.CNTR_LOW),
        (CounterMode.HIGHER, MAX_CNTR, MAX_CNTR, ResponseStatus.CNTR_BLOCKED),
        (CounterMode.EXACTLY_ONE_HIGHER, 10, 9, ResponseStatus.POR_OK),
        (CounterMode.EXACTLY_ONE_HIGHER, 9, 9, ResponseStatus.CNTR_LOW),
        (CounterMode.EXACTLY_ONE_HIGHER, 11, 9, ResponseStatus.CNTR_HIGH),
        (CounterMode.EXACTLY_ONE_HIGHER, 0, MAX_CNTR, ResponseStatus.CNTR_BLOCKED),
    ],
)
def test_check_counter(mode: CounterMode, received: int, last: int, status: ResponseStatus) -> None:
    assert check_counter(mode, received, last) is status


def test_check_counter_max_step_and_range() -> None:
    assert check_counter(CounterMode.HIGHER, 19, 9, max_step=10) is ResponseStatus.POR_OK
    assert check_counter(CounterMode.HIGHER, 20, 9, max_step=10) is ResponseStatus.CNTR_HIGH
    with pytest.raises(LocalProtocolError):
        check_counter(CounterMode.HIGHER, MAX_CNTR + 1, 0)
    with pytest.raises(LocalProtocolError):
        check_counter(CounterMode.HIGHER, 1, -1)


@pytest.mark.parametrize(
    ("spi1", "cntr", "last", "status"),
    [
        ("16", 5, 5, ResponseStatus.CNTR_LOW),  # replayed, counter must be higher
        ("16", 4, 5, ResponseStatus.CNTR_LOW),
        ("1E", 5, 5, ResponseStatus.CNTR_LOW),  # replayed, counter must be exactly +1
        ("1E", 7, 5, ResponseStatus.CNTR_HIGH),
        ("16", MAX_CNTR, MAX_CNTR, ResponseStatus.CNTR_BLOCKED),
    ],
)
def test_replayed_counter_is_refused(spi1: str, cntr: int, last: int, status: ResponseStatus) -> None:
    spi = Spi.decode(h(spi1 + "21"))
    packet = build_command_packet(DISPLAY_TEXT, spi, KIC_AES, KID_AES, TAR, cntr, KEYS_AES)
    keys = KeySet(KEYS_AES.kic_key, KEYS_AES.kid_key, counter=last)
    with pytest.raises(OtaSecurityError) as exc:
        parse_command_packet(packet, _lookup(keys))
    assert _status(exc) is status
    assert exc.value.cntr == cntr and exc.value.header is not None and exc.value.header.tar == TAR
    fresh = KeySet(KEYS_AES.kic_key, KEYS_AES.kid_key, counter=cntr - 1 if cntr else 0)
    if status is not ResponseStatus.CNTR_BLOCKED:
        assert parse_command_packet(packet, _lookup(fresh))[0].cntr == cntr


# --- tampering and refusals ------------------------------------------------------------------------


def _build(spi: str, payload: bytes = DISPLAY_TEXT, cntr: int = 1) -> tuple[bytes, KeySet]:
    s = Spi.decode(h(spi))
    if s.integrity is Integrity.RC:
        return build_command_packet(
            payload, s, KIC_3DES, Kid(RcAlgorithm.CRC16), TAR, cntr, KEYS_3DES
        ), KEYS_3DES
    return build_command_packet(payload, s, KIC_3DES, KID_3DES, TAR, cntr, KEYS_3DES), KEYS_3DES


@pytest.mark.parametrize("spi", ["0621", "0221", "0521", "0121"])
def test_flipped_byte_after_the_header_fails_the_check(spi: str) -> None:
    packet, keys = _build(spi)
    for at in range(10, len(packet)):
        tampered = bytearray(packet)
        tampered[at] ^= 0x01
        with pytest.raises(OtaSecurityError) as exc:
            parse_command_packet(bytes(tampered), _lookup(keys))
        assert _status(exc) is ResponseStatus.RC_CC_DS_FAILED, at


def test_flipped_header_bytes() -> None:
    packet, keys = _build("0621")
    for at, expected in ((7, ResponseStatus.TAR_UNKNOWN), (9, ResponseStatus.TAR_UNKNOWN)):
        tampered = bytearray(packet)
        tampered[at] ^= 0x01
        with pytest.raises(OtaSecurityError) as exc:
            parse_command_packet(bytes(tampered), _lookup(keys))
        assert _status(exc) is expected
    # SPI2, KIc key version and KID key version are covered by the CC
    for at in (4, 5, 6):
        tampered = bytearray(packet)
        tampered[at] ^= 0x10
        with pytest.raises(OtaSecurityError) as exc:
            parse_command_packet(bytes(tampered), _lookup(keys))
        assert _status(exc) is ResponseStatus.RC_CC_DS_FAILED


def test_wrong_keys_fail_the_cc() -> None:
    packet, keys = _build("0621")
    wrong_kic = KeySet(bytes(reversed(keys.kic_key)), keys.kid_key)
    wrong_kid = KeySet(keys.kic_key, bytes(reversed(keys.kid_key)))
    for wrong in (wrong_kic, wrong_kid):
        with pytest.raises(OtaSecurityError) as exc:
            parse_command_packet(packet, _lookup(wrong))
        assert _status(exc) is ResponseStatus.RC_CC_DS_FAILED


def test_unknown_tar() -> None:
    packet, keys = _build("0621")
    with pytest.raises(OtaSecurityError) as exc:
        parse_command_packet(packet, _lookup(keys, tar=h("BFFF02")))
    assert _status(exc) is ResponseStatus.TAR_UNKNOWN
    assert exc.value.status == 0x09 and exc.value.header is not None and exc.value.cntr is None
    assert isinstance(exc.value, ProtocolError)


@pytest.mark.parametrize(("spi", "msl"), [("0221", 0x06), ("0621", 0x16), ("0021", 0x02), ("1221", 0x16)])
def test_insufficient_security_level(spi: str, msl: int) -> None:
    packet, keys = _build(spi)
    strict = KeySet(keys.kic_key, keys.kid_key, minimum_security=msl)
    with pytest.raises(OtaSecurityError) as exc:
        parse_command_packet(packet, _lookup(strict))
    assert _status(exc) is ResponseStatus.INSUFFICIENT_SECURITY_LEVEL


def test_key_version_must_match_when_given() -> None:
    packet, keys = _build("0621")  # KIc/KID 0x35: key version 3
    assert parse_command_packet(packet, _lookup(KeySet(keys.kic_key, keys.kid_key, kvn=3)))[1] == DISPLAY_TEXT
    for spi in ("0621", "0421", "0221"):
        packet, keys = _build(spi)
        with pytest.raises(OtaSecurityError) as exc:
            parse_command_packet(packet, _lookup(KeySet(keys.kic_key, keys.kid_key, kvn=1)))
        assert _status(exc) is ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    packet, keys = _build("0021")  # nothing to check a version against
    assert parse_command_packet(packet, _lookup(KeySet(kvn=1)))[1] == DISPLAY_TEXT


def _raw(spi: str, kic: int, kid: int, body: bytes, chl: int = 13) -> bytes:
    rest = bytes((chl,)) + h(spi) + bytes((kic, kid)) + TAR + body
    return len(rest).to_bytes(2, "big") + rest


@pytest.mark.parametrize(
    ("packet", "keys", "status"),
    [
        # DS is not supported; CC with a reserved / implicit KID; RC with an unknown CRC
        (_raw("0300", 0, 0x01, bytes(6 + 8), chl=21), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (_raw("0200", 0, 0x0D, bytes(6 + 8), chl=21), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (_raw("0200", 0, 0x00, bytes(6 + 8), chl=21), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (_raw("0100", 0, 0x03, bytes(6 + 4), chl=17), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        # RC/CC/DS length that does not match KID: CRC16 in 4 octets, 3DES CC in 4, nothing with 8
        (_raw("0100", 0, 0x01, bytes(6 + 4), chl=17), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (_raw("0200", 0, 0x05, bytes(6 + 4), chl=17), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (_raw("0000", 0, 0x00, bytes(6 + 8), chl=21), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        # KID key of the wrong length for its algorithm
        (_raw("0200", 0, 0x01, bytes(6 + 8), chl=21), KEYS_3DES, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR),
        (
            _raw("0200", 0, 0x02, bytes(6 + 8), chl=21),
            KeySet(b"", bytes(8)),
            ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
        ),
        # ciphering: implicit / proprietary / reserved algorithm, key of the wrong length, partial block
        (_raw("0400", 0x00, 0, bytes(8)), KEYS_3DES, ResponseStatus.CIPHERING_ERROR),
        (_raw("0400", 0x03, 0, bytes(8)), KEYS_3DES, ResponseStatus.CIPHERING_ERROR),
        (_raw("0400", 0x06, 0, bytes(16)), KEYS_AES, ResponseStatus.CIPHERING_ERROR),
        (_raw("0400", 0x09, 0, bytes(8)), KEYS_3DES, ResponseStatus.CIPHERING_ERROR),
        (_raw("0400", 0x02, 0, bytes(16)), KeySet(bytes(8)), ResponseStatus.CIPHERING_ERROR),
        (_raw("0400", 0x05, 0, bytes(12)), KEYS_3DES, ResponseStatus.CIPHERING_ERROR),
        # not ciphered, PCNTR larger than the data
        (
            _raw("0000", 0, 0, bytes(5) + b"\x03" + b"ab"),
            KeySet(),
            ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
        ),
    ],
)
def test_refused_packets(packet: bytes, keys: KeySet, status: ResponseStatus) -> None:
    with pytest.raises(OtaSecurityError) as exc:
        parse_command_packet(packet, _lookup(keys))
    assert _status(exc) is status


def _des_recipher(packet: bytes, key: bytes, change: Any) -> bytes:
    clear = bytearray(DES.new(key, DES.MODE_CBC, iv=bytes(8)).decrypt(packet[10:]))
    change(clear)
    return packet[:10] + DES.new(key, DES.MODE_CBC, iv=bytes(8)).encrypt(bytes(clear))


@pytest.mark.parametrize("pcntr", [8, 31, 255])
def test_ciphered_padding_counter_must_fit(pcntr: int) -> None:
    key = bytes.fromhex("1793F5B8FA365911")
    keys = KeySet(key)
    packet = build_command_packet(
        DISPLAY_TEXT, Spi(ciphering=True), Kic(CipherAlgorithm.DES_CBC), Kid(), TAR, 1, keys
    )

    def set_pcntr(clear: bytearray) -> None:
        clear[5] = pcntr

    with pytest.raises(OtaSecurityError) as exc:
        parse_command_packet(_des_recipher(packet, key, set_pcntr), _lookup(keys))
    assert _status(exc) is ResponseStatus.CIPHERING_ERROR


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        h("000E0D"),
        bytes(15),
        h("00360D") + bytes(13),  # CPL too long for the data
        _raw("0000", 0, 0, bytes(6))[:-1],
        _raw("0000", 0, 0, bytes(6), chl=12),
        _raw("0000", 0, 0, bytes(6), chl=14),  # CHL runs past CPL
    ],
)
def test_broken_headers_raise_decode_error_with_status_06(packet: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        parse_command_packet(packet, lambda *_: KeySet())
    assert exc.value.status == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR


def test_unciphered_padding_is_stripped() -> None:
    packet = _raw("0000", 0, 0, bytes(5) + b"\x02" + b"abcd")
    cmd, payload = parse_command_packet(packet, _lookup(KeySet()))
    assert payload == b"ab" and cmd.secured_data == b"abcd" and cmd.pcntr == 2


# --- build errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tar": b"\x01\x02"}, "TAR is 3 octets"),
        ({"cntr": -1}, "5-octet"),
        ({"cntr": MAX_CNTR + 1}, "5-octet"),
        ({"spi": Spi(Integrity.DS)}, "digital signatures"),
        ({"cc_length": 4}, "not 4"),
        ({"kid": Kid(CcAlgorithm.TDES_3KEY)}, "needs a 24-octet key"),
        ({"kid": Kid(CcAlgorithm.DES_CBC)}, "needs a 8-octet key"),
        ({"kic": Kic(CipherAlgorithm.IMPLICIT)}, "not supported"),
        ({"kic": Kic(CipherAlgorithm.TDES_3KEY)}, "needs a 24-octet key"),
        ({"kic": Kic(CipherAlgorithm.AES_CBC), "kic_key": bytes(8)}, "16 or 24 or 32-octet key"),
        ({"spi": Spi(Integrity.RC), "kid": Kid(RcAlgorithm.IMPLICIT)}, "no supported RC"),
        ({"spi": Spi(Integrity.CC), "kid": Kid(CcAlgorithm(0x3))}, "no supported CC"),
    ],
)
def test_build_command_packet_refuses_misuse(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"spi": SPI_CC_CIPH, "kic": KIC_3DES, "kid": KID_3DES, "tar": TAR, "cntr": 1}
    args.update({k: v for k, v in kwargs.items() if k not in ("cc_length", "kic_key")})
    keys = KeySet(kwargs.get("kic_key", KEYS_3DES.kic_key), KEYS_3DES.kid_key)
    with pytest.raises(LocalProtocolError, match=match):
        build_command_packet(
            DISPLAY_TEXT,
            args["spi"],
            args["kic"],
            args["kid"],
            args["tar"],
            args["cntr"],
            keys,
            cc_length=kwargs.get("cc_length", 8),
        )


def test_aes_cc_of_four_octets() -> None:
    packet = build_command_packet(DISPLAY_TEXT, SPI_CC_CIPH, KIC_AES, KID_AES, TAR, 1, KEYS_AES, cc_length=4)
    assert packet[2] == 13 + 4
    cmd, payload = parse_command_packet(packet, _lookup(KEYS_AES))
    assert payload == DISPLAY_TEXT and len(cmd.rc_cc_ds) == 4


# --- 3DES keys that degenerate to single DES -------------------------------------------------------

K1, K2, K3 = h("0123456789ABCDEF"), h("FEDCBA9876543210"), h("89ABCDEF01234567")


@pytest.mark.parametrize(
    ("algorithm", "key", "single"),
    [
        (CipherAlgorithm.TDES_2KEY, K1 + K1, K1),
        (CipherAlgorithm.TDES_2KEY, K1 + bytes(b ^ 1 for b in K1), K1),  # parity bits differ only
        (CipherAlgorithm.TDES_3KEY, K1 + K1 + K3, K3),
        (CipherAlgorithm.TDES_3KEY, K1 + K2 + K2, K1),
        (CipherAlgorithm.TDES_3KEY, K2 + K2 + K2, K2),
    ],
)
def test_degenerate_3des_key_runs_single_des(algorithm: CipherAlgorithm, key: bytes, single: bytes) -> None:
    spi = Spi(ciphering=True)
    triple = build_command_packet(DISPLAY_TEXT, spi, Kic(algorithm), Kid(), TAR, 1, KeySet(key))
    des = build_command_packet(DISPLAY_TEXT, spi, Kic(CipherAlgorithm.DES_CBC), Kid(), TAR, 1, KeySet(single))
    assert triple[10:] == des[10:]
    # and the checksum as well
    cc = Spi(Integrity.CC)
    mac_key = key[:16] if algorithm is CipherAlgorithm.TDES_2KEY else key
    mac_algorithm = CcAlgorithm.TDES_2KEY if algorithm is CipherAlgorithm.TDES_2KEY else CcAlgorithm.TDES_3KEY
    signed = build_command_packet(DISPLAY_TEXT, cc, Kic(), Kid(mac_algorithm), TAR, 1, KeySet(b"", mac_key))
    covered = signed[:16] + signed[24:]
    covered += bytes(-len(covered) % 8)
    assert signed[16:24] == DES.new(single, DES.MODE_CBC, iv=bytes(8)).encrypt(covered)[-8:]


def test_des_ecb_and_cbc_differ_after_the_first_block() -> None:
    key = KeySet(K1)
    ecb = build_command_packet(
        DISPLAY_TEXT, Spi(ciphering=True), Kic(CipherAlgorithm.DES_ECB), Kid(), TAR, 1, key
    )
    cbc = build_command_packet(
        DISPLAY_TEXT, Spi(ciphering=True), Kic(CipherAlgorithm.DES_CBC), Kid(), TAR, 1, key
    )
    assert ecb[10:18] == cbc[10:18] and ecb[18:] != cbc[18:]


# --- response packets ------------------------------------------------------------------------------

POR_SPI = Spi.decode(h("1639"))  # PoR required, CC, ciphered, via SMS-SUBMIT


def test_por_round_trip_and_udh_covered() -> None:
    ud = build_response_packet(
        TAR, 7, ResponseStatus.POR_OK, h("019000"), spi=POR_SPI, kic=KIC_AES, kid=KID_AES, keys=KEYS_AES
    )
    assert ud[:3] == RESPONSE_UDH
    por = parse_response_packet(ud, spi=POR_SPI, kic=KIC_AES, kid=KID_AES, keys=KEYS_AES)
    assert (por.tar, por.cntr, por.status, por.additional_response_data) == (TAR, 7, 0, h("019000"))
    # a UDH with another IE in front (here a concatenation IE) is covered by the CC as well
    udh = h("0700030101027100")
    ud2 = build_response_packet(
        TAR, 7, ResponseStatus.POR_OK, spi=POR_SPI, kic=KIC_AES, kid=KID_AES, keys=KEYS_AES, udh=udh
    )
    assert parse_response_packet(ud2, spi=POR_SPI, kic=KIC_AES, kid=KID_AES, keys=KEYS_AES).status == 0
    swapped = h("0700030101037100") + ud2[8:]
    with pytest.raises(OtaSecurityError) as exc:
        parse_response_packet(swapped, spi=POR_SPI, kic=KIC_AES, kid=KID_AES, keys=KEYS_AES)
    assert _status(exc) is ResponseStatus.RC_CC_DS_FAILED


def test_por_tampering_is_detected() -> None:
    ud = build_response_packet(
        TAR, 7, ResponseStatus.POR_OK, h("019000"), spi=POR_SPI, kic=KIC_3DES, kid=KID_3DES, keys=KEYS_3DES
    )
    for at in range(3, len(ud)):
        tampered = bytearray(ud)
        tampered[at] ^= 0x01
        with pytest.raises((OtaSecurityError, DecodeError)):
            parse_response_packet(bytes(tampered), spi=POR_SPI, kic=KIC_3DES, kid=KID_3DES, keys=KEYS_3DES)


def test_por_with_rc_and_without_security() -> None:
    spi = Spi(por=PorMode.ALWAYS, por_integrity=Integrity.RC)
    kid = Kid(RcAlgorithm.CRC32)
    ud = build_response_packet(TAR, 1, ResponseStatus.MORE_TIME, spi=spi, kic=Kic(), kid=kid, keys=KeySet())
    assert (
        parse_response_packet(ud, spi=spi, kic=Kic(), kid=kid, keys=KeySet()).status
        is ResponseStatus.MORE_TIME
    )
    plain = build_response_packet(
        TAR, 1, ResponseStatus.TAR_UNKNOWN, spi=Spi(), kic=Kic(), kid=Kid(), keys=KeySet()
    )
    assert plain == RESPONSE_UDH + h("000B0A") + TAR + h("0000000001") + h("0009")


def test_unsecured_error_por_is_accepted_but_flagged_and_unsecured_ok_is_refused() -> None:
    args: dict[str, Any] = {"spi": POR_SPI, "kic": KIC_3DES, "kid": KID_3DES, "keys": KEYS_3DES}
    for status in (ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, ResponseStatus.TAR_UNKNOWN):
        plain = build_response_packet(TAR, 3, status, spi=Spi(), kic=Kic(), kid=Kid(), keys=KeySet())
        por = parse_response_packet(plain, **args)
        assert (por.status, por.secured, por.cntr) == (status, False, 3)
    forged_ok = build_response_packet(
        TAR, 3, ResponseStatus.POR_OK, spi=Spi(), kic=Kic(), kid=Kid(), keys=KeySet()
    )
    with pytest.raises(OtaSecurityError) as exc:
        parse_response_packet(forged_ok, **args)
    assert _status(exc) is ResponseStatus.RC_CC_DS_FAILED


@pytest.mark.parametrize(
    "user_data",
    [
        b"",
        h("05"),  # UDHL past the data
        h("027100"),  # no response packet
        h("0370020000") + bytes(13),  # IE runs past the UDH
        h("02700000") + bytes(13),  # no IEI 71
        RESPONSE_UDH + h("000F0A") + bytes(13),  # RPL says more than there is
        RESPONSE_UDH + h("000E09") + bytes(13),  # RHL below 10
        RESPONSE_UDH + h("000E0E") + bytes(13),  # RHL past RPL
        RESPONSE_UDH + h("00120E") + bytes(17),  # 4-octet RC/CC where 8 are asked for
    ],
)
def test_broken_por_raises_decode_error(user_data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_response_packet(user_data, spi=POR_SPI, kic=KIC_3DES, kid=KID_3DES, keys=KEYS_3DES)


def test_por_ciphering_and_padding_errors() -> None:
    spi = Spi(por=PorMode.ALWAYS, por_ciphering=True)
    kic = Kic(CipherAlgorithm.DES_CBC)
    keys = KeySet(K1)
    partial = RESPONSE_UDH + h("00100A") + TAR + bytes(12)
    with pytest.raises(OtaSecurityError) as exc:
        parse_response_packet(partial, spi=spi, kic=kic, kid=Kid(), keys=keys)
    assert _status(exc) is ResponseStatus.CIPHERING_ERROR
    ud = build_response_packet(
        TAR, 1, ResponseStatus.POR_OK, h("0102030405060708"), spi=spi, kic=kic, kid=Kid(), keys=keys
    )

    def bad_pcntr(clear: bytearray) -> None:
        clear[5] = 9

    clear = bytearray(DES.new(K1, DES.MODE_CBC, iv=bytes(8)).decrypt(ud[9:]))
    bad_pcntr(clear)
    forged = ud[:9] + DES.new(K1, DES.MODE_CBC, iv=bytes(8)).encrypt(bytes(clear))
    with pytest.raises(OtaSecurityError) as exc:
        parse_response_packet(forged, spi=spi, kic=kic, kid=Kid(), keys=keys)
    assert _status(exc) is ResponseStatus.CIPHERING_ERROR


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tar": b"\x00"}, "TAR is 3 octets"),
        ({"cntr": MAX_CNTR + 1}, "5-octet"),
        ({"status": 0x100}, "one octet"),
        ({"udh": COMMAND_UDH}, "bad PoR UDH"),
        ({"udh": b""}, "bad PoR UDH"),
        ({"cc_length": 2}, "not 2"),
        ({"data": bytes(0x10000)}, "2-octet RPL"),
    ],
)
def test_build_response_packet_refuses_misuse(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        build_response_packet(
            kwargs.get("tar", TAR),
            kwargs.get("cntr", 1),
            kwargs.get("status", ResponseStatus.POR_OK),
            kwargs.get("data", b""),
            spi=POR_SPI,
            kic=KIC_AES,
            kid=KID_AES,
            keys=KEYS_AES,
            udh=kwargs.get("udh", RESPONSE_UDH),
            cc_length=kwargs.get("cc_length", 8),
        )


# --- hypothesis: round trips for every algorithm and SPI ---------------------------------------------

CIPHERS = [
    (CipherAlgorithm.DES_CBC, 8),
    (CipherAlgorithm.DES_ECB, 8),
    (CipherAlgorithm.TDES_2KEY, 16),
    (CipherAlgorithm.TDES_3KEY, 24),
    (CipherAlgorithm.AES_CBC, 16),
    (CipherAlgorithm.AES_CBC, 24),
    (CipherAlgorithm.AES_CBC, 32),
]
MACS: list[tuple[Integrity, CcAlgorithm | RcAlgorithm, int, int]] = [
    (Integrity.NONE, CcAlgorithm.IMPLICIT, 0, 8),
    (Integrity.RC, RcAlgorithm.CRC16, 0, 8),
    (Integrity.RC, RcAlgorithm.CRC32, 0, 8),
    (Integrity.CC, CcAlgorithm.DES_CBC, 8, 8),
    (Integrity.CC, CcAlgorithm.TDES_2KEY, 16, 8),
    (Integrity.CC, CcAlgorithm.TDES_3KEY, 24, 8),
    (Integrity.CC, CcAlgorithm.AES_CMAC, 16, 8),
    (Integrity.CC, CcAlgorithm.AES_CMAC, 32, 4),
]


@st.composite
def secured_commands(draw: st.DrawFn) -> tuple[bytes, Spi, Kic, Kid, int, KeySet, int]:
    cipher, cipher_key_length = draw(st.sampled_from(CIPHERS))
    integrity, mac, mac_key_length, cc_length = draw(st.sampled_from(MACS))
    spi = Spi(
        integrity=integrity,
        ciphering=draw(st.booleans()),
        counter=draw(st.sampled_from(CounterMode)),
        por=draw(st.sampled_from(PorMode)),
        por_integrity=draw(st.sampled_from([Integrity.NONE, integrity])),
        por_ciphering=draw(st.booleans()),
        por_via_sms_submit=draw(st.booleans()),
        reserved1=draw(st.integers(0, 7)),
        reserved2=draw(st.integers(0, 3)),
    )
    kic = Kic(cipher, draw(st.integers(0, 15)))
    kid = Kid(mac, draw(st.integers(0, 15)))
    keys = KeySet(
        draw(st.binary(min_size=cipher_key_length, max_size=cipher_key_length)),
        draw(st.binary(min_size=mac_key_length, max_size=mac_key_length)),
    )
    budget = max_payload(spi, kic, kid, cc_length=cc_length)
    payload = draw(st.binary(max_size=budget))
    return payload, spi, kic, kid, draw(st.integers(1, MAX_CNTR - 1)), keys, cc_length


@settings(max_examples=300, deadline=None)
@given(secured_commands(), st.binary(min_size=3, max_size=3))
def test_command_round_trip(command: tuple[bytes, Spi, Kic, Kid, int, KeySet, int], tar: bytes) -> None:
    payload, spi, kic, kid, cntr, keys, cc_length = command
    packet = build_command_packet(payload, spi, kic, kid, tar, cntr, keys, cc_length=cc_length)
    assert len(COMMAND_UDH + packet) <= 140
    receiver = KeySet(keys.kic_key, keys.kid_key, kvn=None, minimum_security=0, counter=cntr - 1)
    cmd, parsed = parse_command_packet(packet, lambda t, k, d: receiver if t == tar else None)
    assert parsed == payload
    assert cmd == CommandPacket(spi, kic, kid, tar, cntr, cmd.pcntr, cmd.rc_cc_ds, payload + bytes(cmd.pcntr))
    if spi.ciphering:
        assert (len(packet) - 10) % (16 if kic.algorithm is CipherAlgorithm.AES_CBC else 8) == 0
    else:
        assert cmd.pcntr == 0


@settings(max_examples=200, deadline=None)
@given(
    secured_commands(),
    st.binary(min_size=3, max_size=3),
    st.sampled_from(ResponseStatus),
    st.binary(max_size=60),
)
def test_response_round_trip(
    command: tuple[bytes, Spi, Kic, Kid, int, KeySet, int], tar: bytes, status: ResponseStatus, data: bytes
) -> None:
    _, spi, kic, kid, cntr, keys, cc_length = command
    kid = Kid.decode(kid.encode(), spi.por_integrity)
    ud = build_response_packet(
        tar, cntr, status, data, spi=spi, kic=kic, kid=kid, keys=keys, cc_length=cc_length
    )
    por = parse_response_packet(ud, spi=spi, kic=kic, kid=kid, keys=keys)
    assert (por.tar, por.cntr, por.status, por.additional_response_data, por.secured) == (
        tar,
        cntr,
        status,
        data,
        True,
    )


# --- fuzz: any bytes give a value, a DecodeError or an OtaSecurityError ------------------------------

_KEY_LENGTH = {0x1: 8, 0xD: 8, 0x5: 16, 0x9: 24, 0x2: 16}


def _fitting_keys(tar: bytes, kic: Kic, kid: Kid) -> KeySet | None:
    if tar == b"\xff\xff\xff":
        return None
    return KeySet(
        bytes(_KEY_LENGTH.get(int(kic.algorithm), 8)), bytes(_KEY_LENGTH.get(int(kid.algorithm), 8))
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=160))
def test_fuzz_parse_command_packet(data: bytes) -> None:
    for lookup in (_fitting_keys, lambda *_: KEYS_AES):
        with contextlib.suppress(DecodeError, OtaSecurityError):
            parse_command_packet(data, lookup)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=7, max_size=8), st.binary(max_size=120))
def test_fuzz_parse_command_packet_well_framed(header: bytes, body: bytes) -> None:
    chl = 13 + (header[0] % 3) * 4
    rest = bytes((chl,)) + header[1:8].ljust(7, b"\x00") + body
    data = len(rest).to_bytes(2, "big") + rest
    with contextlib.suppress(DecodeError, OtaSecurityError):
        parse_command_packet(data, _fitting_keys)


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=160),
    st.sampled_from([POR_SPI, Spi(), Spi(por_integrity=Integrity.RC), Spi(por_ciphering=True)]),
)
def test_fuzz_parse_response_packet(data: bytes, spi: Spi) -> None:
    kid = Kid(RcAlgorithm.CRC16) if spi.por_integrity is Integrity.RC else KID_AES
    for user_data in (data, RESPONSE_UDH + len(data).to_bytes(2, "big") + data):
        with contextlib.suppress(DecodeError, OtaSecurityError):
            parse_response_packet(user_data, spi=spi, kic=KIC_AES, kid=kid, keys=KEYS_AES)

"""SMPP 3.4 delivery receipts (protocols/smpp/receipt.py): Appendix B text, receipt TLVs, id matching.

Vectors live in tests/vectors/smpp/receipts.json, each naming its source (SMPP 3.4 Appendix B, public
documents quoting real receipts, smpplib-generated PDUs, or "synthetic").
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import DecodeError, LocalProtocolError
from protocols.smpp.constants import DataCoding, EsmClass, MessageState
from protocols.smpp.pdu import DataSm, DeliverSm, decode_pdu, encode_pdu
from protocols.smpp.receipt import (
    DeliveryReceipt,
    build_receipt_pdu,
    build_receipt_text,
    message_id_keys,
    message_ids_equal,
    normalize_message_id,
    parse_receipt_text,
    receipt_from_pdu,
    stat_word,
)
from protocols.smpp.tlv import Tag, Tlv, find_tlv

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "smpp" / "receipts.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


def _ids(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [str(v[key]) for v in items]


def _input(vector: dict[str, Any]) -> str | bytes:
    return bytes.fromhex(vector["hex"]) if "hex" in vector else str(vector["text"])


def _check(receipt: DeliveryReceipt, expect: dict[str, Any]) -> None:
    fields = ("id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err", "text")
    assert {f: getattr(receipt, f) for f in fields} == {f: expect[f] for f in fields}
    assert receipt.message_state.name == expect["message_state"]
    for name in ("submit_datetime", "done_datetime"):
        value = getattr(receipt, name)()
        assert (value.isoformat() if value else None) == expect[name]


# --- vectors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["text"], ids=_ids(VECTORS["text"]))
def test_text_vector(vector: dict[str, Any]) -> None:
    receipt = parse_receipt_text(_input(vector))
    _check(receipt, vector["expect"])
    if vector["canonical"]:
        assert build_receipt_text(receipt) == vector["text"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=_ids(VECTORS["invalid"]))
def test_invalid_text_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as info:
        parse_receipt_text(_input(vector))
    assert "delivery receipt has no" in str(info.value)
    assert info.value.status == 0


@pytest.mark.parametrize("vector", VECTORS["pdu"], ids=_ids(VECTORS["pdu"]))
def test_pdu_vector(vector: dict[str, Any]) -> None:
    pdu = decode_pdu(bytes.fromhex(vector["hex"]))
    assert isinstance(pdu, DeliverSm | DataSm)
    receipt = receipt_from_pdu(pdu)
    if vector["expect"] is None:
        assert receipt is None
    else:
        assert receipt is not None
        _check(receipt, vector["expect"])


@pytest.mark.parametrize(
    "vector", VECTORS["message_ids"], ids=[f"{v['a']!r}-{v['b']!r}" for v in VECTORS["message_ids"]]
)
def test_message_id_vector(vector: dict[str, Any]) -> None:
    a, b = vector["a"], vector["b"]
    assert message_ids_equal(a, b) is vector["equal"]
    assert message_ids_equal(b, a) is vector["equal"]
    assert (not set(message_id_keys(a)).isdisjoint(message_id_keys(b))) is vector["equal"]


@pytest.mark.parametrize("vector", VECTORS["message_id_keys"], ids=_ids(VECTORS["message_id_keys"], "id"))
def test_message_id_keys_vector(vector: dict[str, Any]) -> None:
    assert list(message_id_keys(vector["id"])) == vector["keys"]


def test_every_vector_names_its_source() -> None:
    for group in ("text", "invalid", "pdu", "message_ids", "message_id_keys"):
        for vector in VECTORS[group]:
            assert vector["source"].strip(), vector


# --- parsing -----------------------------------------------------------------------------------------


def test_parse_accepts_bytearray_and_latin1() -> None:
    receipt = parse_receipt_text(bytearray(b"id:\xe9t\xe9 stat:DELIVRD text:caf\xe9"))
    assert receipt.id == "\xe9t\xe9"
    assert receipt.text == "caf\xe9"


def test_parse_keeps_first_of_duplicate_keys_and_drops_vendor_extras() -> None:
    receipt = parse_receipt_text("id:1 id:2 stat:DELIVRD smsc:foo err:000 vendor:x text:y")
    assert receipt.id == "1"
    assert receipt.stat == "DELIVRD"  # "smsc:foo" after the stat token is dropped
    assert receipt.err == "000"


def test_parse_underscore_keys_and_spaces_before_colon() -> None:
    receipt = parse_receipt_text("id :9 stat :EXPIRED submit_date:2403151200 done_date:2403151300")
    assert (receipt.id, receipt.stat) == ("9", "EXPIRED")
    assert (receipt.submit_date, receipt.done_date) == ("2403151200", "2403151300")


def test_parse_key_must_start_a_word() -> None:
    # "xid:" and "substat:" are not keys, so the only id/stat are the real ones
    receipt = parse_receipt_text("xid:5 id:6 substat:EXPIRED stat:DELIVRD")
    assert (receipt.id, receipt.stat) == ("6", "DELIVRD")


@pytest.mark.parametrize(
    ("sub", "expected"),
    [("001", 1), ("1", 1), ("", None), ("abc", None), ("1234567890", None), ("\u00b2", None)],
)
def test_parse_counts(sub: str, expected: int | None) -> None:
    assert parse_receipt_text(f"id:1 sub:{sub} dlvrd:{sub} stat:DELIVRD").sub == expected


def test_parse_missing_optional_fields() -> None:
    receipt = parse_receipt_text("id:1 stat:DELIVRD")
    assert receipt == DeliveryReceipt(id="1", stat="DELIVRD", err="")


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes_only_raises_decode_error(data: bytes) -> None:
    try:
        receipt = parse_receipt_text(data)
    except DecodeError:
        return
    assert receipt.id and receipt.stat
    _ = receipt.message_state, receipt.submit_datetime(), receipt.done_datetime()


@given(st.text(max_size=300))
def test_parse_arbitrary_text_only_raises_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_receipt_text(text)


_KEYS = ["id:", "ID:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:", "Text: "]


@given(st.lists(st.one_of(st.sampled_from(_KEYS), st.text(max_size=8), st.sampled_from([" ", "0", "\x00"]))))
def test_parse_key_soup_only_raises_decode_error(parts: list[str]) -> None:
    with contextlib.suppress(DecodeError):
        parse_receipt_text("".join(parts))


# --- message_state and dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", MessageState.DELIVERED),
        ("delivered", MessageState.DELIVERED),
        ("EXPIRED", MessageState.EXPIRED),
        ("DELETED", MessageState.DELETED),
        ("UNDELIV", MessageState.UNDELIVERABLE),
        ("Undeliverable", MessageState.UNDELIVERABLE),
        ("ACCEPTD", MessageState.ACCEPTED),
        ("accepted", MessageState.ACCEPTED),
        ("UNKNOWN", MessageState.UNKNOWN),
        ("REJECTD", MessageState.REJECTED),
        ("rejected", MessageState.REJECTED),
        ("ENROUTE", MessageState.ENROUTE),
        (" delivrd ", MessageState.DELIVERED),
        ("2", MessageState.DELIVERED),
        ("garbage", MessageState.UNKNOWN),
        ("", MessageState.UNKNOWN),
        ("1234", MessageState.UNKNOWN),
    ],
)
def test_message_state(stat: str, state: MessageState) -> None:
    assert DeliveryReceipt(id="1", stat=stat).message_state is state


def test_message_state_keeps_unregistered_number() -> None:
    state = DeliveryReceipt(id="1", stat="9").message_state
    assert int(state) == 9


def test_stat_word() -> None:
    for state in MessageState:
        assert DeliveryReceipt(id="1", stat=stat_word(state)).message_state is state
    assert stat_word(MessageState.DELIVERED) == "DELIVRD"
    assert stat_word(0) == "UNKNOWN"
    assert all(len(stat_word(s)) == 7 for s in MessageState)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2403151230", datetime(2024, 3, 15, 12, 30, tzinfo=UTC)),
        ("240315123059", datetime(2024, 3, 15, 12, 30, 59, tzinfo=UTC)),
        ("2413151230", None),  # month 13
        ("000000000000", None),
        ("", None),
        ("24031512", None),
        ("24031512300", None),
        ("24031512x0", None),
        (
            "\uff12\uff14\uff10\uff13\uff11\uff15\uff11\uff12\uff13\uff10",
            None,
        ),  # fullwidth digits are digits to str.isdigit, not to a receipt
    ],
)
def test_datetimes(raw: str, expected: datetime | None) -> None:
    receipt = DeliveryReceipt(id="1", submit_date=raw, done_date=raw)
    assert receipt.submit_datetime() == expected
    assert receipt.done_datetime() == expected


def test_datetime_in_smsc_zone() -> None:
    zone = timezone(timedelta(hours=3))
    value = DeliveryReceipt(id="1", done_date="2403151230").done_datetime(zone)
    assert value == datetime(2024, 3, 15, 9, 30, tzinfo=UTC)
    assert value is not None and value.tzinfo is zone


# --- building the text ---------------------------------------------------------------------------------


def test_build_canonical_form() -> None:
    receipt = DeliveryReceipt(
        id="0A1B2C",
        sub=1,
        dlvrd=0,
        submit_date="2403151200",
        done_date="2403151201",
        stat="UNDELIV",
        err="011",
        text="ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )
    assert build_receipt_text(receipt) == (
        "id:0A1B2C sub:001 dlvrd:000 submit date:2403151200 done date:2403151201 "
        "stat:UNDELIV err:011 Text:ABCDEFGHIJKLMNOPQRST"
    )


def test_build_omits_missing_counts_and_keeps_leading_space() -> None:
    receipt = DeliveryReceipt(id="1", stat="DELIVRD", text=" spaced")
    text = build_receipt_text(receipt)
    assert text == "id:1 submit date: done date: stat:DELIVRD err:000 Text:  spaced"
    assert parse_receipt_text(text) == receipt


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ""}, "id is empty"),
        ({"id": "a b"}, "holds whitespace"),
        ({"stat": ""}, "stat is empty"),
        ({"stat": "DEL\tIVRD"}, "holds whitespace"),
        ({"err": "0 1"}, "holds whitespace"),
        ({"sub": 1000}, "not 0..999"),
        ({"dlvrd": -1}, "not 0..999"),
        ({"submit_date": "24031512"}, "YYMMDDhhmm"),
        ({"done_date": "240315123x"}, "YYMMDDhhmm"),
    ],
)
def test_build_rejects_unreadable_fields(changes: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"id": "1", "stat": "DELIVRD"}
    with pytest.raises(LocalProtocolError, match=message):
        build_receipt_text(DeliveryReceipt(**(base | changes)))


_token = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=64).filter(
    lambda s: not any(c.isspace() for c in s)
)
_date = st.one_of(st.just(""), st.from_regex(r"\A[0-9]{10}\Z"), st.from_regex(r"\A[0-9]{12}\Z"))
_count = st.one_of(st.none(), st.integers(0, 999))
_receipts = st.builds(
    DeliveryReceipt,
    id=_token,
    sub=_count,
    dlvrd=_count,
    submit_date=_date,
    done_date=_date,
    stat=st.one_of(st.sampled_from(["DELIVRD", "UNDELIV", "ENROUTE", "REJECTD"]), _token),
    err=st.one_of(st.just(""), _token),
    text=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
)


@given(_receipts)
def test_text_round_trip(receipt: DeliveryReceipt) -> None:
    text = build_receipt_text(receipt)
    assert parse_receipt_text(text) == receipt


@given(_receipts, st.text(min_size=21, max_size=40))
def test_text_is_cut_to_twenty(receipt: DeliveryReceipt, long_text: str) -> None:
    long_receipt = DeliveryReceipt(id=receipt.id, stat=receipt.stat, text=long_text.replace("\x00", "."))
    assert len(parse_receipt_text(build_receipt_text(long_receipt)).text) == 20


# --- PDUs -----------------------------------------------------------------------------------------------

_ascii_token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
_pdu_receipts = st.builds(
    DeliveryReceipt,
    id=_ascii_token,
    sub=_count,
    dlvrd=_count,
    submit_date=_date,
    done_date=_date,
    stat=st.sampled_from([stat_word(s) for s in MessageState]),
    err=st.one_of(st.just("000"), st.integers(0, 0xFFFF).map(lambda n: f"{n:03d}")),
    text=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
)


@given(_pdu_receipts, st.booleans())
def test_pdu_round_trip_over_the_wire(receipt: DeliveryReceipt, with_tlvs: bool) -> None:
    pdu = build_receipt_pdu(
        receipt, source_addr="447700900123", destination_addr="12345", sequence_number=3, with_tlvs=with_tlvs
    )
    decoded = decode_pdu(encode_pdu(pdu))
    assert decoded == pdu
    assert isinstance(decoded, DeliverSm)
    assert receipt_from_pdu(decoded) == receipt


def test_build_pdu_fields_and_tlvs() -> None:
    receipt = DeliveryReceipt(id="1A2B", sub=1, dlvrd=0, stat="UNDELIV", err="011", text="hi")
    pdu = build_receipt_pdu(
        receipt,
        source_addr="447700900123",
        source_addr_ton=1,
        source_addr_npi=1,
        destination_addr="12345",
        dest_addr_ton=3,
        dest_addr_npi=0,
        sequence_number=42,
    )
    assert pdu.esm_class == EsmClass.SMSC_DELIVERY_RECEIPT
    assert pdu.data_coding == DataCoding.SMSC_DEFAULT
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("447700900123", 1, 1)
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("12345", 3, 0)
    assert pdu.sequence_number == 42
    assert pdu.short_message == build_receipt_text(receipt).encode("ascii")
    assert pdu.optional_parameters == (
        Tlv(Tag.RECEIPTED_MESSAGE_ID, b"1A2B\x00"),
        Tlv(Tag.MESSAGE_STATE, b"\x05"),
        Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
    )


@pytest.mark.parametrize("err", ["000", "0", "", "E", "65536", "123456"])
def test_build_pdu_without_network_error_code(err: str) -> None:
    pdu = build_receipt_pdu(DeliveryReceipt(id="1", stat="DELIVRD", err=err))
    assert find_tlv(pdu.optional_parameters, Tag.NETWORK_ERROR_CODE) is None
    assert find_tlv(pdu.optional_parameters, Tag.MESSAGE_STATE) == Tlv(Tag.MESSAGE_STATE, b"\x02")


def test_build_pdu_options() -> None:
    receipt = DeliveryReceipt(id="1", stat="ENROUTE")
    pdu = build_receipt_pdu(receipt, esm_class=EsmClass.INTERMEDIATE_NOTIFICATION, with_tlvs=False)
    assert pdu.esm_class == 0x20
    assert pdu.optional_parameters == ()
    assert receipt_from_pdu(pdu) == receipt


def test_build_pdu_replaces_non_ascii_text() -> None:
    pdu = build_receipt_pdu(DeliveryReceipt(id="1", stat="DELIVRD", text="caf\u00e9 \u263a"))
    assert pdu.short_message.endswith(b"Text:caf? ?")


def test_build_pdu_rejects_non_ascii_fields() -> None:
    with pytest.raises(LocalProtocolError, match="ASCII"):
        build_receipt_pdu(DeliveryReceipt(id="\u00e9", stat="DELIVRD"))


# --- receipt_from_pdu -------------------------------------------------------------------------------


def _deliver(
    short_message: bytes = b"", *params: Tlv, esm_class: int = 0x04, data_coding: int = 0
) -> DeliverSm:
    return DeliverSm(
        esm_class=esm_class, data_coding=data_coding, short_message=short_message, optional_parameters=params
    )


_TEXT = b"id:6699 sub:001 dlvrd:001 submit date:2403151200 done date:2403151201 stat:DELIVRD err:000 text:ok"


@pytest.mark.parametrize("esm_class", [0x00, 0x08, 0x10, 0x18, 0x3C, 0x40, 0x03])
def test_not_a_receipt(esm_class: int) -> None:
    assert receipt_from_pdu(_deliver(_TEXT, esm_class=esm_class)) is None


@pytest.mark.parametrize("esm_class", [0x04, 0x20, 0x44, 0x84, 0x07])
def test_receipt_types(esm_class: int) -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT, esm_class=esm_class))
    assert receipt is not None and receipt.id == "6699"


def test_tlv_id_wins_text_fields_kept() -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT, Tlv(Tag.RECEIPTED_MESSAGE_ID, b"1A2B\x00")))
    assert receipt == parse_receipt_text(_TEXT.replace(b"id:6699", b"id:1A2B"))


def test_tlv_id_without_nul_and_empty_tlv_id() -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT, Tlv(Tag.RECEIPTED_MESSAGE_ID, b"ABC")))
    assert receipt is not None and receipt.id == "ABC"
    receipt = receipt_from_pdu(_deliver(_TEXT, Tlv(Tag.RECEIPTED_MESSAGE_ID, b"\x00")))
    assert receipt is not None and receipt.id == "6699"


def test_tlv_state_overrides_disagreeing_text() -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT, Tlv(Tag.MESSAGE_STATE, b"\x03")))
    assert receipt is not None
    assert (receipt.stat, receipt.message_state) == ("EXPIRED", MessageState.EXPIRED)


def test_tlv_state_agreeing_text_keeps_its_word() -> None:
    text = _TEXT.replace(b"DELIVRD", b"Delivered")
    receipt = receipt_from_pdu(_deliver(text, Tlv(Tag.MESSAGE_STATE, b"\x02")))
    assert receipt is not None and receipt.stat == "Delivered"


def test_tlv_state_without_word_keeps_number() -> None:
    receipt = receipt_from_pdu(
        _deliver(b"", Tlv(Tag.RECEIPTED_MESSAGE_ID, b"1\x00"), Tlv(Tag.MESSAGE_STATE, b"\x09"))
    )
    assert receipt is not None
    assert receipt.stat == "9"
    assert int(receipt.message_state) == 9


def test_empty_tlv_state_is_ignored() -> None:
    with pytest.raises(DecodeError, match="neither message_state nor stat"):
        receipt_from_pdu(_deliver(b"", Tlv(Tag.RECEIPTED_MESSAGE_ID, b"1\x00"), Tlv(Tag.MESSAGE_STATE, b"")))


def test_network_error_code() -> None:
    nec = Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x01\x00")
    receipt = receipt_from_pdu(_deliver(_TEXT, nec))
    assert receipt is not None and receipt.err == "256"
    same = Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x00")
    receipt = receipt_from_pdu(_deliver(_TEXT, same))
    assert receipt is not None and receipt.err == "000"  # the text's spelling of the same code
    short = Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x01")  # not 3 octets: ignored
    receipt = receipt_from_pdu(_deliver(_TEXT, short))
    assert receipt is not None and receipt.err == "000"


def test_message_payload_when_short_message_empty() -> None:
    receipt = receipt_from_pdu(_deliver(b"", Tlv(Tag.MESSAGE_PAYLOAD, _TEXT)))
    assert receipt == parse_receipt_text(_TEXT)
    # short_message wins over message_payload when both are there
    receipt = receipt_from_pdu(_deliver(_TEXT, Tlv(Tag.MESSAGE_PAYLOAD, b"id:1 stat:EXPIRED")))
    assert receipt is not None and receipt.id == "6699"


def test_data_sm_without_payload_needs_tlvs() -> None:
    pdu = DataSm(esm_class=0x04)
    with pytest.raises(DecodeError, match="neither receipted_message_id nor id"):
        receipt_from_pdu(pdu)
    pdu = DataSm(esm_class=0x04, optional_parameters=(Tlv(Tag.RECEIPTED_MESSAGE_ID, b"7\x00"),))
    with pytest.raises(DecodeError, match="neither message_state nor stat"):
        receipt_from_pdu(pdu)


def test_ucs2_receipt() -> None:
    text = _TEXT.decode("ascii").encode("utf-16-be")
    receipt = receipt_from_pdu(_deliver(text, data_coding=DataCoding.UCS2))
    assert receipt == parse_receipt_text(_TEXT)


def test_ucs2_that_is_not_ucs2_is_read_as_octets() -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT + b"!", data_coding=DataCoding.UCS2))  # odd length
    assert receipt is not None and receipt.text == "ok!"


def test_trailing_nul_in_short_message() -> None:
    receipt = receipt_from_pdu(_deliver(_TEXT + b"\x00\x00"))
    assert receipt is not None and receipt.text == "ok"


_tlv = st.one_of(
    st.builds(
        Tlv,
        st.sampled_from([Tag.RECEIPTED_MESSAGE_ID, Tag.MESSAGE_STATE, Tag.NETWORK_ERROR_CODE]),
        st.binary(max_size=6),
    ),
    st.builds(Tlv, st.just(Tag.MESSAGE_PAYLOAD), st.binary(max_size=120)),
)


@given(
    st.binary(max_size=160),
    st.lists(_tlv, max_size=4),
    st.integers(0, 255),
    st.sampled_from([0, 3, 8]),
)
def test_arbitrary_receipt_pdu_only_raises_decode_error(
    short_message: bytes, params: list[Tlv], esm_class: int, data_coding: int
) -> None:
    pdu = _deliver(short_message, *params, esm_class=esm_class, data_coding=data_coding)
    try:
        receipt = receipt_from_pdu(pdu)
    except DecodeError:
        return
    if receipt is not None:
        assert receipt.id and receipt.stat
        _ = receipt.message_state


# --- message ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("00AB", "ab"), ("000", "0"), ("0", "0"), ("", ""), (" \x00 ", ""), ("  12 \r\n", "12"), ("X0", "x0")],
)
def test_normalize_message_id(raw: str, normalized: str) -> None:
    assert normalize_message_id(raw) == normalized


def test_long_ids_are_strings_only() -> None:
    long_digits = "9" * 5000  # past CPython's int/str conversion limit: must not raise
    assert message_id_keys(long_digits) == (long_digits,)
    assert message_ids_equal(long_digits, "0" + long_digits)
    sixty_four = "1" * 64
    assert message_id_keys(sixty_four) == (sixty_four, int(sixty_four), int(sixty_four, 16))


def test_unicode_digits_are_not_numbers() -> None:
    assert message_id_keys("\u0663") == ("\u0663",)  # ARABIC-INDIC DIGIT THREE
    assert not message_ids_equal("\u0663", "3")


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 4), st.booleans())
def test_hex_and_decimal_spellings_match(value: int, zeros: int, upper: bool) -> None:
    hex_id = "0" * zeros + (f"{value:X}" if upper else f"{value:x}")
    dec_id = "0" * zeros + str(value)
    assert message_ids_equal(hex_id, dec_id)
    assert message_ids_equal(dec_id, hex_id)
    assert message_ids_equal(hex_id, hex_id.swapcase())


@given(st.text(max_size=20), st.text(max_size=20))
def test_equality_is_key_intersection_and_symmetric(a: str, b: str) -> None:
    shared = not set(message_id_keys(a)).isdisjoint(message_id_keys(b))
    assert message_ids_equal(a, b) is shared
    assert message_ids_equal(b, a) is shared


def test_index_outstanding_submits_by_every_key() -> None:
    # the use the keys are for: submit_sm_resp ids in hex, receipts in decimal, found in O(1)
    outstanding: dict[int | str, list[str]] = {}
    for resp_id in ("1A2B", "0BC614E", "ff"):
        for key in message_id_keys(resp_id):
            outstanding.setdefault(key, []).append(resp_id)
    found = {
        rid: next(outstanding[k] for k in message_id_keys(rid) if k in outstanding)
        for rid in ("6699", "12345678", "255")
    }
    assert found == {"6699": ["1A2B"], "12345678": ["0BC614E"], "255": ["ff"]}

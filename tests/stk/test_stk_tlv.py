"""CAT TLV framing (TS 101 220 section 7.1/7.2) and the simple data objects (TS 102 223 section 8).

Vectors of kind "tlv" and "ussd_string" come from tests/vectors/stk/cat.json. Cross-checks: pycrate
``TS31111_SAT.COMPTag`` parses our tags, its tag dictionaries know every registry value we name, and
``TS23038.encode_7b`` packs USSD strings as we do. The hypothesis strategies defined here are reused
by the other STK test modules.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocols.errors import DecodeError, LocalProtocolError
from protocols.gsm.alphabet import GSM7_BASIC, GSM7_EXTENSION
from protocols.stk.tlv import (
    MAX_LENGTH,
    Address,
    AlphaIdentifier,
    BerTag,
    BerTlv,
    CommandDetails,
    ComprehensionTag,
    ComprehensionTlv,
    DataCodingScheme,
    DeviceIdentities,
    DeviceIdentity,
    Duration,
    IconIdentifier,
    Item,
    ResponseLength,
    TextString,
    TimeUnit,
    TypeOfCommand,
    UssdString,
    decode_ber_tlv,
    decode_comprehension_tlvs,
    encode_ber_tlv,
    encode_comprehension_tlvs,
    find_tlv,
)

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "stk" / "cat.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]


def vectors_of(kind: str) -> list[dict[str, Any]]:
    return [v for v in VECTORS if v["kind"] == kind]


# --- strategies shared by the STK tests -----------------------------------------------------------

octets = st.integers(0, 0xFF)
GSM_CHARS = [c for i, c in enumerate(GSM7_BASIC) if i != 0x1B] + list(GSM7_EXTENSION.values())
gsm_texts = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=30)
# packed 7-bit carries no septet count: a text ending in <CR> comes back with a second <CR>
packable_texts = gsm_texts.filter(lambda t: not t.endswith("\r"))
bmp_texts = st.text(alphabet=st.characters(max_codepoint=0xFFFD, exclude_categories=["Cs"]), max_size=20)
any_texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)

text_strings = st.one_of(
    st.builds(TextString.of, packable_texts, st.just(0x00)),
    st.builds(TextString.of, gsm_texts, st.just(0x04)),
    st.builds(TextString.of, any_texts, st.just(0x08)),
    st.builds(TextString, st.sampled_from([0x00, 0x04, 0x08, 0xF4, 0x20]), st.binary(max_size=30)),
    st.just(TextString(None)),
)
alpha_identifiers = st.one_of(
    st.builds(AlphaIdentifier.of, any_texts),
    st.builds(AlphaIdentifier, st.binary(max_size=20)),
)
items = st.one_of(
    st.builds(Item.of, octets, any_texts.map(lambda t: t[:12])),
    st.builds(Item, octets, st.binary(max_size=12)),
)
durations = st.builds(Duration, st.sampled_from(list(TimeUnit)), octets)
icons = st.builds(IconIdentifier, octets, octets)
device_identities = st.builds(
    DeviceIdentities, st.sampled_from(list(DeviceIdentity)), st.sampled_from(list(DeviceIdentity))
)
addresses = st.builds(Address, octets, st.text(alphabet="0123456789*#abc", max_size=20))
ussd_strings = st.one_of(
    st.builds(UssdString.of, packable_texts, st.sampled_from([0x0F, 0x00, 0x40, 0xF0])),
    st.builds(UssdString.of, any_texts, st.just(0x48)),
    st.builds(UssdString, octets, st.binary(max_size=20)),
)
# objects no typed command, response or envelope models: they always land in extra_tlvs
EXTRA_TAGS = [
    ComprehensionTag.TEXT_ATTRIBUTE,
    ComprehensionTag.ITEM_TEXT_ATTRIBUTE_LIST,
    ComprehensionTag.FRAME_IDENTIFIER,
    ComprehensionTag.LANGUAGE,
    0x3D,
    0x1234,
]
extra_tlvs = st.lists(
    st.builds(ComprehensionTlv, st.sampled_from(EXTRA_TAGS), st.binary(max_size=8), st.booleans()),
    max_size=2,
).map(tuple)


def hexbytes(value: str) -> bytes:
    return bytes.fromhex(value)


# --- COMPREHENSION-TLV framing --------------------------------------------------------------------


def test_one_byte_tag_carries_the_comprehension_required_bit() -> None:
    assert ComprehensionTlv(0x0D, b"ab").encode() == hexbytes("8D026162")
    assert ComprehensionTlv(0x0D, b"ab", comprehension_required=False).encode() == hexbytes("0D026162")
    assert decode_comprehension_tlvs(hexbytes("0D00")) == (ComprehensionTlv(0x0D, b"", False),)


def test_three_byte_tag_format() -> None:
    tlv = ComprehensionTlv(0x1234, b"\x01")
    assert tlv.three_byte_format
    assert tlv.encode() == hexbytes("7F9234" + "0101")
    assert ComprehensionTlv(0x1234, b"", False).encode() == hexbytes("7F123400")
    assert decode_comprehension_tlvs(hexbytes("7F923401AA")) == (ComprehensionTlv(0x1234, b"\xaa", True),)


@pytest.mark.parametrize("tag", [0x00, 0x7F, 0x80, 0x7FFF])
def test_tags_that_need_three_bytes_always_get_them(tag: int) -> None:
    tlv = ComprehensionTlv(tag, b"", three_byte_format=False)
    assert tlv.three_byte_format
    assert tlv.encode()[0] == 0x7F
    assert decode_comprehension_tlvs(tlv.encode()) == (tlv,)


def test_small_tag_in_three_byte_format_re_encodes_byte_for_byte() -> None:
    data = hexbytes("7F800D024142")
    (tlv,) = decode_comprehension_tlvs(data)
    assert (tlv.tag, tlv.value, tlv.comprehension_required, tlv.three_byte_format) == (
        0x0D,
        b"AB",
        True,
        True,
    )
    assert tlv.encode() == data


@pytest.mark.parametrize(
    ("length", "header"),
    [(0, "8D00"), (0x7F, "8D7F"), (0x80, "8D8180"), (MAX_LENGTH, "8D81FF")],
)
def test_length_forms(length: int, header: str) -> None:
    encoded = ComprehensionTlv(0x0D, bytes(length)).encode()
    assert encoded[: len(header) // 2] == hexbytes(header)
    assert decode_comprehension_tlvs(encoded)[0].value == bytes(length)


def test_values_longer_than_255_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        ComprehensionTlv(0x0D, bytes(256))
    with pytest.raises(LocalProtocolError):
        BerTlv(0xD0, bytes(256))


@pytest.mark.parametrize("tag", [-1, 0x8000])
def test_tag_range_is_checked(tag: int) -> None:
    with pytest.raises(LocalProtocolError):
        ComprehensionTlv(tag)


@pytest.mark.parametrize(
    "data",
    [
        "00",  # tag values not used in the one-byte format
        "8000",
        "FF00",
        "7F80",  # three-byte tag truncated
        "8D",  # length missing
        "8D81",  # two-byte length truncated
        "8D817F" + "00" * 0x7F,  # non-minimal length
        "8D820001" + "00",  # length forms beyond '81' are not used by CAT
        "8D0500",  # value shorter than announced
    ],
)
def test_malformed_comprehension_tlvs(data: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_comprehension_tlvs(hexbytes(data))
    assert info.value.status == 0x32  # command data not understood


def test_unknown_tags_are_kept_and_named() -> None:
    data = hexbytes("BD0101" + "3D00" + "7F812300")
    tlvs = decode_comprehension_tlvs(data)
    assert [t.tag for t in tlvs] == [0x3D, 0x3D, 0x123]
    assert encode_comprehension_tlvs(tlvs) == data
    assert ComprehensionTag(0x3D).name == "UNKNOWN_0x3D"
    assert ComprehensionTag(0x3D) == 0x3D
    assert ComprehensionTag(0x0D) is ComprehensionTag.TEXT_STRING


def test_registry_lookup_of_non_int_fails() -> None:
    with pytest.raises(ValueError, match="is not a valid"):
        ComprehensionTag("0x0D")  # type: ignore[arg-type]


def test_find_tlv() -> None:
    tlvs = decode_comprehension_tlvs(hexbytes("8103012180" + "820281028D00"))
    found = find_tlv(tlvs, ComprehensionTag.DEVICE_IDENTITIES)
    assert found is not None
    assert found.value == b"\x81\x02"
    assert find_tlv(tlvs, ComprehensionTag.RESULT) is None


@given(st.integers(0, 0x7FFF), st.binary(max_size=MAX_LENGTH), st.booleans(), st.booleans())
def test_comprehension_tlv_round_trip(tag: int, value: bytes, cr: bool, three: bool) -> None:
    tlv = ComprehensionTlv(tag, value, cr, three)
    encoded = tlv.encode()
    assert decode_comprehension_tlvs(encoded) == (tlv,)
    assert decode_comprehension_tlvs(encoded * 2) == (tlv, tlv)


@given(st.integers(0, 0x7FFF), st.booleans(), st.booleans())
def test_tag_coding_agrees_with_pycrate(tag: int, cr: bool, three: bool) -> None:
    from pycrate_mobile.TS31111_SAT import COMPTag

    encoded = ComprehensionTlv(tag, b"", cr, three).encode()
    parsed = COMPTag()
    parsed.from_bytes(encoded[:-1])
    assert parsed.get_val() == [int(cr), tag]


def test_registries_agree_with_pycrate_dictionaries() -> None:
    from pycrate_mobile.TS31111_SAT import BERTag_dict, CompTag_dict

    for tag in ComprehensionTag:
        assert tag.value in CompTag_dict, tag
    for ber in BerTag:
        assert ber.value in BERTag_dict, ber
    assert "Text string" in CompTag_dict[ComprehensionTag.TEXT_STRING]
    assert "USSD string" in CompTag_dict[ComprehensionTag.USSD_STRING]
    assert "SMS TPDU" in CompTag_dict[ComprehensionTag.SMS_TPDU]
    assert BERTag_dict[BerTag.PROACTIVE_COMMAND] == "Proactive UICC command"
    assert BERTag_dict[BerTag.SMS_PP_DOWNLOAD] == "SMS-PP download"


# --- BER-TLV ----------------------------------------------------------------------------------------


def test_ber_tlv_round_trip_and_contents() -> None:
    data = encode_ber_tlv(BerTag.PROACTIVE_COMMAND, [CommandDetails(1, 0x21, 0x80).to_tlv()])
    assert data == hexbytes("D0058103012180")
    ber = decode_ber_tlv(data)
    assert ber == BerTlv(0xD0, hexbytes("8103012180"))
    assert ber.comprehension_tlvs() == (ComprehensionTlv(1, hexbytes("012180")),)
    assert ber.encode() == data
    long = BerTlv(0xD1, bytes(200))
    assert long.encode()[:3] == hexbytes("D181C8")
    assert decode_ber_tlv(long.encode()) == long


@pytest.mark.parametrize("data", ["", "00", "FF00", "1F00", "DF", "D00000", "D002AA", "D08105" + "00" * 5])
def test_malformed_ber_tlv(data: str) -> None:
    with pytest.raises(DecodeError):
        decode_ber_tlv(hexbytes(data))


@pytest.mark.parametrize("tag", [0x00, 0xFF, 0x1F, 0xDF, 0x100, -1])
def test_ber_tag_must_be_a_one_byte_tag(tag: int) -> None:
    with pytest.raises(LocalProtocolError):
        BerTlv(tag)


@given(st.binary(max_size=300))
def test_fuzz_framing(data: bytes) -> None:
    for decode in (decode_comprehension_tlvs, decode_ber_tlv):
        with contextlib.suppress(DecodeError):
            decode(data)


# --- simple data objects ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors_of("tlv"), ids=lambda v: v["name"])
def test_tlv_vectors(vector: dict[str, Any]) -> None:
    data = hexbytes(vector["hex"])
    expected = vector["expected"]
    (tlv,) = decode_comprehension_tlvs(data)
    assert tlv.tag == expected["tag"]
    assert tlv.comprehension_required == expected["comprehension_required"]
    if "text_string" in expected:
        text = TextString.decode_value(tlv.value)
        assert (text.dcs, text.text) == (expected["text_string"]["dcs"], expected["text_string"]["text"])
        assert (
            TextString.of(expected["text_string"]["text"], expected["text_string"]["dcs"]).to_tlv().encode()
            == data
        )
    if "duration" in expected:
        duration = Duration(*expected["duration"])
        assert Duration.decode_value(tlv.value) == duration
        assert duration.to_tlv().encode() == data
        assert duration.seconds == 60


def _round_trip(obj: Any) -> Any:
    (tlv,) = decode_comprehension_tlvs(obj.to_tlv().encode())
    assert tlv.tag == obj.TAG
    return type(obj).decode_value(tlv.value)


@given(
    st.one_of(
        st.builds(CommandDetails, octets, st.sampled_from(list(TypeOfCommand)), octets),
        device_identities,
        durations,
        text_strings,
        alpha_identifiers,
        items,
        st.builds(ResponseLength, octets, octets),
        icons,
        addresses,
        ussd_strings,
    )
)
def test_data_object_round_trip(obj: Any) -> None:
    assert _round_trip(obj) == obj


@pytest.mark.parametrize(
    ("cls", "value"),
    [
        (CommandDetails, "0121"),
        (CommandDetails, "01218000"),
        (DeviceIdentities, "81"),
        (Duration, "01"),
        (ResponseLength, "040404"),
        (IconIdentifier, ""),
        (Address, ""),
        (Address, "911F"),  # end mark in the first nibble of an octet
        (Address, "91F021"),  # end mark before the last octet
        (UssdString, ""),
    ],
)
def test_malformed_data_objects(cls: Any, value: str) -> None:
    with pytest.raises(DecodeError) as info:
        cls.decode_value(hexbytes(value))
    assert info.value.status == 0x32


@pytest.mark.parametrize(
    "build",
    [
        lambda: CommandDetails(256, 0x21),
        lambda: CommandDetails(1, -1),
        lambda: CommandDetails(1, 0x21, 0x100),
        lambda: DeviceIdentities(0x81, 0x100),
        lambda: Duration(1, 256),
        lambda: TextString(0x100),
        lambda: TextString(None, b"x"),
        lambda: TextString.of("x", 0x100),
        lambda: Item(None, b"x"),
        lambda: Item(256),
        lambda: ResponseLength(0, 256),
        lambda: IconIdentifier(256, 0),
        lambda: Address(0x91, "12+"),
        lambda: Address(0x100),
        lambda: UssdString(0x100),
        lambda: UssdString.of("x", 0x100),
    ],
)
def test_constructors_check_their_fields(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_duration_in_seconds() -> None:
    assert Duration(TimeUnit.MINUTES, 2).seconds == 120
    assert Duration(TimeUnit.SECONDS, 60).seconds == 60
    assert Duration(TimeUnit.TENTHS_OF_SECONDS, 5).seconds == pytest.approx(0.5)
    assert Duration(0x07, 5).seconds is None
    assert Duration.decode_value(b"\x07\x05").time_unit.name == "UNKNOWN_0x07"  # type: ignore[attr-defined]


def test_address_digits_and_fields() -> None:
    address = Address.decode_value(hexbytes("91527400000000"))
    assert address == Address(0x91, "254700000000")
    assert (address.type_of_number, address.numbering_plan_identification) == (1, 1)
    assert Address(0x81, "*123#a").encode_value() == hexbytes("811A32CB")
    assert Address.decode_value(hexbytes("811A32CB")).dialling_number == "*123#a"
    assert Address.decode_value(hexbytes("9121F3")).dialling_number == "123"
    assert Address(0x91).encode_value() == b"\x91"


# --- texts --------------------------------------------------------------------------------------------


def test_text_string_picks_its_coding() -> None:
    assert TextString.of("Buy 1GB") == TextString(DataCodingScheme.GSM_8BIT, b"Buy 1GB")
    assert TextString.of("Купить").dcs == DataCodingScheme.UCS2
    assert TextString.of("Buy 1GB", 0x00).data == hexbytes(
        "C27A1E143B0A1B"
    )  # 7 septets + <CR> filler; same prefix as DISPLAY_TEXT_7bit
    assert TextString.yes_no(True).encode_value() == hexbytes("0401")
    assert TextString.yes_no(False).encode_value() == hexbytes("0400")
    assert TextString(None).text == ""
    assert TextString.decode_value(b"") == TextString(None)
    assert TextString(None).to_tlv().encode() == hexbytes("8D00")
    with pytest.raises(LocalProtocolError):
        TextString.of("Купить", 0x04)


def test_text_string_codings_of_the_sms_dcs() -> None:
    assert TextString(0xF4, b"Hi").text == "Hi"  # group 1111, 8-bit
    assert TextString(0xF0, hexbytes("C834")).text == "Hi"  # group 1111, 7-bit
    assert TextString(0x18, "Hé".encode("utf-16-be")).text == "Hé"  # class given, UCS2
    assert TextString(0x0C, hexbytes("C834")).text == "Hi"  # reserved alphabet '11' reads as GSM 7-bit
    with pytest.raises(DecodeError) as info:
        _ = TextString(0x24, b"xx").text  # compressed
    assert info.value.status == 0x32
    with pytest.raises(LocalProtocolError):
        TextString.of("x", 0x24)
    with pytest.raises(DecodeError):
        _ = TextString(0x04, b"\x80").text  # not a GSM code
    with pytest.raises(DecodeError):
        _ = TextString(0x08, b"\x00").text  # odd UCS2
    with pytest.raises(DecodeError):
        _ = TextString(0x08, b"\xd8\x00").text  # unpaired surrogate


@given(packable_texts)
def test_packed_text_string_round_trip(text: str) -> None:
    assert TextString.of(text, 0x00).text == text


@given(gsm_texts)
def test_gsm_8bit_text_string_round_trip(text: str) -> None:
    assert TextString.of(text).text == text


@given(any_texts)
def test_ucs2_text_string_round_trip(text: str) -> None:
    assert TextString.of(text, 0x08).text == text


def test_alpha_identifier_codings() -> None:
    assert AlphaIdentifier.of("Data Shop").data == b"Data Shop"
    assert AlphaIdentifier.of("Купить").data == b"\x80" + "Купить".encode("utf-16-be")
    assert AlphaIdentifier(b"Data\xff\xff").text == "Data"  # EF-ADN padding
    assert AlphaIdentifier(b"\x80\x04\x1a\xff").text == "\u041a"  # odd UCS2 tail padded with 'FF'
    assert AlphaIdentifier(b"\x80\x04\x1a\xff\xff").text == "\u041a"
    assert AlphaIdentifier(b"").text == ""
    assert AlphaIdentifier(b"\x1b\x65").text == "€"
    # '81': count, base pointer bits 15..8 (base = octet << 7), then GSM codes (b8 = 0) or base offsets
    assert AlphaIdentifier(hexbytes("81040853A1" + "1B65")).text == "S\u0421€"
    # '82': count, 16-bit base, then the same
    assert AlphaIdentifier(hexbytes("820304105381" + "8F")).text == "SБП"
    with pytest.raises(DecodeError):
        _ = AlphaIdentifier(hexbytes("8105")).text  # truncated header
    with pytest.raises(DecodeError):
        _ = AlphaIdentifier(hexbytes("81050853")).text  # fewer characters than announced
    with pytest.raises(DecodeError):
        _ = AlphaIdentifier(hexbytes("8201D80080")).text  # points at a surrogate
    with pytest.raises(DecodeError):
        _ = AlphaIdentifier(hexbytes("83")).text  # not a GSM code nor a UCS2 scheme


@given(any_texts)
def test_alpha_identifier_round_trip(text: str) -> None:
    assume("\uffff" not in text)
    assert AlphaIdentifier.of(text).text == text
    assert Item.of(7, text).text == text


def test_item() -> None:
    assert Item.of(1, "100MB 1.00").encode_value() == b"\x01100MB 1.00"
    assert Item.decode_value(b"") == Item(None)
    assert Item(None).to_tlv().encode() == hexbytes("8F00")
    assert Item(None).text == ""


@pytest.mark.parametrize("vector", vectors_of("ussd_string"), ids=lambda v: v["name"])
def test_ussd_string_vectors(vector: dict[str, Any]) -> None:
    from pycrate_mobile.TS23038 import decode_7b, encode_7b

    text = vector["expected"]["text"]
    packed = hexbytes(vector["hex"])
    assert UssdString.of(text) == UssdString(0x0F, packed)
    assert UssdString(0x0F, packed).text == text
    assert encode_7b(text)[0] == packed
    assert decode_7b(packed) == text


@given(packable_texts)
def test_ussd_packing_agrees_with_pycrate(text: str) -> None:
    from pycrate_mobile.TS23038 import encode_7b

    assume(not text.endswith("\r"))
    # pycrate only adds the <CR> filler for 8n-1 septets (not the second <CR> of a text ending in one)
    assert UssdString.of(text).data == encode_7b(text)[0]


def test_ussd_string_codings_of_the_cbs_dcs() -> None:
    assert UssdString(0x48, "Привет".encode("utf-16-be")).text == "Привет"  # general, UCS2
    assert UssdString(0x44, b"*1#").text == "*1#"  # general, 8-bit
    assert UssdString(0x4C, hexbytes("AA180C3602")).text == "*100#"  # general, reserved '11': GSM 7-bit
    assert UssdString(0xF4, b"*1#").text == "*1#"  # group 1111, 8-bit
    assert UssdString(0xF0, hexbytes("AA180C3602")).text == "*100#"
    assert (
        UssdString(0x11, hexbytes("E532") + "Да".encode("utf-16-be")).text == "Да"
    )  # language prefix skipped
    assert UssdString(0x30, hexbytes("AA180C3602")).text == "*100#"  # reserved group
    for dcs in (0x60, 0x90, 0xE0):  # compressed, behind a UDH, WAP
        with pytest.raises(DecodeError):
            _ = UssdString(dcs, b"x").text
    with pytest.raises(DecodeError):
        _ = UssdString(0x11, b"\x01").text
    with pytest.raises(LocalProtocolError):
        UssdString.of("x", 0x11)
    assert UssdString.of("Привет", 0x48).data == "Привет".encode("utf-16-be")
    assert UssdString.of("*1#", 0xF4).data == b"*1#"


@given(st.binary(max_size=40))
def test_fuzz_data_objects_and_their_texts(value: bytes) -> None:
    for cls in (
        CommandDetails,
        DeviceIdentities,
        Duration,
        TextString,
        AlphaIdentifier,
        Item,
        ResponseLength,
        IconIdentifier,
        Address,
        UssdString,
    ):
        try:
            obj: Any = cls.decode_value(value)
        except DecodeError:
            continue
        assert obj.encode_value() == value
        if isinstance(obj, TextString | AlphaIdentifier | Item | UssdString):
            with contextlib.suppress(DecodeError):
                assert isinstance(obj.text, str)

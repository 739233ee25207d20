"""ENVELOPE (TS 31.111 section 7.1.1.2 SMS-PP download, TS 102 223 7.2 menu selection, 7.5 event download)
and the SMS-PP download outcome (TS 31.111 section 7.1.1.1, PROTOCOLS.md section 1.5.7).

Vectors of kind "envelope" come from tests/vectors/stk/cat.json; the SMS-DELIVER inside the SMS-PP
download is cross-checked with pycrate. tshark's gsm_sim reads our envelopes in test_stk_commands.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_stk_tlv import addresses, device_identities, extra_tlvs, hexbytes, octets, vectors_of

from protocols.errors import DecodeError, LocalProtocolError
from protocols.stk.commands import DisplayText, decode_proactive
from protocols.stk.envelope import (
    Envelope,
    EventDownload,
    MenuSelection,
    SmsPpDownload,
    SmsPpDownloadResponse,
    TpFailureCause,
    UnknownEnvelope,
    decode_envelope,
)
from protocols.stk.tlv import Address, BerTag, ComprehensionTlv, DeviceIdentities, DeviceIdentity

ENVELOPES = vectors_of("envelope")


def test_every_envelope_of_the_shared_catalogue_is_here() -> None:
    assert {v["name"] for v in ENVELOPES} == {"ENV_MENU_SELECTION_1", "ENV_SMSPP_DOWNLOAD"}


def _expected_envelope(expected: dict[str, Any]) -> Envelope:
    devices = DeviceIdentities(*expected["device_identities"])
    if expected["envelope"] == "MenuSelection":
        return MenuSelection(expected["item_identifier"], expected["help_request"], devices)
    return SmsPpDownload(hexbytes(expected["sms_tpdu"]), Address(*expected["address"]), devices)


@pytest.mark.parametrize("vector", ENVELOPES, ids=lambda v: v["name"])
def test_envelope_vector(vector: dict[str, Any]) -> None:
    data = hexbytes(vector["hex"])
    expected = _expected_envelope(vector["expected"])
    assert data[0] == vector["expected"]["ber_tag"]
    assert decode_envelope(data) == expected
    assert expected.encode() == data
    assert type(expected).decode(data) == expected  # type: ignore[union-attr]


def test_sms_pp_download_carries_the_ota_sms_deliver() -> None:
    from pycrate_mobile.TS23040_SMS import SMS_DELIVER

    (vector,) = [v for v in ENVELOPES if v["name"] == "ENV_SMSPP_DOWNLOAD"]
    envelope = SmsPpDownload.decode(hexbytes(vector["hex"]))
    assert envelope.device_identities == DeviceIdentities(DeviceIdentity.NETWORK, DeviceIdentity.UICC)
    deliver = SMS_DELIVER()
    deliver.from_bytes(envelope.sms_tpdu)
    assert deliver["TP_PID"].get_val() == [1, 63]  # (U)SIM data download: 0x7F
    assert deliver["TP_UDHI"].get_val() == 1
    user_data = deliver["TP_UD"]["UD"].get_val()
    # the no-security command packet ends with our DISPLAY TEXT
    assert isinstance(decode_proactive(user_data[user_data.index(b"\xd0") :]), DisplayText)


def test_sms_pp_download_without_address() -> None:
    envelope = SmsPpDownload(b"\x04\x00")
    assert envelope.encode() == hexbytes("D108" + "82028381" + "8B020400")
    assert SmsPpDownload.decode(envelope.encode()) == envelope


def test_menu_selection_with_help_request() -> None:
    envelope = MenuSelection(2, help_request=True)
    assert envelope.encode() == hexbytes("D309" + "82020181" + "900102" + "9500")
    assert decode_envelope(envelope.encode()) == envelope


def test_event_download() -> None:
    # user activity (event 04) and idle screen available (05)
    envelope = EventDownload(b"\x04")
    assert envelope.encode() == hexbytes("D607" + "990104" + "82028281")
    idle = EventDownload(b"\x05", DeviceIdentities(DeviceIdentity.DISPLAY, DeviceIdentity.UICC))
    assert EventDownload.decode(idle.encode()) == idle


def test_unknown_envelope_keeps_its_tlvs() -> None:
    data = hexbytes("D7" + "07" + "82028281" + "A40101")  # TIMER EXPIRATION
    envelope = decode_envelope(data)
    assert envelope == UnknownEnvelope(
        BerTag.TIMER_EXPIRATION, (ComprehensionTlv(2, hexbytes("8281")), ComprehensionTlv(0x24, b"\x01"))
    )
    assert envelope.encode() == data


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("D0058103012180", 0x32),  # a proactive command
        ("D1048B020400", 0x36),  # no device identities
        ("D10482028381", 0x36),  # no SMS TPDU
        ("D10482028381" + "00", 0x32),  # length mismatch
        ("D30482020181", 0x36),  # no item identifier
        ("D3088202018190020102", 0x32),  # item identifier of 2 octets
        ("D60482028281", 0x36),  # no event list
        ("D108" + "82028381" + "8600" + "8B00", 0x32),  # address without TON/NPI
    ],
)
def test_malformed_envelopes(data: str, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(hexbytes(data))
    assert info.value.status == status


def test_typed_decode_refuses_another_envelope() -> None:
    with pytest.raises(DecodeError):
        MenuSelection.decode(SmsPpDownload(b"").encode())


def test_menu_selection_item_range() -> None:
    with pytest.raises(LocalProtocolError):
        MenuSelection(256)


envelopes = st.one_of(
    st.builds(SmsPpDownload, st.binary(max_size=160), st.none() | addresses, device_identities, extra_tlvs),
    st.builds(MenuSelection, octets, st.booleans(), device_identities, extra_tlvs),
    st.builds(EventDownload, st.binary(max_size=5), device_identities, extra_tlvs),
    st.builds(
        UnknownEnvelope,
        st.sampled_from([0xD2, 0xD4, 0xD5, 0xD7, 0xD9, 0xDC]),
        st.lists(st.builds(ComprehensionTlv, st.integers(1, 0x200), st.binary(max_size=8)), max_size=4).map(
            tuple
        ),
    ),
)


@given(envelopes)
def test_envelope_round_trip(envelope: Envelope) -> None:
    data = envelope.encode()
    assert decode_envelope(data) == envelope
    assert decode_envelope(data).encode() == data


@given(st.binary(max_size=300))
def test_fuzz_decode_envelope(data: bytes) -> None:
    try:
        envelope = decode_envelope(data)
    except DecodeError:
        return
    assert decode_envelope(envelope.encode()) == envelope


# --- SMS-PP download outcome -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "rp_ack", "cause", "pending", "available", "keeps_data"),
    [
        (0x9000, True, None, False, 0, False),
        (0x9128, True, None, True, 0, False),
        (0x6112, True, None, False, 0x12, True),
        (0x9F12, True, None, False, 0x12, True),
        (0x9300, False, TpFailureCause.SIM_APPLICATION_TOOLKIT_BUSY, False, 0, False),
        (0x9E12, False, TpFailureCause.SIM_DATA_DOWNLOAD_ERROR, False, 0x12, True),
        (0x6200, False, TpFailureCause.SIM_DATA_DOWNLOAD_ERROR, False, 0, True),
        (0x6310, False, TpFailureCause.SIM_DATA_DOWNLOAD_ERROR, False, 0, True),
        (0x6F00, False, TpFailureCause.SIM_DATA_DOWNLOAD_ERROR, False, 0, False),
        (0x6A82, False, TpFailureCause.SIM_DATA_DOWNLOAD_ERROR, False, 0, False),
    ],
)
def test_sms_pp_download_outcome(
    *, status: int, rp_ack: bool, cause: int | None, pending: bool, available: int, keeps_data: bool
) -> None:
    por = hexbytes("027100000E0AB000110000000000000001612F")
    response = SmsPpDownloadResponse.from_status(status, por)
    assert response.status == status
    assert (response.sw1, response.sw2) == (status >> 8, status & 0xFF)
    assert response.rp_ack is rp_ack
    assert response.failure_cause == cause
    assert response.proactive_command_pending is pending
    assert response.response_data_available == available
    assert response.user_data == (por if keeps_data else b"")


def test_failure_causes_are_those_of_ts_23_040() -> None:
    assert TpFailureCause(0xD4) is TpFailureCause.SIM_APPLICATION_TOOLKIT_BUSY
    assert TpFailureCause(0xD5) is TpFailureCause.SIM_DATA_DOWNLOAD_ERROR
    assert TpFailureCause(0xFF).name == "UNKNOWN_0xFF"


@pytest.mark.parametrize(
    "build", [lambda: SmsPpDownloadResponse(0x100, 0), lambda: SmsPpDownloadResponse.from_status(0x10000)]
)
def test_status_words_are_checked(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()

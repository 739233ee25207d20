"""The SIM card engine (simulators/sim_applet.py): SMS-PP download, OTA security, the DSTK applet.

Every answer is checked the way the gateway will check it: the SEND SHORT MESSAGE's SMS-SUBMIT is
decoded, its response packet verified with the TAR's keys (``parse_response_packet``) and its
additional response data decoded as a ``DstkAnswer``.
"""

from __future__ import annotations

import pytest
from stk_sim_kit import (
    AES,
    DISPLAY,
    FULL_PROFILE,
    GATEWAY,
    NO_YES_NO_PROFILE,
    OFFER_ID,
    SELECT,
    SPI_NO_POR,
    SPI_POR_ON_ERROR,
    SPI_POR_REPORT,
    SPI_POR_SUBMIT,
    TDES,
    YES_NO,
    YES_NO_30S,
    Security,
    command_packet,
    drain,
    envelope,
    fetch_submit,
    make_card,
    of_type,
    offer_message,
    parse_answer,
    parse_por,
    push_envelope,
)

from protocols.errors import ConfigError, DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.gsm.udh import Concat8, Concat16, SimToolkitSecurity, encode_udh
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInput,
    GetInputQualifier,
    ProactiveCommand,
    SelectItem,
    SendShortMessage,
    decode_proactive,
)
from protocols.stk.dstk import DSTK_TAR, StkOutcome
from protocols.stk.envelope import MenuSelection, TpFailureCause
from protocols.stk.ota import (
    COMMAND_UDH,
    CounterMode,
    Integrity,
    KeySet,
    Kic,
    Kid,
    PorMode,
    ResponseStatus,
    Spi,
    build_command_packet,
)
from protocols.stk.terminal import (
    GeneralResult,
    Result,
    TerminalProblem,
    TerminalProfile,
    TerminalProfileFeature,
    TerminalResponse,
)
from protocols.stk.tlv import ResponseLength, TextString
from simulators.sim_applet import (
    SW_DATA_DOWNLOAD_ERROR,
    SW_OK,
    SW_RESPONSE_DATA_WARNING,
    SW_TOOLKIT_BUSY,
    CommandPurpose,
    DialogAnswered,
    DialogReplaced,
    DialogTimedOut,
    EnvelopeIgnored,
    EnvelopeProcessed,
    OfferReceived,
    OfferRefused,
    ProactiveCommandPending,
    ProofOfReceiptIssued,
    SecuredPacketRejected,
    SecuredPacketVerified,
    ShortMessageReported,
    ShortMessageToSend,
    SimCard,
    SmsPpRefused,
    SmsPpSegmentStored,
    ToolkitBusy,
    dialog_outcome,
)

YES = TextString.yes_no(True)
NO = TextString.yes_no(False)


def push(card: SimCard, command: ProactiveCommand | bytes = YES_NO, cntr: int = 1, **kw: object) -> list:  # type: ignore[type-arg]
    spi = kw.pop("spi", SPI_POR_REPORT)
    security = kw.pop("security", AES)
    packet = command_packet(offer_message(command), cntr, spi, security)  # type: ignore[arg-type]
    card.receive_data(push_envelope(packet, **kw), 0.0)
    return drain(card)


def envelope_result(events: list) -> EnvelopeProcessed:  # type: ignore[type-arg]
    (processed,) = of_type(events, EnvelopeProcessed)
    return processed


def answer_dialog(card: SimCard, response: TerminalResponse, now: float = 1.0) -> tuple[int, list]:  # type: ignore[type-arg]
    sw = card.terminal_response(response.encode(), now)
    return sw, drain(card)


def run_answer(
    card: SimCard, spi: Spi = SPI_POR_REPORT, security: Security = AES
) -> tuple[SendShortMessage, object, object]:
    """FETCH the answer's SEND SHORT MESSAGE, check its SMS-SUBMIT, verify and decode the answer."""
    command, tpdu = fetch_submit(card)
    assert tpdu.tp_da.value == GATEWAY
    assert (tpdu.tp_pid, tpdu.tp_dcs, tpdu.tp_udhi) == (0x7F, 0xF6, True)
    assert tpdu.tp_ud[:3] == bytes.fromhex("027100")
    packet, answer = parse_answer(tpdu.tp_ud, spi, security)
    return command, packet, answer


# --- the happy paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("security", [AES, TDES], ids=["aes", "3des"])
def test_accept_travels_back_as_a_verified_answer(security: Security) -> None:
    card = make_card(security=security)
    events = push(card, YES_NO, cntr=7, security=security)
    assert [type(e) for e in events] == [
        SecuredPacketVerified,
        ProofOfReceiptIssued,
        OfferReceived,
        EnvelopeProcessed,
        ProactiveCommandPending,
    ]
    verified = events[0]
    assert isinstance(verified, SecuredPacketVerified)
    assert (verified.tar, verified.cntr) == (DSTK_TAR, 7)
    processed = envelope_result(events)
    assert processed.status_word >> 8 == 0x9F  # PoR in the response data: RP-ACK with TP-UD
    report = processed.download_response
    assert report.rp_ack
    assert report.user_data == processed.response_data
    por = parse_por(report.user_data, security=security)
    assert (por.tar, por.cntr, por.status, por.additional_response_data) == (
        DSTK_TAR,
        7,
        ResponseStatus.POR_OK,
        b"",
    )
    pending = events[-1]
    assert isinstance(pending, ProactiveCommandPending)
    assert pending.purpose is CommandPurpose.DIALOG
    assert pending.offer_id == OFFER_ID
    assert card.proactive_command_pending and card.busy
    assert decode_proactive(card.fetch()) == YES_NO
    assert not card.proactive_command_pending

    sw, events = answer_dialog(card, TerminalResponse.for_command(YES_NO, text_string=YES))
    assert sw >> 8 == 0x91
    (answered,) = of_type(events, DialogAnswered)
    assert answered.answer.outcome is StkOutcome.ACCEPTED
    (to_send,) = of_type(events, ShortMessageToSend)
    assert (to_send.purpose, to_send.destination, to_send.offer_id) == (
        CommandPurpose.ANSWER,
        GATEWAY,
        OFFER_ID,
    )
    assert (sw & 0xFF) == len(card.data_to_send())  # FETCH again gives the same command
    command, packet, answer = run_answer(card, security=security)
    assert to_send.user_data == SendShortMessage.decode(command.encode()).sms_tpdu[-len(to_send.user_data) :]
    assert (packet.tar, packet.cntr, packet.status) == (DSTK_TAR, 7, ResponseStatus.POR_OK)  # type: ignore[attr-defined]
    assert answer.offer_id == OFFER_ID  # type: ignore[attr-defined]
    assert answer.outcome is StkOutcome.ACCEPTED  # type: ignore[attr-defined]
    assert answer.general_result == 0  # type: ignore[attr-defined]

    sw, events = answer_dialog(card, TerminalResponse.for_command(command))
    assert sw == SW_OK
    assert events == [ShortMessageReported(CommandPurpose.ANSWER, GATEWAY, 0)]
    assert events[0].sent  # type: ignore[union-attr]
    assert not card.busy
    assert card.counters == {DSTK_TAR: 7}
    assert card.get_timer() is None


@pytest.mark.parametrize(
    ("command", "response", "outcome", "item", "result"),
    [
        (YES_NO, TerminalResponse.for_command(YES_NO, text_string=NO), StkOutcome.DECLINED, 0, 0x00),
        (DISPLAY, TerminalResponse.for_command(DISPLAY), StkOutcome.ACCEPTED, 0, 0x00),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x11), StkOutcome.DECLINED, 0, 0x11),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x10), StkOutcome.DECLINED, 0, 0x10),
        (YES_NO, TerminalResponse.for_command(YES_NO, 0x12), StkOutcome.NO_RESPONSE, 0, 0x12),
        (
            YES_NO,
            TerminalResponse.for_command(
                YES_NO, Result(GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND, b"\x01")
            ),
            StkOutcome.UNABLE,
            0,
            0x20,
        ),
        (SELECT, TerminalResponse.for_command(SELECT, item_identifier=3), StkOutcome.ITEM_CHOSEN, 3, 0x00),
        (SELECT, TerminalResponse.for_command(SELECT, 0x11), StkOutcome.DECLINED, 0, 0x11),
    ],
    ids=["no", "ok", "back", "end", "timeout", "busy", "item", "item-back"],
)
def test_dialog_answers_end_in_the_right_answer(
    command: ProactiveCommand, response: TerminalResponse, outcome: StkOutcome, item: int, result: int
) -> None:
    card = make_card()
    push(card, command)
    card.fetch()
    sw, events = answer_dialog(card, response)
    assert sw >> 8 == 0x91
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.item_id, answer.general_result) == (outcome, item, result)  # type: ignore[attr-defined]
    assert of_type(events, DialogAnswered)[0].answer == answer
    assert of_type(events, DialogAnswered)[0].terminal_response == response


@pytest.mark.parametrize(
    ("command", "response", "expected"),
    [
        (YES_NO, TerminalResponse.for_command(YES_NO), (StkOutcome.UNABLE, 0)),  # performed without Yes/No
        (SELECT, TerminalResponse.for_command(SELECT), (StkOutcome.UNABLE, 0)),  # performed without an item
        (YES_NO, TerminalResponse.for_command(YES_NO, 0x04, text_string=YES), (StkOutcome.ACCEPTED, 0)),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x13), (StkOutcome.DECLINED, 0)),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x22), (StkOutcome.DECLINED, 0)),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x30), (StkOutcome.UNABLE, 0)),
        (DISPLAY, TerminalResponse.for_command(DISPLAY, 0x32), (StkOutcome.UNABLE, 0)),
    ],
)
def test_dialog_outcome_table(
    command: ProactiveCommand, response: TerminalResponse, expected: tuple[StkOutcome, int]
) -> None:
    assert dialog_outcome(command, response) == expected


def test_get_input_is_accepted_with_the_text() -> None:
    prompt = GetInput(TextString.of("Enter PIN"), ResponseLength(4, 4), GetInputQualifier.NONE)
    card = make_card()
    push(card, prompt)
    card.fetch()
    answer_dialog(card, TerminalResponse.for_command(prompt, text_string=TextString.of("1234")))
    _, _, answer = run_answer(card)
    assert answer.outcome is StkOutcome.ACCEPTED  # type: ignore[attr-defined]


# --- timeouts --------------------------------------------------------------------------------------------


def test_card_guard_ends_a_dialog_the_terminal_never_answers() -> None:
    card = make_card(dialog_timeout=30.0)
    push(card, YES_NO)
    assert card.get_timer() == 30.0
    card.fetch()
    card.handle_timer(29.9)
    assert drain(card) == []
    card.handle_timer(30.0)
    events = drain(card)
    assert [type(e) for e in events] == [
        DialogTimedOut,
        DialogAnswered,
        ShortMessageToSend,
        ProactiveCommandPending,
    ]
    answered = events[1]
    assert isinstance(answered, DialogAnswered)
    assert answered.terminal_response is None
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.NO_RESPONSE, 0x12)  # type: ignore[attr-defined]
    # the terminal's late answer to the dialog no longer matches what the card waits for
    with pytest.raises(RemoteProtocolError, match="expected"):
        card.terminal_response(TerminalResponse.for_command(YES_NO, text_string=YES).encode(), 31.0)
    assert card.get_timer() == 90.0  # the SEND SHORT MESSAGE has its own guard: send_timeout


def test_guard_follows_a_longer_duration_in_the_command() -> None:
    card = make_card(dialog_timeout=10.0)
    push(card, YES_NO_30S)
    assert card.get_timer() == 30.0


def test_terminal_that_never_reports_the_send_short_message() -> None:
    card = make_card(send_timeout=5.0)
    push(card, DISPLAY)
    card.fetch()
    answer_dialog(card, TerminalResponse.for_command(DISPLAY), now=1.0)
    fetch_submit(card)
    card.handle_timer(6.0)
    assert drain(card) == [ShortMessageReported(CommandPurpose.ANSWER, GATEWAY, None)]
    assert not card.busy


def test_failed_send_short_message_is_reported() -> None:
    card = make_card()
    push(card, DISPLAY)
    card.fetch()
    answer_dialog(card, TerminalResponse.for_command(DISPLAY))
    command, _ = fetch_submit(card)
    sw, events = answer_dialog(card, TerminalResponse.for_command(command, GeneralResult.SMS_RP_ERROR))
    assert sw == SW_OK
    (outcome,) = of_type(events, ShortMessageReported)
    assert not outcome.sent


# --- terminal profiles -----------------------------------------------------------------------------------


def test_profile_without_yes_no_gets_display_text_instead() -> None:
    card = make_card(NO_YES_NO_PROFILE)
    events = push(card, YES_NO)
    (fallback,) = of_type(events, DialogReplaced)
    assert fallback.original == YES_NO
    assert isinstance(fallback.replacement, DisplayText)
    shown = decode_proactive(card.fetch())
    assert isinstance(shown, DisplayText)
    assert shown.text_string == YES_NO.text_string
    assert NO_YES_NO_PROFILE.supports_command(shown)
    answer_dialog(card, TerminalResponse.for_command(shown))
    _, _, answer = run_answer(card)
    assert answer.outcome is StkOutcome.ACCEPTED  # type: ignore[attr-defined]


def test_profile_without_yes_no_and_back_declines() -> None:
    card = make_card(NO_YES_NO_PROFILE)
    push(card, YES_NO)
    shown = decode_proactive(card.fetch())
    answer_dialog(card, TerminalResponse.for_command(shown, GeneralResult.BACKWARD_MOVE_REQUESTED_BY_USER))
    _, _, answer = run_answer(card)
    assert answer.outcome is StkOutcome.DECLINED  # type: ignore[attr-defined]


def test_profile_without_yes_no_or_display_text_ends_unable() -> None:
    profile = NO_YES_NO_PROFILE.without_features(TerminalProfileFeature.DISPLAY_TEXT)
    card = make_card(profile)
    events = push(card, YES_NO)
    assert not of_type(events, DialogReplaced)
    assert decode_proactive(card.fetch()) == YES_NO
    answer_dialog(card, TerminalResponse.for_command(YES_NO, 0x30))
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x30)  # type: ignore[attr-defined]


def test_unknown_profile_falls_back_once_when_the_terminal_answers_30() -> None:
    card = make_card(None)
    assert card.terminal_profile is None
    push(card, YES_NO)
    assert decode_proactive(card.fetch()) == YES_NO
    sw, events = answer_dialog(card, TerminalResponse.for_command(YES_NO, 0x30))
    assert sw >> 8 == 0x91
    (fallback,) = of_type(events, DialogReplaced)
    assert "'30'" in fallback.reason
    (pending,) = of_type(events, ProactiveCommandPending)
    assert pending.purpose is CommandPurpose.DIALOG
    shown = decode_proactive(card.fetch())
    assert isinstance(shown, DisplayText)
    answer_dialog(card, TerminalResponse.for_command(shown, 0x30))  # cannot show that either
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x30)  # type: ignore[attr-defined]


def test_terminal_profile_apdu_is_taken_as_bytes() -> None:
    card = make_card(None)
    card.set_terminal_profile(NO_YES_NO_PROFILE.encode())
    assert card.terminal_profile == NO_YES_NO_PROFILE
    events = push(card, YES_NO)
    assert of_type(events, DialogReplaced)


def test_profile_without_select_item_ends_unable() -> None:
    card = make_card(FULL_PROFILE.without_features(TerminalProfileFeature.SELECT_ITEM))
    push(card, SELECT)
    shown = decode_proactive(card.fetch())
    answer_dialog(card, TerminalResponse.for_command(shown, 0x30))
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x30)  # type: ignore[attr-defined]


# --- security failures -----------------------------------------------------------------------------------


def rejected(events: list) -> SecuredPacketRejected:  # type: ignore[type-arg]
    (event,) = of_type(events, SecuredPacketRejected)
    return event


def test_bad_mac_is_rejected_with_status_01_and_a_por() -> None:
    card = make_card()
    packet = bytearray(command_packet(offer_message(), 5))
    packet[-1] ^= 0x01  # the ciphered tail: the CC no longer matches
    card.receive_data(push_envelope(bytes(packet)), 0.0)
    events = drain(card)
    event = rejected(events)
    assert event.status is ResponseStatus.RC_CC_DS_FAILED
    assert event.tar == DSTK_TAR
    assert "check failed" in event.reason
    processed = envelope_result(events)
    assert processed.status_word >> 8 == 0x9E  # the terminal profile has '9EXX'
    report = processed.download_response
    assert not report.rp_ack
    assert report.failure_cause is TpFailureCause.SIM_DATA_DOWNLOAD_ERROR
    por = parse_por(report.user_data)
    assert por.status is ResponseStatus.RC_CC_DS_FAILED
    # in clear: the card cannot secure an answer with a key the sender evidently does not share
    assert not por.secured
    assert por.cntr == 5  # so the sender can tell which push failed
    assert card.counters == {DSTK_TAR: 0}
    assert not card.busy


def test_error_por_without_9exx_uses_62f3() -> None:
    card = make_card(FULL_PROFILE.without_features(TerminalProfileFeature.SIM_DATA_DOWNLOAD_ERROR_9EXX))
    packet = bytearray(command_packet(offer_message(), 5))
    packet[-1] ^= 0x01
    card.receive_data(push_envelope(bytes(packet)), 0.0)
    processed = envelope_result(drain(card))
    assert processed.status_word == SW_RESPONSE_DATA_WARNING
    assert not processed.download_response.rp_ack
    assert parse_por(processed.download_response.user_data).status is ResponseStatus.RC_CC_DS_FAILED


def test_replayed_counter_is_rejected_with_status_02() -> None:
    card = make_card()
    packet = command_packet(offer_message(DISPLAY), 9)
    card.receive_data(push_envelope(packet), 0.0)
    drain(card)
    card.fetch()
    answer_dialog(card, TerminalResponse.for_command(DISPLAY))
    command, _ = fetch_submit(card)
    answer_dialog(card, TerminalResponse.for_command(command))
    assert card.counters == {DSTK_TAR: 9}
    card.receive_data(push_envelope(packet), 5.0)  # the same packet again
    events = drain(card)
    event = rejected(events)
    assert (event.status, event.cntr) == (ResponseStatus.CNTR_LOW, 9)
    assert parse_por(envelope_result(events).response_data).status is ResponseStatus.CNTR_LOW
    assert card.counters == {DSTK_TAR: 9}
    assert not of_type(events, OfferReceived)
    # a lower counter is refused too, a higher one passes
    push(card, DISPLAY, cntr=8)
    assert not card.busy
    assert of_type(push(card, DISPLAY, cntr=10), OfferReceived)


def test_unknown_tar_is_rejected_with_status_09_unsecured() -> None:
    card = make_card()
    packet = command_packet(offer_message(), 1, tar=bytes.fromhex("BFFF02"))
    card.receive_data(push_envelope(packet), 0.0)
    events = drain(card)
    event = rejected(events)
    assert (event.status, event.tar) == (ResponseStatus.TAR_UNKNOWN, bytes.fromhex("BFFF02"))
    por = parse_por(envelope_result(events).response_data)
    assert (por.status, por.secured, por.tar) == (ResponseStatus.TAR_UNKNOWN, False, bytes.fromhex("BFFF02"))


def test_too_low_a_security_level_is_rejected_with_status_0a() -> None:
    card = make_card()  # MSL 0x16
    weak = Spi(Integrity.CC, False, CounterMode.HIGHER, PorMode.ON_ERROR, Integrity.CC, False, False)
    packet = command_packet(offer_message(), 4, weak)
    card.receive_data(push_envelope(packet), 0.0)
    events = drain(card)
    event = rejected(events)
    assert event.status is ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    assert event.cntr == 4  # read in clear: the packet is not ciphered
    por = parse_por(envelope_result(events).response_data, weak)
    assert (por.status, por.cntr, por.secured) == (ResponseStatus.INSUFFICIENT_SECURITY_LEVEL, 4, True)
    assert card.counters == {DSTK_TAR: 0}


def test_rejection_without_por_is_an_rp_error_without_data() -> None:
    card = make_card()
    packet = bytearray(command_packet(offer_message(), 5, SPI_NO_POR))
    packet[-1] ^= 0x01
    card.receive_data(push_envelope(bytes(packet)), 0.0)
    events = drain(card)
    assert rejected(events).status is ResponseStatus.RC_CC_DS_FAILED
    assert not of_type(events, ProofOfReceiptIssued)
    assert envelope_result(events) == EnvelopeProcessed(SW_DATA_DOWNLOAD_ERROR)


def test_rejection_with_por_by_sms_submit_queues_the_por() -> None:
    card = make_card()
    packet = bytearray(command_packet(offer_message(), 5, SPI_POR_SUBMIT))
    packet[-1] ^= 0x01
    card.receive_data(push_envelope(bytes(packet), oa="99999"), 0.0)
    events = drain(card)
    assert envelope_result(events).status_word == SW_DATA_DOWNLOAD_ERROR
    (pending,) = of_type(events, ProactiveCommandPending)
    assert pending.purpose is CommandPurpose.PROOF_OF_RECEIPT
    _, tpdu = fetch_submit(card)
    assert tpdu.tp_da.value == "99999"  # back to the push's originator
    assert parse_por(tpdu.tp_ud, SPI_POR_SUBMIT).status is ResponseStatus.RC_CC_DS_FAILED


def test_unreadable_header_is_an_unidentified_security_error() -> None:
    card = make_card()
    card.receive_data(push_envelope(bytes.fromhex("0003150000")), 0.0)
    events = drain(card)
    assert rejected(events).status is ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    assert envelope_result(events).status_word == SW_DATA_DOWNLOAD_ERROR


def test_unusable_key_version_is_status_06_unsecured() -> None:
    card = make_card()
    other = Security(AES.keys, Kic(AES.kic.algorithm, 5), Kid(AES.kid.algorithm, 5))
    packet = command_packet(offer_message(), 1, SPI_POR_REPORT, other)
    card.receive_data(push_envelope(packet), 0.0)
    events = drain(card)
    assert rejected(events).status is ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    por = parse_por(envelope_result(events).response_data)
    assert (por.status, por.secured) == (ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, False)


# --- proof of receipt ------------------------------------------------------------------------------------


def test_no_por_and_por_on_error_answer_91xx() -> None:
    for spi in (SPI_NO_POR, SPI_POR_ON_ERROR):
        card = make_card()
        events = push(card, DISPLAY, spi=spi)
        assert not of_type(events, ProofOfReceiptIssued)
        processed = envelope_result(events)
        assert processed.status_word >> 8 == 0x91
        assert processed.response_data == b""
        assert processed.status_word & 0xFF == len(DISPLAY.encode())


def test_por_by_sms_submit_goes_first_then_the_dialog() -> None:
    card = make_card()
    events = push(card, DISPLAY, spi=SPI_POR_SUBMIT, oa="99999")
    assert envelope_result(events).status_word >> 8 == 0x91
    (issued,) = of_type(events, ProofOfReceiptIssued)
    assert issued.via_sms_submit
    (pending,) = of_type(events, ProactiveCommandPending)
    assert pending.purpose is CommandPurpose.PROOF_OF_RECEIPT
    command, tpdu = fetch_submit(card)
    assert tpdu.tp_da.value == "99999"
    por = parse_por(tpdu.tp_ud, SPI_POR_SUBMIT)
    assert (por.status, por.additional_response_data) == (ResponseStatus.POR_OK, b"")
    sw, events = answer_dialog(card, TerminalResponse.for_command(command))
    assert sw >> 8 == 0x91
    assert of_type(events, ShortMessageReported)[0].purpose is CommandPurpose.PROOF_OF_RECEIPT
    assert of_type(events, ProactiveCommandPending)[0].purpose is CommandPurpose.DIALOG
    assert decode_proactive(card.fetch()) == DISPLAY
    answer_dialog(card, TerminalResponse.for_command(DISPLAY))
    _, _, answer = run_answer(card, SPI_POR_SUBMIT)
    assert answer.outcome is StkOutcome.ACCEPTED  # type: ignore[attr-defined]


def test_por_the_keys_cannot_secure_goes_in_clear() -> None:
    card = SimCard("1", {DSTK_TAR: KeySet()})  # MSL 0, no keys
    spi = Spi(por=PorMode.ALWAYS, por_integrity=Integrity.CC)  # CC asked, KID names no algorithm
    packet = build_command_packet(offer_message(DISPLAY), spi, Kic(), Kid(), DSTK_TAR, 0, KeySet())
    card.receive_data(push_envelope(packet), 0.0)
    events = drain(card)
    data = envelope_result(events).response_data
    assert data[:3] == bytes.fromhex("027100")
    assert data[5] == 10  # RHL without a CC
    assert of_type(events, OfferReceived)


def test_no_counter_mode_leaves_the_counter_alone() -> None:
    card = SimCard("1", {DSTK_TAR: KeySet()})
    packet = build_command_packet(offer_message(DISPLAY), Spi(), Kic(), Kid(), DSTK_TAR, 77, KeySet())
    card.receive_data(push_envelope(packet), 0.0)
    assert of_type(drain(card), SecuredPacketVerified)
    assert card.counters == {DSTK_TAR: 0}


# --- what the card refuses before security -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tpdu", "reason"),
    [
        ({"pid": 0x00}, "TP-PID"),
        ({"dcs": 0x04}, "TP-DCS"),
        ({"dcs": 0xF2}, "TP-DCS"),  # class 2 but 7-bit
        ({"udhi": False}, "no user data header"),
    ],
)
def test_not_a_sim_data_download(tpdu: dict[str, object], reason: str) -> None:
    card = make_card()
    user_data = COMMAND_UDH + command_packet(offer_message(), 1)
    if tpdu.get("udhi") is False:
        user_data = user_data[3:]
    if tpdu.get("dcs") == 0xF2:
        user_data, tpdu = COMMAND_UDH + bytes(4), {**tpdu, "udl": 8}  # 4 septets of header, 4 of text
    card.receive_data(envelope(user_data, **tpdu), 0.0)
    events = drain(card)
    (refused,) = of_type(events, SmsPpRefused)
    assert reason in refused.reason
    assert envelope_result(events).status_word == SW_DATA_DOWNLOAD_ERROR
    assert not envelope_result(events).download_response.rp_ack


def test_udh_without_command_packet_identifier() -> None:
    card = make_card()
    card.receive_data(envelope(bytes.fromhex("0605040b8423f0") + b"x"), 0.0)
    (refused,) = of_type(drain(card), SmsPpRefused)
    assert "0x70" in refused.reason


def test_tpdu_that_is_not_an_sms_deliver() -> None:
    from protocols.stk.envelope import SmsPpDownload

    card = make_card()
    card.receive_data(SmsPpDownload(b"\x01\x00").encode(), 0.0)
    (refused,) = of_type(drain(card), SmsPpRefused)
    assert "SMS-DELIVER" in refused.reason


def test_other_envelopes_are_ignored() -> None:
    card = make_card()
    card.receive_data(MenuSelection(1).encode(), 0.0)
    events = drain(card)
    assert of_type(events, EnvelopeIgnored)
    assert envelope_result(events).status_word == SW_OK


def test_undecodable_envelope_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        make_card().receive_data(b"\xd1\x05\x82", 0.0)


def test_busy_card_answers_9300_and_consumes_nothing() -> None:
    card = make_card()
    push(card, DISPLAY, cntr=1)
    second = command_packet(offer_message(YES_NO, offer_id="off-2"), 2)
    card.receive_data(push_envelope(second), 1.0)
    events = drain(card)
    assert of_type(events, ToolkitBusy)
    processed = envelope_result(events)
    assert processed.status_word == SW_TOOLKIT_BUSY
    assert processed.download_response.failure_cause is TpFailureCause.SIM_APPLICATION_TOOLKIT_BUSY
    assert card.counters == {DSTK_TAR: 1}
    card.fetch()
    answer_dialog(card, TerminalResponse.for_command(DISPLAY))
    command, _ = fetch_submit(card)
    answer_dialog(card, TerminalResponse.for_command(command))
    card.receive_data(push_envelope(second), 2.0)  # the network's retry now passes
    assert of_type(drain(card), OfferReceived)[0].offer_id == "off-2"


# --- offers the applet cannot run ----------------------------------------------------------------------------


def test_secured_data_that_is_no_offer() -> None:
    card = make_card()
    card.receive_data(push_envelope(command_packet(b"\x02junk", 1)), 0.0)
    events = drain(card)
    (refused,) = of_type(events, OfferRefused)
    assert refused.offer_id is None
    assert not card.busy
    assert envelope_result(events).download_response.rp_ack  # the packet itself was fine: PoR OK
    assert parse_por(envelope_result(events).response_data).status is ResponseStatus.POR_OK


def test_reply_address_that_is_no_number() -> None:
    card = make_card()
    card.receive_data(push_envelope(command_packet(offer_message(reply_to="shop!"), 1)), 0.0)
    (refused,) = of_type(drain(card), OfferRefused)
    assert refused.offer_id == OFFER_ID
    assert not card.busy


def test_undecodable_command_is_answered_unable_32() -> None:
    card = make_card()
    card.receive_data(push_envelope(command_packet(offer_message(b"\xd0\x03\x81\x01\x01"), 1)), 0.0)
    events = drain(card)
    assert of_type(events, OfferRefused)[0].offer_id == OFFER_ID
    assert of_type(events, ProactiveCommandPending)[0].purpose is CommandPurpose.ANSWER
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x32)  # type: ignore[attr-defined]


# --- concatenated SMS-PP ---------------------------------------------------------------------------------------


def segments(user_data: bytes, *, identifier_everywhere: bool, sixteen_bit: bool = False) -> list[bytes]:
    """Split ``packet`` over SMS user data with IEI 0x70 first in segment 1 (and in all if asked)."""
    size = 120
    chunks = [user_data[i : i + size] for i in range(0, len(user_data), size)]
    out = []
    for seq, chunk in enumerate(chunks, start=1):
        concat = Concat16(0x1234, len(chunks), seq) if sixteen_bit else Concat8(0x42, len(chunks), seq)
        ies = [SimToolkitSecurity(), concat] if seq == 1 or identifier_everywhere else [concat]
        out.append(encode_udh(ies) + chunk)
    return out


BIG_SELECT = SelectItem(
    tuple(SELECT.items) + tuple(SELECT.items[:3]) * 2,
    SELECT.alpha_identifier,
)


@pytest.mark.parametrize(("everywhere", "sixteen"), [(False, False), (True, False), (False, True)])
def test_concatenated_sms_pp_is_reassembled(everywhere: bool, sixteen: bool) -> None:
    card = make_card()
    packet = command_packet(offer_message(BIG_SELECT), 3, single_sms=False)
    parts = segments(packet, identifier_everywhere=everywhere, sixteen_bit=sixteen)
    assert len(parts) == 2
    card.receive_data(envelope(parts[1]), 0.0)  # out of order
    events = drain(card)
    assert of_type(events, SmsPpSegmentStored)[0].sequence == 2
    assert envelope_result(events).status_word == SW_OK
    assert card.get_timer() == 60.0
    card.receive_data(envelope(parts[0]), 1.0)
    events = drain(card)
    assert of_type(events, OfferReceived)[0].command == BIG_SELECT
    assert card.get_timer() == 121.0  # only the dialog's guard now


def test_concatenated_sms_pp_needs_the_identifier_somewhere() -> None:
    card = make_card()
    packet = command_packet(offer_message(BIG_SELECT), 3, single_sms=False)
    parts = [encode_udh([Concat8(1, 2, n)]) + chunk for n, chunk in ((1, packet[:120]), (2, packet[120:]))]
    for part in parts:
        card.receive_data(envelope(part), 0.0)
    (refused,) = of_type(drain(card), SmsPpRefused)
    assert "0x70" in refused.reason


def test_stale_segments_expire_and_pending_messages_are_bounded() -> None:
    card = make_card(reassembly_timeout=10.0, max_pending_messages=2)
    for reference in (1, 2, 3):
        card.receive_data(
            envelope(encode_udh([SimToolkitSecurity(), Concat8(reference, 2, 1)]) + b"x"), reference
        )
    assert card.get_timer() == 12.0  # the first message was dropped to keep two
    card.handle_timer(12.0)
    assert card.get_timer() == 13.0
    card.handle_timer(13.0)
    assert card.get_timer() is None


# --- misuse and broken peers ---------------------------------------------------------------------------------------


def test_fetch_and_terminal_response_out_of_turn() -> None:
    card = make_card()
    assert card.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        card.fetch()
    with pytest.raises(RemoteProtocolError, match="without a fetched"):
        card.terminal_response(TerminalResponse.for_command(YES_NO).encode(), 0.0)
    push(card, YES_NO)
    with pytest.raises(RemoteProtocolError):  # announced, not fetched yet
        card.terminal_response(TerminalResponse.for_command(YES_NO).encode(), 0.0)
    card.fetch()
    with pytest.raises(DecodeError):
        card.terminal_response(b"\x81\x03\x01", 0.0)
    with pytest.raises(RemoteProtocolError, match="expected"):
        card.terminal_response(TerminalResponse.for_command(DISPLAY).encode(), 0.0)
    assert card.busy  # nothing changed
    sw, _ = answer_dialog(card, TerminalResponse.for_command(YES_NO, text_string=YES))
    assert sw >> 8 == 0x91


def test_busy_screen_result_is_unable() -> None:
    card = make_card()
    push(card, DISPLAY)
    card.fetch()
    busy = Result(
        GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND, bytes((TerminalProblem.SCREEN_IS_BUSY,))
    )
    answer_dialog(card, TerminalResponse.for_command(DISPLAY, busy))
    _, _, answer = run_answer(card)
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x20)  # type: ignore[attr-defined]


def test_command_numbers_of_the_cards_own_commands_cycle() -> None:
    card = make_card()
    numbers = []
    for cntr in range(1, 4):
        push(card, DISPLAY, cntr=cntr)
        card.fetch()
        answer_dialog(card, TerminalResponse.for_command(DISPLAY))
        command, _ = fetch_submit(card)
        numbers.append(command.command_number)
        answer_dialog(card, TerminalResponse.for_command(command))
    assert numbers == [1, 2, 3]


@pytest.mark.parametrize(
    ("keys", "kwargs"),
    [
        ({b"\xbf\xff": KeySet()}, {}),
        ({DSTK_TAR: KeySet()}, {"dialog_timeout": 0.0}),
        ({DSTK_TAR: KeySet()}, {"max_pending_messages": 0}),
        ({DSTK_TAR: KeySet()}, {"send_timeout": -1.0}),
    ],
)
def test_bad_card_configuration(keys: dict[bytes, KeySet], kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SimCard("1", keys, **kwargs)  # type: ignore[arg-type]


def test_profiles_used_here_say_what_they_should() -> None:
    assert FULL_PROFILE.supports_command(YES_NO)
    assert not NO_YES_NO_PROFILE.supports_command(YES_NO)
    assert isinstance(YES_NO, GetInkey)
    assert TerminalProfile().features == frozenset()

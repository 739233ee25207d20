"""The handset simulator (simulators/handset.py) with a real SMSC simulator and a real ESME over loopback.

The push is built the way the gateway builds it (``protocols``: a DstkOffer in a TS 102 225 command
packet after UDH 02 70 00, submit_sm with esm_class 0x40, PID 0x7F, DCS 0xF6), sent by
``gateway.smpp.client.SmppClient``; the answer is the MO deliver_sm the same client receives, whose
response packet is verified with the SIM's keys.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from stk_sim_kit import (
    DISPLAY,
    FULL_PROFILE,
    GATEWAY,
    NO_YES_NO_PROFILE,
    OFFER_ID,
    SELECT,
    SPI_POR_REPORT,
    SPI_POR_SUBMIT,
    YES_NO,
    command_packet,
    make_card,
    offer_message,
    parse_answer,
    parse_por,
)

from gateway.smpp.client import SmppClient
from protocols.errors import ConfigError
from protocols.gsm.split import build_submits
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.tlv import tlvs
from protocols.stk.commands import GetInkey, GetInput, ProactiveCommand
from protocols.stk.dstk import DstkAnswer, StkOutcome
from protocols.stk.ota import COMMAND_UDH, ResponseStatus, Spi
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature
from protocols.stk.tlv import ResponseLength, TextString
from simulators.handset import (
    DEFAULT_PROFILE,
    Handset,
    LogKind,
    ReactionDelay,
    UserAction,
    UserPolicy,
)
from simulators.sim_applet import SimCard
from simulators.smsc import MtMessage, SmscSimulator

MSISDN = "254700000001"
WAIT = 10.0


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def collect_mo(esme: SmppClient) -> list[DeliverSm | DataSm]:
    mos: list[DeliverSm | DataSm] = []
    esme.add_mo_handler(mos.append)
    return mos


def push_pdu(packet: bytes, *, msisdn: str = MSISDN) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=0,
        source_addr_npi=1,
        source_addr=GATEWAY,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=msisdn,
        esm_class=0x40,
        protocol_id=0x7F,
        data_coding=0xF6,
        registered_delivery=1,
        short_message=COMMAND_UDH + packet,
    )


async def push(
    esme: SmppClient,
    command: ProactiveCommand | bytes = YES_NO,
    cntr: int = 1,
    spi: Spi = SPI_POR_REPORT,
    **offer: str,
) -> str:
    packet = command_packet(offer_message(command, **offer), cntr, spi)
    result = await asyncio.wait_for(esme.submit(push_pdu(packet)), WAIT)
    return result.message_id


def answer_of(pdu: DeliverSm | DataSm, spi: Spi = SPI_POR_REPORT) -> DstkAnswer:
    assert isinstance(pdu, DeliverSm)
    assert (pdu.esm_class & 0x40, pdu.protocol_id, pdu.data_coding) == (0x40, 0x7F, 0xF6)
    assert (pdu.source_addr, pdu.destination_addr) == (MSISDN, GATEWAY)
    assert pdu.short_message[:3] == bytes.fromhex("027100")
    packet, answer = parse_answer(pdu.short_message, spi)
    assert packet.status is ResponseStatus.POR_OK
    return answer


def handset(
    smsc: SmscSimulator,
    user: UserPolicy | None = None,
    profile: TerminalProfile = DEFAULT_PROFILE,
    card: SimCard | None = None,
    **kwargs: float,
) -> Handset:
    return Handset(MSISDN, card or make_card(None), profile, user or UserPolicy(), smsc, 11, **kwargs)  # type: ignore[arg-type]


# --- text -------------------------------------------------------------------------------------------------


async def test_three_part_text_arrives_once_reassembled(smsc: SmscSimulator, esme: SmppClient) -> None:
    phone = handset(smsc)
    text = "Your data bundle is used up. " * 12  # 348 GSM characters: three parts
    pdus = build_submits(text, GATEWAY, MSISDN, method="udh", reference=7, registered_delivery=1)
    assert len(pdus) == 3
    ids = [(await esme.submit(pdu)).message_id for pdu in pdus]
    assert len(set(ids)) == 3
    receipts = [await esme.wait_receipt(message_id, WAIT) for message_id in ids]
    assert [r.stat for r in receipts] == ["DELIVRD"] * 3
    assert phone.inbox == [text]
    assert [e.detail for e in phone.entries(LogKind.TEXT_RECEIVED)] == [text]
    await phone.close()


async def test_binary_mt_is_logged_not_shown(smsc: SmscSimulator) -> None:
    phone = handset(smsc)
    for dcs, pid in ((0x04, 0), (0x04, 0x7F)):  # 8-bit data; PID 7F without class 2 is no SIM download
        mt = MtMessage("1", GATEWAY, MSISDN, 0, pid, dcs, b"\x01\x02", (), "gateway")
        assert phone.on_mt(mt) is None
    assert phone.inbox == []
    assert len(phone.entries(LogKind.MT_IGNORED)) == 2
    assert phone.sim is not None and not phone.sim.busy
    await phone.close()


async def test_text_without_the_smscs_decoding(smsc: SmscSimulator) -> None:
    """An MtMessage without ``text`` (another SMSC model) is decoded by the handset, UDH stripped."""
    phone = handset(smsc)
    with_udh = bytes.fromhex("050003010101") + b"Hello"
    phone.on_mt(MtMessage("1", GATEWAY, MSISDN, 0x40, 0, 0, with_udh, (), "gateway"))
    payload = tlvs(message_payload=b"Long one")
    phone.on_mt(MtMessage("2", GATEWAY, MSISDN, 0, 0, 0, b"", payload, "gateway"))
    assert phone.inbox == ["Hello", "Long one"]
    await phone.close()


# --- the DSTK dialog end to end ------------------------------------------------------------------------------


async def test_push_accepted_after_50_ms_comes_back_as_mo(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc, UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.05)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    message_id = await push(esme, YES_NO, cntr=1)
    assert (await esme.wait_receipt(message_id, WAIT)).stat == "DELIVRD"
    await wait_until(lambda: bool(mos), "the MO answer")
    assert loop.time() - started >= 0.05
    answer = answer_of(mos[0])
    assert answer == DstkAnswer(OFFER_ID, StkOutcome.ACCEPTED, 0, 0)
    # the handset logs MO_SENT once its submit completed, which may be after the ESME already has the MO
    await wait_until(lambda: any(e.kind is LogKind.MO_SENT for e in phone.log), "the handset's MO log entry")
    kinds = [entry.kind for entry in phone.log]
    assert (
        kinds.index(LogKind.DIALOG_SHOWN) < kinds.index(LogKind.USER_ANSWERED) < kinds.index(LogKind.MO_SENT)
    )
    (shown,) = phone.entries(LogKind.DIALOG_SHOWN)
    assert "Buy 1GB for 5.00?" in shown.detail
    (answered,) = phone.entries(LogKind.USER_ANSWERED)
    answered_at = answered.at
    assert answered_at - shown.at >= 0.049
    assert phone.answers == [answer]
    (download,) = phone.entries(LogKind.SIM_DOWNLOAD)
    assert "PoR" in download.detail
    assert parse_por(phone.delivery_reports[0].user_data).status is ResponseStatus.POR_OK
    await wait_until(lambda: phone.sim is not None and not phone.sim.busy, "the end of the session")
    assert len(mos) == 1
    await phone.close()


@pytest.mark.parametrize(
    ("command", "user", "outcome", "item"),
    [
        (YES_NO, UserPolicy(UserAction.DECLINE), StkOutcome.DECLINED, 0),
        (DISPLAY, UserPolicy(UserAction.ACCEPT), StkOutcome.ACCEPTED, 0),
        (DISPLAY, UserPolicy(UserAction.DECLINE), StkOutcome.DECLINED, 0),
        (SELECT, UserPolicy(UserAction.ACCEPT), StkOutcome.ITEM_CHOSEN, 1),
        (SELECT, UserPolicy(UserAction.ACCEPT, item="last"), StkOutcome.ITEM_CHOSEN, 4),
        (SELECT, UserPolicy(UserAction.ACCEPT, item=2), StkOutcome.ITEM_CHOSEN, 3),
        (SELECT, UserPolicy(UserAction.ACCEPT, item=9), StkOutcome.DECLINED, 0),
        (SELECT, UserPolicy(UserAction.DECLINE), StkOutcome.DECLINED, 0),
        (
            GetInput(TextString.of("PIN?"), ResponseLength(4, 4)),
            UserPolicy(input_text="1234"),
            StkOutcome.ACCEPTED,
            0,
        ),
        (GetInkey(TextString.of("Press 1")), UserPolicy(), StkOutcome.ACCEPTED, 0),
        (YES_NO, UserPolicy(UserAction.IGNORE), StkOutcome.NO_RESPONSE, 0),
        (YES_NO, UserPolicy(UserAction.BUSY), StkOutcome.UNABLE, 0),
    ],
    ids=[
        "no",
        "ok",
        "back",
        "first-item",
        "last-item",
        "index-2",
        "index-out-of-range",
        "item-back",
        "get-input",
        "get-inkey",
        "ignore",
        "busy",
    ],
)
async def test_user_policies_end_in_the_right_answer(  # noqa: PLR0917 - parametrized
    smsc: SmscSimulator,
    esme: SmppClient,
    command: ProactiveCommand,
    user: UserPolicy,
    outcome: StkOutcome,
    item: int,
) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc, user, dialog_timeout=0.05)
    await push(esme, command)
    await wait_until(lambda: bool(mos), "the MO answer")
    answer = answer_of(mos[0])
    assert (answer.offer_id, answer.outcome, answer.item_id) == (OFFER_ID, outcome, item)
    if user.action is UserAction.BUSY:
        assert answer.general_result == 0x20
        assert phone.entries(LogKind.TERMINAL_ANSWERED)[0].detail == "screen busy"
    if user.action is UserAction.IGNORE:
        assert answer.general_result == 0x12
        assert phone.entries(LogKind.TERMINAL_ANSWERED)[0].status == 0x12
    await phone.close()


async def test_random_item_is_one_of_the_items(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc, UserPolicy(item="random"))
    await push(esme, SELECT)
    await wait_until(lambda: bool(mos), "the MO answer")
    answer = answer_of(mos[0])
    assert answer.outcome is StkOutcome.ITEM_CHOSEN
    assert answer.item_id in (1, 2, 3, 4)
    await phone.close()


async def test_handset_without_yes_no_gets_display_text(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc, profile=NO_YES_NO_PROFILE)
    assert phone.sim is not None and phone.sim.terminal_profile == NO_YES_NO_PROFILE  # sent at power-on
    await push(esme, YES_NO)
    await wait_until(lambda: bool(mos), "the MO answer")
    assert answer_of(mos[0]).outcome is StkOutcome.ACCEPTED
    assert phone.entries(LogKind.DIALOG_SHOWN)[0].detail.startswith("DisplayText: Buy 1GB")
    await phone.close()


async def test_handset_without_select_item_answers_30(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    profile = DEFAULT_PROFILE.without_features(TerminalProfileFeature.SELECT_ITEM)
    phone = handset(smsc, profile=profile)
    await push(esme, SELECT)
    await wait_until(lambda: bool(mos), "the MO answer")
    answer = answer_of(mos[0])
    assert (answer.outcome, answer.general_result) == (StkOutcome.UNABLE, 0x30)
    assert phone.entries(LogKind.TERMINAL_ANSWERED)[0].status == 0x30
    assert not phone.entries(LogKind.DIALOG_SHOWN)
    await phone.close()


async def test_commands_the_handset_does_not_simulate_are_refused(
    smsc: SmscSimulator, esme: SmppClient
) -> None:
    from protocols.stk.commands import SendUssd
    from protocols.stk.tlv import UssdString

    mos = collect_mo(esme)
    phone = handset(smsc, profile=DEFAULT_PROFILE.with_features(TerminalProfileFeature.SEND_USSD))
    await push(esme, SendUssd(UssdString.of("*123*1#")))
    await wait_until(lambda: bool(mos), "the MO answer")
    assert (answer_of(mos[0]).outcome, answer_of(mos[0]).general_result) == (StkOutcome.UNABLE, 0x30)
    assert "not simulated" in phone.entries(LogKind.TERMINAL_ANSWERED)[0].detail
    await phone.close()


async def test_por_by_sms_submit_reaches_the_esme_before_the_answer(
    smsc: SmscSimulator, esme: SmppClient
) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc)
    await push(esme, DISPLAY, spi=SPI_POR_SUBMIT)
    await wait_until(lambda: len(mos) == 2, "the PoR and the answer")
    first, second = mos
    assert isinstance(first, DeliverSm)
    por = parse_por(first.short_message, SPI_POR_SUBMIT)
    assert (por.status, por.additional_response_data) == (ResponseStatus.POR_OK, b"")
    assert answer_of(second, SPI_POR_SUBMIT).outcome is StkOutcome.ACCEPTED
    await wait_until(lambda: len(phone.entries(LogKind.MO_SENT)) == 2, "both MO_SENT log entries")
    await phone.close()


# --- rejections -------------------------------------------------------------------------------------------------


async def test_bad_mac_is_rejected_and_undelivered(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc)
    packet = bytearray(command_packet(offer_message(), 3))
    packet[-1] ^= 0x80
    result = await esme.submit(push_pdu(bytes(packet)))
    assert (await esme.wait_receipt(result.message_id, WAIT)).stat == "UNDELIV"
    (rejection,) = [e for e in phone.entries(LogKind.REJECTED) if e.status is not None]
    assert rejection.status == ResponseStatus.RC_CC_DS_FAILED
    assert "CC check failed" in rejection.detail
    report = phone.delivery_reports[0]
    assert not report.rp_ack
    assert parse_por(report.user_data).status is ResponseStatus.RC_CC_DS_FAILED
    assert "RP-ERROR SIM_DATA_DOWNLOAD_ERROR" in phone.entries(LogKind.SIM_DOWNLOAD)[0].detail
    await asyncio.sleep(0.05)
    assert mos == []
    assert not phone.entries(LogKind.DIALOG_SHOWN)
    await phone.close()


async def test_replayed_push_is_rejected(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    phone = handset(smsc)
    packet = command_packet(offer_message(DISPLAY), 4)
    first = await esme.submit(push_pdu(packet))
    await wait_until(lambda: bool(mos), "the first answer")
    await wait_until(lambda: phone.sim is not None and not phone.sim.busy, "the end of the session")
    again = await esme.submit(push_pdu(packet))
    assert (await esme.wait_receipt(first.message_id, WAIT)).stat == "DELIVRD"
    assert (await esme.wait_receipt(again.message_id, WAIT)).stat == "UNDELIV"
    (rejection,) = [e for e in phone.entries(LogKind.REJECTED) if e.status is not None]
    assert rejection.status == ResponseStatus.CNTR_LOW
    await phone.close()


async def test_second_push_during_a_dialog_meets_a_busy_toolkit(
    smsc: SmscSimulator, esme: SmppClient
) -> None:
    phone = handset(smsc, UserPolicy(UserAction.IGNORE))
    await push(esme, YES_NO, cntr=1)
    second = await push(esme, YES_NO, cntr=2, offer_id="off-2")
    assert (await esme.wait_receipt(second, WAIT)).stat == "UNDELIV"
    assert any("ToolkitBusy" in e.detail for e in phone.entries(LogKind.REJECTED))
    assert phone.dialog_open
    await phone.close()
    assert not phone.dialog_open


async def test_handset_without_sim_refuses_sim_data_download(smsc: SmscSimulator, esme: SmppClient) -> None:
    phone = Handset(MSISDN, None, DEFAULT_PROFILE, UserPolicy(), smsc)
    message_id = await push(esme)
    assert (await esme.wait_receipt(message_id, WAIT)).stat == "UNDELIV"
    assert "no SIM applet" in phone.entries(LogKind.MT_IGNORED)[0].detail
    await phone.close()


async def test_sim_data_download_that_fits_no_sms_deliver(smsc: SmscSimulator) -> None:
    phone = handset(smsc)
    mt = MtMessage("9", GATEWAY, MSISDN, 0x40, 0x7F, 0xF6, b"", tlvs(message_payload=bytes(200)), "gateway")
    assert phone.on_mt(mt) is MessageState.UNDELIVERABLE
    assert "fits no SMS-DELIVER" in phone.entries(LogKind.REJECTED)[0].detail
    await phone.close()


async def test_alphanumeric_originator_and_broken_envelope(smsc: SmscSimulator) -> None:
    phone = handset(smsc)
    mt = MtMessage("9", "Operator", MSISDN, 0x40, 0x7F, 0xF6, COMMAND_UDH + b"\x00", (), "gateway")
    assert phone.on_mt(mt) is MessageState.UNDELIVERABLE  # unidentified security error: RP-ERROR
    assert phone.sim is not None

    def broken(data: bytes, now: float) -> None:
        from protocols.errors import DecodeError

        raise DecodeError("card fault")

    phone.sim.receive_data = broken  # type: ignore[method-assign]
    assert phone.on_mt(mt) is MessageState.UNDELIVERABLE
    assert "card fault" in phone.entries(LogKind.REJECTED)[-1].detail
    await phone.close()


# --- timers and the network -------------------------------------------------------------------------------------


async def test_card_guard_answers_when_the_terminal_never_does(smsc: SmscSimulator, esme: SmppClient) -> None:
    mos = collect_mo(esme)
    card = make_card(None, dialog_timeout=0.05)
    phone = handset(smsc, UserPolicy(UserAction.IGNORE), card=card, dialog_timeout=30.0)
    await push(esme, YES_NO)
    await wait_until(lambda: bool(mos), "the MO answer")
    answer = answer_of(mos[0])
    assert (answer.outcome, answer.general_result) == (StkOutcome.NO_RESPONSE, 0x12)
    assert phone.entries(LogKind.CARD_TIMED_OUT)
    assert not phone.dialog_open
    assert not phone.entries(LogKind.TERMINAL_ANSWERED)
    await phone.close()


async def test_dialog_duration_sets_the_terminal_timeout(smsc: SmscSimulator, esme: SmppClient) -> None:
    from protocols.stk.tlv import Duration, TimeUnit

    mos = collect_mo(esme)
    phone = handset(smsc, UserPolicy(UserAction.IGNORE), dialog_timeout=30.0)
    short = GetInkey(
        YES_NO.text_string, YES_NO.command_qualifier, duration=Duration(TimeUnit.TENTHS_OF_SECONDS, 1)
    )
    await push(esme, short)
    await wait_until(lambda: bool(mos), "the MO answer")
    assert answer_of(mos[0]).outcome is StkOutcome.NO_RESPONSE
    await phone.close()


async def test_mo_refused_by_the_esme_is_sms_rp_error(smsc: SmscSimulator, esme: SmppClient) -> None:
    def refuse(pdu: DeliverSm | DataSm) -> None:
        raise RuntimeError("gateway database down")

    esme.add_mo_handler(refuse)
    phone = handset(smsc)
    await push(esme, DISPLAY)
    await wait_until(lambda: bool(phone.entries(LogKind.MO_FAILED)), "the failed MO")
    assert phone.entries(LogKind.MO_FAILED)[0].status == 0x64  # ESME_RX_T_APPN
    await wait_until(lambda: phone.sim is not None and not phone.sim.busy, "the end of the session")
    await phone.close()


async def test_mo_without_a_bound_esme_is_network_unable(smsc: SmscSimulator) -> None:
    phone = handset(smsc)
    packet = command_packet(offer_message(DISPLAY), 1)
    mt = MtMessage("1", GATEWAY, MSISDN, 0x40, 0x7F, 0xF6, COMMAND_UDH + packet, (), "gateway")
    assert phone.on_mt(mt) is MessageState.DELIVERED
    await wait_until(lambda: bool(phone.entries(LogKind.MO_FAILED)), "the failed MO")
    assert "no ESME bound" in phone.entries(LogKind.MO_FAILED)[0].detail
    await wait_until(lambda: phone.sim is not None and not phone.sim.busy, "the end of the session")
    await phone.close()


async def test_close_cancels_an_mo_in_flight(smsc: SmscSimulator, esme: SmppClient) -> None:
    gate = asyncio.Event()

    async def slow(pdu: DeliverSm | DataSm) -> None:
        await gate.wait()

    esme.add_mo_handler(slow)
    phone = handset(smsc)
    await push(esme, DISPLAY)
    await wait_until(lambda: bool(phone._tasks), "the MO in flight")
    await phone.close()
    assert not phone._tasks
    gate.set()


# --- the user model -------------------------------------------------------------------------------------------------


def test_reaction_delays() -> None:
    rng = random.Random(5)
    assert ReactionDelay.fixed(0.25).draw(rng) == 0.25
    assert ReactionDelay().draw(rng) == 0.0
    uniform = [ReactionDelay.uniform(1.0, 2.0).draw(rng) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in uniform)
    lognormal = ReactionDelay.lognormal(1.0, 0.5)
    first = [lognormal.draw(random.Random(9)) for _ in range(3)]
    assert first[0] == first[1] == first[2] > 0  # seeded: reproducible


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReactionDelay.fixed(-1),
        lambda: ReactionDelay.uniform(2, 1),
        lambda: ReactionDelay.lognormal(0, -1),
        lambda: ReactionDelay("gamma", 1, 1),  # type: ignore[arg-type]
        lambda: UserPolicy(item="middle"),  # type: ignore[arg-type]
        lambda: UserPolicy(item=-1),
        lambda: UserPolicy(input_text=""),
    ],
)
def test_bad_user_models(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        make()


async def test_bad_handset_configuration(smsc: SmscSimulator) -> None:
    with pytest.raises(ConfigError):
        Handset(MSISDN, None, FULL_PROFILE, UserPolicy(), smsc, dialog_timeout=0)


async def test_same_seed_same_delays(smsc: SmscSimulator) -> None:
    user = UserPolicy(delay=ReactionDelay.uniform(0, 10))
    one = Handset("1", None, FULL_PROFILE, user, smsc, 42)
    two = Handset("2", None, FULL_PROFILE, user, smsc, 42)
    assert [user.delay.draw(one.random) for _ in range(5)] == [user.delay.draw(two.random) for _ in range(5)]
    await one.close()
    await two.close()


# --- odd dialogs and a misbehaving card ---------------------------------------------------------------------------


async def test_select_item_without_real_items_and_undecodable_text(
    smsc: SmscSimulator, esme: SmppClient
) -> None:
    from protocols.stk.commands import SelectItem
    from protocols.stk.tlv import Item

    mos = collect_mo(esme)
    phone = handset(smsc)
    await push(esme, SelectItem((Item(None), Item(None)), command_number=2), cntr=1)
    await wait_until(lambda: bool(mos), "the first answer")
    assert answer_of(mos[0]).outcome is StkOutcome.DECLINED
    await wait_until(lambda: phone.sim is not None and not phone.sim.busy, "the end of the session")
    await push(esme, SelectItem((Item(1, b"\x80\xd8\x00"),)), cntr=2)
    await wait_until(lambda: len(mos) == 2, "the second answer")
    assert answer_of(mos[1]).outcome is StkOutcome.ITEM_CHOSEN
    assert "<undecodable text" in phone.entries(LogKind.DIALOG_SHOWN)[1].detail
    await phone.close()


class _GarbledCard(SimCard):
    """A card whose FETCH or TERMINAL RESPONSE go wrong in the ways a terminal must survive."""

    mode = ""

    def fetch(self) -> bytes:
        from protocols.stk.commands import SendShortMessage, decode_proactive

        raw = super().fetch()
        command = decode_proactive(raw)
        if self.mode == "garbage":
            return b"\xd0\x01"
        if self.mode == "tpdu" and isinstance(command, SendShortMessage):
            return SendShortMessage(b"\x05", command_number=command.command_number).encode()
        return raw

    def terminal_response(self, data: bytes, now: float) -> int:
        from protocols.errors import RemoteProtocolError

        if self.mode == "refuse":
            raise RemoteProtocolError("not now")
        return super().terminal_response(data, now)


@pytest.mark.parametrize(
    ("mode", "kind", "text"),
    [
        ("garbage", LogKind.TERMINAL_ANSWERED, "undecodable proactive command"),
        ("tpdu", LogKind.MO_FAILED, "carries no SMS-SUBMIT"),
        ("refuse", LogKind.TERMINAL_ANSWERED, "refused the TERMINAL RESPONSE"),
    ],
)
async def test_terminal_survives_a_garbled_card(
    smsc: SmscSimulator, mode: str, kind: LogKind, text: str
) -> None:
    from stk_sim_kit import AES_KEYS

    from protocols.stk.dstk import DSTK_TAR

    card = _GarbledCard("1", {DSTK_TAR: AES_KEYS})
    card.mode = mode
    phone = handset(smsc, card=card)
    packet = command_packet(offer_message(DISPLAY), 1)
    mt = MtMessage("1", GATEWAY, MSISDN, 0x40, 0x7F, 0xF6, COMMAND_UDH + packet, (), "gateway")
    phone.on_mt(mt)
    await wait_until(lambda: any(text in e.detail for e in phone.entries(kind)), text)
    if mode == "tpdu":
        assert not card.busy  # answered '32': the card dropped the answer
    await phone.close()

"""The SMSC simulator's USSD relay (simulators/smsc.py) between handsets and a bound gateway.

The gateway is a real ``gateway.smpp.client.SmppClient`` over loopback that decodes the deliver_sm with
``protocols.ussd.from_pdu``, runs the ``UssdDialogues`` engine and answers with submit_sm built by
``protocols.ussd.to_submit`` (``ussd_relay_kit``). Raw TLVs are checked against SMPP 3.4 5.3.2.43/44
and the byte examples of PROTOCOLS.md 1.1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ussd_relay_kit import (
    PASSWORD,
    SHORT_CODE,
    SYSTEM_ID,
    WAIT,
    UssdGateway,
    bound_gateway,
    client_config,
)

from gateway.smpp.client import SmppClient, SubmitError
from protocols.errors import ConfigError, LocalProtocolError
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.tlv import Tag, Tlv, find_tlv
from protocols.ussd import (
    DialogueAborted,
    DialogueEnded,
    DialogueKey,
    DialogueStarted,
    DialogueTimedOut,
    NotificationConfirmed,
    ReplyReceived,
    UssdMessage,
    UssdServiceOp,
    get_profile,
    make_profile,
    to_submit,
)
from simulators.smsc import ScreenKind, SmscSimulator, UssdError, UssdScreen, UssdSession

MSISDN = "254700000001"
S = CommandStatus
OP = UssdServiceOp

SmscFactory = Callable[..., Any]


@pytest.fixture
async def make_smsc() -> AsyncIterator[SmscFactory]:
    sims: list[SmscSimulator] = []

    async def make(**kwargs: Any) -> SmscSimulator:
        sim = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=7, **kwargs)
        await sim.start("127.0.0.1", 0)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


def its(session_id: int | None, octet2: int) -> bytes:
    """its_session_info as SMPP 3.4 5.3.2.43 lays it out: the session number, then sequence << 1 | end."""
    assert session_id is not None
    return bytes((session_id, octet2))


def tlv(pdu: DeliverSm | DataSm, tag: int) -> bytes | None:
    found = find_tlv(pdu.optional_parameters, tag)
    return None if found is None else found.value


async def screens_until_final(session: UssdSession) -> list[UssdScreen]:
    out = [await session.next_screen(WAIT)]
    while not out[-1].final:
        out.append(await session.next_screen(WAIT))
    return out


# --- the handset dials ----------------------------------------------------------------------------


async def test_dial_sends_a_pssr_indication_with_the_code_and_a_new_session_number(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    first = await smsc.dial(MSISDN, "*123#")
    second = await smsc.dial(MSISDN, "*123#")
    assert first.session_id != second.session_id
    pdu = gateway.pdus[0]
    assert pdu.service_type == "USSD"
    assert pdu.source_addr == MSISDN
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (1, 1)
    assert pdu.destination_addr == SHORT_CODE
    assert pdu.short_message == b"*123#"
    assert tlv(pdu, Tag.USSD_SERVICE_OP) == b"\x01"
    assert tlv(pdu, Tag.ITS_SESSION_INFO) == its(first.session_id, 0)  # sequence 0, not the end
    started = gateway.events_of(DialogueStarted)
    assert [(e.msisdn, e.service_code, e.key.session_id) for e in started[:1]] == [
        (MSISDN, "*123#", first.session_id)
    ]
    assert first.service_code == "*123#" and first.service_addr == SHORT_CODE
    assert not first.network_initiated and first.system_id == SYSTEM_ID
    assert smsc.stats.ussd_sessions == 2


async def test_screens_replies_and_the_final_screen_travel_in_order(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    session = await smsc.dial(MSISDN, "*123#")
    menu = await session.next_screen(WAIT)
    assert menu == UssdScreen(f"Hi {MSISDN}\n1.100MB\n2.200MB", ScreenKind.CONTINUE, False, OP.USSR_REQ, 1)
    assert session.awaiting_input and not session.ended
    await session.reply("9")
    again = await session.next_screen(WAIT)
    assert again.kind is ScreenKind.CONTINUE and again.sequence == 3
    assert again.text.startswith("Invalid choice '9'")
    await session.reply("1")
    final = await session.next_screen(WAIT)
    assert final == UssdScreen(f"Thank you {MSISDN}. 100MB added.", ScreenKind.FINAL, True, OP.PSSR_RESP, 5)
    assert session.ended and not session.awaiting_input
    assert session.history == [menu, again, final]
    # the USSR confirms carried the next sequence numbers: 2 and 4
    confirms = gateway.pdus[1:]
    assert [tlv(p, Tag.USSD_SERVICE_OP) for p in confirms] == [b"\x12", b"\x12"]
    assert [tlv(p, Tag.ITS_SESSION_INFO) for p in confirms] == [
        its(session.session_id, 2 << 1),
        its(session.session_id, 4 << 1),
    ]
    assert [p.short_message for p in confirms] == [b"9", b"1"]
    assert [type(e) for e in gateway.events] == [
        DialogueStarted,
        ReplyReceived,
        ReplyReceived,
        DialogueEnded,
    ]
    assert smsc.ussd_sessions == []
    with pytest.raises(UssdError, match="is over") as over:
        await session.next_screen(0.1)
    assert over.value.cause == "ended"
    with pytest.raises(LocalProtocolError, match="is over"):
        await session.reply("1")
    # a USSD submit_sm is answered but never gets a delivery receipt; it is recorded like any MT
    assert smsc.stats.receipts_sent == 0 and gateway.client.stats.receipts == 0
    assert [m.destination_addr for m in smsc.messages] == [MSISDN] * 3
    assert smsc.stats.ussd_screens == 3 and smsc.stats.ussd_replies == 2


async def test_a_one_shot_purchase_code_gets_one_final_screen(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    session = await smsc.dial(MSISDN, "*123*500#")
    assert await screens_until_final(session) == [
        UssdScreen("Thank you. 500MB added.", ScreenKind.FINAL, True, OP.PSSR_RESP, 1)
    ]
    assert gateway.pdus[0].short_message == b"*123*500#"
    assert gateway.pdus[0].destination_addr == SHORT_CODE


@pytest.mark.parametrize("profile_name", ["standard", "6d", "mica"])
async def test_every_vendor_profile_relays_a_whole_dialogue(
    make_smsc: SmscFactory, profile_name: str
) -> None:
    smsc = await make_smsc(ussd_profile=profile_name)
    async with bound_gateway(smsc.address[1], get_profile(profile_name)) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        assert (await session.next_screen(WAIT)).kind is ScreenKind.CONTINUE
        await session.reply("1")
        final = await session.next_screen(WAIT)
        assert final.kind is ScreenKind.FINAL and final.text.endswith("100MB added.")
        key = gateway.events[0].key
        assert key == DialogueKey(MSISDN, session.session_id)
        if profile_name == "mica":
            assert tlv(gateway.pdus[1], Tag.USER_MESSAGE_REFERENCE) == session.session_id.to_bytes(2, "big")
        if profile_name == "6d":
            assert tlv(gateway.pdus[1], Tag.ITS_SESSION_INFO) == (session.session_id << 1).to_bytes(2, "big")


async def test_a_profile_that_reads_the_code_from_destination_addr(make_smsc: SmscFactory) -> None:
    profile = make_profile("standard", name="dest", service_code_field="destination_addr")
    smsc = await make_smsc(ussd_profile=profile)
    async with bound_gateway(smsc.address[1], profile) as gateway:
        session = await smsc.dial(MSISDN, "*123*200#")
        assert (await session.next_screen(WAIT)).text == "Thank you. 200MB added."
        assert gateway.pdus[0].destination_addr == "*123*200#"


# --- the handset's mistakes and the network's failures ---------------------------------------------


async def test_the_handset_can_only_answer_a_screen_that_asks(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        with pytest.raises(LocalProtocolError, match="no screen asks for input"):
            await session.reply("1")
        with pytest.raises(TimeoutError):
            await session.next_screen(0.05)
        await gateway.screen(gateway.events[0].key, "Pick 1 or 2")
        assert (await session.next_screen(WAIT)).text == "Pick 1 or 2"
        with pytest.raises(LocalProtocolError, match="limit"):
            await session.reply("x" * 183)
        assert session.awaiting_input  # the screen still waits for a valid answer
        await session.reply("2")
        await gateway.wait_for(lambda: bool(gateway.events_of(ReplyReceived)), "the reply")


async def test_dial_refuses_a_string_that_is_no_ussd_code(smsc: SmscSimulator) -> None:
    with pytest.raises(LocalProtocolError, match="not a USSD service code"):
        await smsc.dial(MSISDN, "hello")


async def test_dial_without_a_bound_gateway(smsc: SmscSimulator) -> None:
    with pytest.raises(UssdError, match="no gateway bound") as failure:
        await smsc.dial(MSISDN, "*123#")
    assert failure.value.cause == "unbound" and failure.value.status == 0
    assert smsc.ussd_sessions == []


async def test_a_gateway_that_refuses_or_ignores_the_dial(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(window=1)  # one deliver_sm outstanding at a time
    client = SmppClient(client_config(smsc.address[1]))
    await client.start()
    release = asyncio.Event()

    async def refuse(pdu: DeliverSm | DataSm) -> None:
        if isinstance(pdu, DeliverSm) and pdu.short_message == b"*1#":
            raise RuntimeError("the application is down")  # the client answers ESME_RX_T_APPN
        await release.wait()

    client.add_mo_handler(refuse)
    try:
        with pytest.raises(UssdError, match="refused the USSD dial: ESME_RX_T_APPN") as refused:
            await smsc.dial(MSISDN, "*1#")
        assert refused.value.cause == "refused" and refused.value.status == S.ESME_RX_T_APPN
        with pytest.raises(UssdError, match=r"did not answer the USSD dial within 0\.2 s") as late:
            await smsc.dial(MSISDN, "*2#", timeout=0.2)
        assert late.value.cause == "timeout"
        # the ignored deliver_sm still fills the window: the next dial waits for room, then gives up
        with pytest.raises(UssdError, match="did not answer") as full:
            await smsc.dial(MSISDN, "*3#", timeout=0.2)
        assert full.value.cause == "timeout"
        assert smsc.ussd_sessions == []
    finally:
        release.set()
        await client.close(drain_timeout=1.0)


async def test_a_reply_the_gateway_refuses_ends_the_session(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        await session.next_screen(WAIT)

        def refuse(pdu: DeliverSm | DataSm) -> None:
            raise RuntimeError("no more")

        gateway.client._mo_handlers.insert(0, refuse)
        with pytest.raises(UssdError, match="refused the USSD reply"):
            await session.reply("1")
        assert session.ended and smsc.ussd_sessions == []
        assert session.end_reason is not None and "ESME_RX_T_APPN" in session.end_reason


async def test_session_numbers_wrap_and_run_out(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        smsc._ussd_next_id = 255
        assert (await smsc.dial(MSISDN, "*123#")).session_id == 255
        assert (await smsc.dial(MSISDN, "*123#")).session_id == 0
        smsc._ussd_id_limit = 1  # a layout with two session numbers
        other = "254700000002"
        assert (await smsc.dial(other, "*123#")).session_id == 1
        assert (await smsc.dial(other, "*123#")).session_id == 0
        with pytest.raises(UssdError, match="every USSD session number") as busy:
            await smsc.dial(other, "*123#")
        assert busy.value.cause == "busy"


def test_ussd_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="ussd_timeout"):
        SmscSimulator({}, ussd_timeout=0)


def test_a_screen_label_says_what_the_screen_is() -> None:
    assert UssdScreen("x", ScreenKind.NOTIFICATION, True).label == "notification, final"
    assert UssdScreen("x", ScreenKind.NOTIFICATION, False).label == "notification"
    assert UssdScreen("", ScreenKind.TIMEOUT, True).label == "timeout"


# --- abandon, cancel, timeouts ---------------------------------------------------------------------


async def test_abandon_tells_the_gateway_nothing_so_its_reply_timeout_ends_the_dialogue(
    make_smsc: SmscFactory,
) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, per_reply_timeout=0.3) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        menu = await session.next_screen(WAIT)
        session.abandon()
        assert session.ended and session.abandoned and session.end_reason == "abandoned by the user"
        await asyncio.sleep(0.15)
        assert len(gateway.pdus) == 1  # the gateway heard nothing more
        assert len(smsc.ussd_sessions) == 1  # the network still holds the session
        await gateway.wait_for(lambda: bool(gateway.events_of(DialogueTimedOut)), "the reply timeout")
        timed_out = gateway.events_of(DialogueTimedOut)[0]
        assert isinstance(timed_out, DialogueTimedOut) and timed_out.which == "reply"
        # the gateway's release (a final PSSR response in this profile) was taken and ended the session
        await gateway.wait_for(lambda: smsc.ussd_sessions == [], "the network forgets the session")
        assert gateway.errors == []
        assert session.history == [menu]  # nobody looks at the screen any more
        assert smsc.stats.ussd_releases == 0
        with pytest.raises(UssdError):
            await session.next_screen(0.1)
        session.abandon()  # twice is harmless


@pytest.mark.parametrize(
    ("profile_name", "op", "end_event"),
    [
        ("standard", b"\x12", DialogueEnded),
        ("6d", b"\x81", DialogueAborted),
        ("mica", b"\x81", DialogueAborted),
    ],
)
async def test_cancel_sends_a_release_to_the_gateway(
    make_smsc: SmscFactory, profile_name: str, op: bytes, end_event: type
) -> None:
    smsc = await make_smsc(ussd_profile=profile_name)
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        await session.next_screen(WAIT)
        await session.release()
        assert session.end_reason == "released by the user"
        release = gateway.pdus[-1]
        assert tlv(release, Tag.USSD_SERVICE_OP) == op
        if profile_name == "standard":  # no release op: a USSR confirm with the end bit, sequence 2
            assert tlv(release, Tag.ITS_SESSION_INFO) == its(session.session_id, 2 << 1 | 1)
        await gateway.wait_for(lambda: bool(gateway.events_of(end_event)), "the dialogue ends")
        assert smsc.ussd_sessions == [] and smsc.stats.ussd_releases == 1
        await session.release()  # twice is harmless: nothing more is sent
        assert len(gateway.pdus) == 2


async def test_the_network_times_out_a_silent_session_and_releases_it(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(ussd_timeout=0.3)
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        timeout = await session.next_screen(WAIT)
        assert timeout == UssdScreen("", ScreenKind.TIMEOUT, True)
        assert session.end_reason == "timed out by the network after 0.3 s of silence"
        await gateway.wait_for(lambda: len(gateway.pdus) == 2, "the release")
        assert tlv(gateway.pdus[1], Tag.ITS_SESSION_INFO) == its(session.session_id, 1 << 1 | 1)
        await gateway.wait_for(lambda: bool(gateway.events_of(DialogueEnded)), "the dialogue ends")
        assert smsc.stats.ussd_timeouts == 1
        # a screen for the forgotten session is refused
        late = UssdMessage(OP.PSSR_RESP, MSISDN, "too late", SHORT_CODE, session.session_id, 3, True)
        with pytest.raises(SubmitError) as refused:
            await gateway.client.submit(to_submit(late, gateway.profile))
        assert refused.value.status == S.ESME_RSUBMITFAIL
        assert smsc.stats.ussd_refused == 1


async def test_the_network_timeout_is_rearmed_by_every_message(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(ussd_timeout=0.4)
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        session = await smsc.dial(MSISDN, "*123#")
        await session.next_screen(WAIT)
        for _ in range(2):  # 0.5 s in all, never 0.4 s of silence
            await asyncio.sleep(0.25)
            await session.reply("9")
            assert (await session.next_screen(WAIT)).kind is ScreenKind.CONTINUE
        session.abandon()
        await asyncio.sleep(0.6)
        assert smsc.stats.ussd_timeouts == 1 and smsc.ussd_sessions == []
        assert session.end_reason == "abandoned by the user"  # the abandoned handset saw nothing


async def test_a_release_from_the_gateway_ends_the_session(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(ussd_profile="6d")
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        key = gateway.events[0].key
        await gateway.client.submit(to_submit(gateway.engine.release(key, 0.0, "Bye"), gateway.profile))
        released = await session.next_screen(WAIT)
        assert released == UssdScreen("Bye", ScreenKind.RELEASED, True, OP.RELEASE, None)
        assert session.end_reason == "ended by a released screen"


async def test_stop_ends_every_session(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        session = await smsc.dial(MSISDN, "*123#")
        await smsc.stop()
        assert (await session.next_screen(WAIT)).kind is ScreenKind.CONTINUE
        with pytest.raises(UssdError, match="the SMSC simulator stopped"):
            await session.next_screen(WAIT)


# --- network-initiated sessions ----------------------------------------------------------------------


async def test_a_final_ussn_opens_and_ends_a_session_on_the_handset(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    opened: list[UssdSession] = []
    smsc.register_ussd_handset(MSISDN, opened.append)
    await gateway.notify(MSISDN, "Your balance: 500MB", final=True)
    assert len(opened) == 1
    session = opened[0]
    assert session.network_initiated and session.system_id == SYSTEM_ID
    assert await session.next_screen(WAIT) == UssdScreen(
        "Your balance: 500MB", ScreenKind.NOTIFICATION, True, OP.USSN_REQ, 0
    )
    assert session.ended and smsc.ussd_sessions == []
    await asyncio.sleep(0.05)
    assert gateway.pdus == []  # a final notification needs no confirm


async def test_a_ussn_is_confirmed_by_the_handset_and_the_gateway_goes_on(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    shown: list[UssdScreen] = []

    def open_session(session: UssdSession) -> None:
        session.on_screen = shown.append

    smsc.register_ussd_handset(MSISDN, open_session)
    await gateway.notify(MSISDN, "Offer: 1GB for 1 USD")
    await gateway.wait_for(lambda: len(shown) == 2, "the notification and the goodbye")
    assert [(s.kind, s.final, s.text) for s in shown] == [
        (ScreenKind.NOTIFICATION, False, "Offer: 1GB for 1 USD"),
        (ScreenKind.NOTIFICATION, True, "Goodbye"),
    ]
    confirm = gateway.pdus[0]
    assert tlv(confirm, Tag.USSD_SERVICE_OP) == b"\x13"
    assert tlv(confirm, Tag.ITS_SESSION_INFO) == its(gateway.events[0].key.session_id, 1 << 1)
    assert any(isinstance(e, NotificationConfirmed) for e in gateway.events)


async def test_a_network_initiated_menu_is_answered_by_the_handset(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    opened: list[UssdSession] = []
    smsc.register_ussd_handset(MSISDN, opened.append)
    await gateway.menu(MSISDN, "Rate us: 1 good, 2 bad")
    session = opened[0]
    assert await session.next_screen(WAIT) == UssdScreen(
        "Rate us: 1 good, 2 bad", ScreenKind.CONTINUE, False, OP.USSR_REQ, 0
    )
    await session.reply("1")
    final = await session.next_screen(WAIT)
    assert final.final and final.text == f"Thank you {MSISDN}. 100MB added."
    assert tlv(gateway.pdus[0], Tag.ITS_SESSION_INFO) == its(session.session_id, 1 << 1)
    smsc.unregister_ussd_handset(MSISDN)
    with pytest.raises(SubmitError) as absent:
        await gateway.menu(MSISDN, "anyone?")
    assert absent.value.status == S.ESME_RINVDSTADR


async def test_a_failing_handset_handler_does_not_break_the_relay(
    smsc: SmscSimulator, gateway: UssdGateway, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(session: UssdSession) -> None:
        def show(screen: UssdScreen) -> None:
            raise RuntimeError("display broken")

        session.on_screen = show
        raise RuntimeError("handset broken")

    smsc.register_ussd_handset(MSISDN, broken)
    with caplog.at_level(logging.ERROR, logger="simulators.smsc"):
        await gateway.notify(MSISDN, "hello", final=True)
    assert "handset 254700000001 failed" in caplog.text
    assert "on_screen failed" in caplog.text


# --- what the relay refuses ----------------------------------------------------------------------------


def ussd_submit(*tlvs: Tlv, ucs2: bytes | None = None) -> SubmitSm:
    return SubmitSm(
        service_type="USSD",
        source_addr=SHORT_CODE,
        destination_addr=MSISDN,
        registered_delivery=1,
        data_coding=0x08 if ucs2 is not None else 0,
        short_message=b"hi" if ucs2 is None else ucs2,
        optional_parameters=tlvs,
    )


@pytest.mark.parametrize(
    ("pdu", "status"),
    [
        # UCS-2 text of an odd number of octets
        (
            ussd_submit(
                Tlv(Tag.USSD_SERVICE_OP, b"\x02"), Tlv(Tag.ITS_SESSION_INFO, b"\x01\x00"), ucs2=b"\x00"
            ),
            S.ESME_RINVOPTPARAMVAL,
        ),
        # a USSR confirm travels from the handset, never in a submit_sm
        (
            ussd_submit(Tlv(Tag.USSD_SERVICE_OP, b"\x12"), Tlv(Tag.ITS_SESSION_INFO, b"\x01\x02")),
            S.ESME_RINVOPTPARAMVAL,
        ),
        # the final screen of a session nobody has open
        (
            ussd_submit(Tlv(Tag.USSD_SERVICE_OP, b"\x11"), Tlv(Tag.ITS_SESSION_INFO, b"\x07\x03")),
            S.ESME_RSUBMITFAIL,
        ),
        # a network-initiated menu to a subscriber without a USSD handset
        (
            ussd_submit(Tlv(Tag.USSD_SERVICE_OP, b"\x02"), Tlv(Tag.ITS_SESSION_INFO, b"\x07\x00")),
            S.ESME_RINVDSTADR,
        ),
    ],
    ids=["odd-ucs2", "mo-op", "no-session", "no-handset"],
)
async def test_ussd_submits_the_relay_refuses(
    smsc: SmscSimulator, gateway: UssdGateway, pdu: SubmitSm, status: int
) -> None:
    with pytest.raises(SubmitError) as refused:
        await gateway.client.submit(pdu)
    assert refused.value.status == status
    assert smsc.stats.ussd_refused == 1 and smsc.stats.submits == 0
    await asyncio.sleep(0.05)
    assert smsc.stats.receipts_sent == 0


async def test_sms_still_takes_the_sms_path_next_to_ussd(smsc: SmscSimulator, gateway: UssdGateway) -> None:
    received: list[str | None] = []
    smsc.register_handset(MSISDN, lambda mt: received.append(mt.text))
    result = await gateway.client.submit(
        SubmitSm(source_addr="12345", destination_addr=MSISDN, registered_delivery=1, short_message=b"hello")
    )
    receipt = await gateway.client.wait_receipt(result.message_id, WAIT)
    assert receipt.stat == "DELIVRD" and received == ["hello"]
    # and a USSD submit is not handed to the SMS handset
    opened: list[UssdSession] = []
    smsc.register_ussd_handset(MSISDN, opened.append)
    await gateway.notify(MSISDN, "ussd", final=True)
    assert received == ["hello"] and len(opened) == 1


async def test_the_relay_works_behind_a_slow_personality(make_smsc: SmscFactory) -> None:
    from simulators.smsc import parse_personality

    smsc = await make_smsc(personality=parse_personality("slow:0.05"))
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        session = await smsc.dial(MSISDN, "*123*100#")
        assert (await session.next_screen(WAIT)).text == "Thank you. 100MB added."


async def test_dials_wait_for_room_in_a_small_window(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(window=3)
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        sessions = await asyncio.gather(*(smsc.dial(f"2547{i:08d}", "*123*100#") for i in range(30)))
        finals = [await s.next_screen(WAIT) for s in sessions]
        assert {f.text for f in finals} == {"Thank you. 100MB added."}


async def test_a_reply_or_release_after_the_gateway_left(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        replying = await smsc.dial(MSISDN, "*123#")
        releasing = await smsc.dial(MSISDN, "*123#")
        await replying.next_screen(WAIT)
        await releasing.next_screen(WAIT)
        await gateway.client.close(drain_timeout=0.5)
        await gateway.wait_for(lambda: smsc.bound_system_ids == [], "the unbind")
    with pytest.raises(UssdError, match="no gateway bound") as unbound:
        await replying.reply("1")
    assert unbound.value.cause == "unbound" and replying.end_reason is not None
    await releasing.release()  # nobody to tell: the session just ends
    assert releasing.ended and smsc.ussd_sessions == []


async def test_a_release_the_gateway_refuses_is_only_logged(
    make_smsc: SmscFactory, caplog: pytest.LogCaptureFixture
) -> None:
    smsc = await make_smsc()
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        session = await smsc.dial(MSISDN, "*123#")
        await session.next_screen(WAIT)

        def refuse(pdu: DeliverSm | DataSm) -> None:
            raise RuntimeError("no more")

        gateway.client._mo_handlers.insert(0, refuse)
        with caplog.at_level(logging.INFO, logger="simulators.smsc"):
            await session.release()
        assert "answered ESME_RX_T_APPN" in caplog.text
        assert session.end_reason == "released by the user"


async def test_two_readers_share_one_wait_and_stop_cancels_pending_sends(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc()
    hold = asyncio.Event()

    async def slow_confirms(pdu: DeliverSm | DataSm) -> None:
        if tlv(pdu, Tag.USSD_SERVICE_OP) == b"\x13":  # USSN confirm: answered only when released
            await hold.wait()

    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        gateway.client._mo_handlers.insert(0, slow_confirms)
        opened: list[UssdSession] = []
        smsc.register_ussd_handset(MSISDN, opened.append)
        session = await smsc.dial(MSISDN, "*123#")
        readers = [asyncio.ensure_future(session.next_screen(WAIT)) for _ in range(2)]
        await asyncio.sleep(0.01)
        done, _ = await asyncio.wait(readers, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) >= 1
        await gateway.notify(MSISDN, "note")  # its confirm is held by the gateway
        await gateway.wait_for(lambda: bool(opened), "the notification")
        await asyncio.sleep(0.05)
        assert len(smsc._ussd_tasks) == 1
        await smsc.stop()
        assert smsc._ussd_tasks == set()
        for reader in readers:
            reader.cancel()
        hold.set()


async def test_ussd_submits_are_observed_like_any_mt(make_smsc: SmscFactory) -> None:
    smsc = await make_smsc(record_messages=False)
    seen: list[str] = []
    smsc.on_submit = lambda mt: seen.append(mt.destination_addr)
    async with bound_gateway(smsc.address[1], smsc.ussd_profile):
        session = await smsc.dial(MSISDN, "*123*100#")
        await session.next_screen(WAIT)
    assert seen == [MSISDN] and list(smsc.messages) == []

"""Exploratory robustness of the USSD service (SMPP 3.4 ``ussd_service_op`` 5.3.2.44 /
``its_session_info`` 5.3.2.43, MAP USSD of TS 24.090): unusual timing and input, driven end to end
over loopback (handset -> SMSC simulator -> ESME -> UssdService), nothing mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from ussd_gateway_harness import WAIT, MakeRig, Op, Rig

from gateway.ussd import Screen, parse_menus, parse_response
from protocols.smpp.pdu import DeliverSm
from protocols.smpp.tlv import Tag, Tlv
from protocols.ussd import PROFILES, UssdMessage, to_deliver

pytestmark = pytest.mark.e2e
MSISDN = "254700000700"


async def settled(rig: Rig, journeys: int) -> None:
    """Wait until ``journeys`` dialogues were logged and no dialogue is live in the service or engine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    service = rig.service
    while len(service.journeys) < journeys or service.live_dialogues or len(service._engine):
        assert loop.time() < deadline, (
            f"journeys {len(service.journeys)}/{journeys}, live {service.live_dialogues}, "
            f"engine {len(service._engine)}"
        )
        await asyncio.sleep(0.01)


# --- the HTTP CON / END adapter ----------------------------------------------------------------------


class StreamingApp:
    """An external app that writes its answer in pieces (chunked transfer encoding), as a web app
    that flushes while it renders does."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/chunked", self.chunked)
        self.runner = web.AppRunner(self.app)
        self.port = 0

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        first = form["text"] == ""
        parts = [b"CON ", b"Welcome\n", b"1. Go"] if first else [b"END ", b"Thank ", b"you."]
        for part in parts:
            await response.write(part)
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response


@pytest.fixture
async def streaming_app() -> AsyncIterator[StreamingApp]:
    app = StreamingApp()
    await app.start()
    yield app
    await app.runner.cleanup()


async def test_http_app_answer_written_in_pieces_is_read_whole(
    make_rig: MakeRig, streaming_app: StreamingApp
) -> None:
    menus = parse_menus(
        f'services:\n  - {{code: "*140#", http: {{url: "http://127.0.0.1:{streaming_app.port}/chunked"}}}}\n'
        "screens:\n  unused: {type: final, text: unused}\n"
    )
    rig = await make_rig(menus=menus, handlers={}, providers={})
    phone = rig.handsets.phone(MSISDN)
    first = await phone.dial("*140#")
    assert not first.final and first.text == "Welcome\n1. Go"
    final = await phone.reply("1")
    assert final.final and final.text == "Thank you."
    await settled(rig, 1)
    assert rig.service.journeys[-1].outcome == "completed"


# --- sessions: concurrency, reuse, retransmission ----------------------------------------------------


async def test_two_concurrent_sessions_from_one_msisdn_stay_apart(rig: Rig) -> None:
    first, second = rig.handsets.phone(MSISDN), rig.handsets.phone(MSISDN)
    a, b = await asyncio.gather(first.dial("*123#"), second.dial("*123#"))
    assert first.session.session_id != second.session.session_id
    assert a.text == b.text and not a.final
    buy, balance = await asyncio.gather(first.reply("1"), second.reply("4"))
    assert buy.text.startswith("Choose a bundle type")
    assert balance.final and balance.text == "Your balance: 120 KES, 350MB."
    assert (await first.reply("1")).text.startswith("Daily bundles")
    await first.session.release()
    await settled(rig, 2)
    # the standard profile has no release op: the user's release is the end bit (5.3.2.43)
    assert sorted(j.outcome for j in rig.service.journeys) == ["completed", "ended_by_network"]


async def test_retransmitted_reply_after_the_next_screen_is_not_a_new_input(rig: Rig) -> None:
    """An SMSC re-delivers a deliver_sm whose response it missed (a link that dropped, a late
    deliver_sm_resp). A USSR confirm repeated with the same sequence number is the same dialogue unit
    (its_session_info, 5.3.2.43): it must not walk the menu a second time."""
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    kinds = await phone.reply("1")
    assert kinds.text.startswith("Choose a bundle type")
    session = phone.session
    sent = (phone.wire[0].sequence or 0) + 1  # the handset's reply to our first screen
    again = UssdMessage(Op.USSR_CONF, MSISDN, "1", "123", session.session_id, sent)
    assert await rig.smsc.deliver(to_deliver(again, rig.handsets.profile), timeout=WAIT) == 0
    await phone.nothing()
    assert (await phone.reply("2")).text.startswith("Weekly bundles")


@pytest.mark.parametrize("profile", ["standard", "6d", "mica"])
@pytest.mark.parametrize("op", [0x7F, 0x99, 0x03, 0x02])
async def test_unknown_or_misdirected_op_on_a_live_session_changes_nothing(
    make_rig: MakeRig, profile: str, op: int
) -> None:
    prof = PROFILES[profile]
    rig = await make_rig(profile=prof)
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    session = phone.session
    sid = session.session_id
    assert sid is not None
    tlvs: list[Tlv] = [Tlv(Tag.USSD_SERVICE_OP, bytes((op,)))]
    if prof.session_id_location.value == "user_message_reference":
        tlvs.append(Tlv(Tag.USER_MESSAGE_REFERENCE, sid.to_bytes(2, "big")))
    elif prof.session_id_location.value == "its_session_info":
        tlvs.append(Tlv(Tag.ITS_SESSION_INFO, bytes((sid, 2))))
    else:
        tlvs.append(Tlv(Tag.ITS_SESSION_INFO, (sid << 1).to_bytes(2, "big")))
    pdu = DeliverSm(
        source_addr=MSISDN, destination_addr="123", short_message=b"1", optional_parameters=tuple(tlvs)
    )
    assert await rig.smsc.deliver(pdu, timeout=WAIT) == 0
    await phone.nothing()
    assert (await phone.reply("1")).text.startswith("Choose a bundle type")
    await session.release()
    await settled(rig, 1)


async def test_release_while_the_handler_works_sends_nothing_after(make_rig: MakeRig) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(context: object) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    rig = await make_rig(handlers={"buy_package": slow, "gift_data": slow, "balance": slow})
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    await phone.session.reply("4", timeout=WAIT)
    await asyncio.wait_for(started.wait(), WAIT)
    await phone.session.release()
    await asyncio.wait_for(cancelled.wait(), WAIT)
    await settled(rig, 1)
    assert rig.service.journeys[-1].outcome == "ended_by_network"
    await phone.nothing()
    assert [m.op for m in phone.wire] == [Op.USSR_REQ]


# --- dialled codes ---------------------------------------------------------------------------------


async def test_a_code_with_letters_gets_the_unknown_service_screen(rig: Rig) -> None:
    """``*123*abc#`` is no TS 22.030 service code (a handset would not send it; a USSD gateway
    might): the dialogue ends at once with the unknown-service screen."""
    dial = UssdMessage(Op.PSSR_IND, MSISDN, "*123*abc#", "123", 9, 0, service_code="*123*abc#")
    assert await rig.smsc.deliver(to_deliver(dial, rig.handsets.profile), timeout=WAIT) == 0
    await settled(rig, 1)
    assert rig.service.journeys[-1].outcome == "unknown_service"


@pytest.mark.parametrize("code", ["*123*99999#", "*123*1*99*7*0*00#", "*123*#", "*123**#"])
async def test_shortcut_codes_with_bad_parameters_show_the_menu_with_an_error(rig: Rig, code: str) -> None:
    phone = rig.handsets.phone(MSISDN)
    screen = await phone.dial(code)
    assert not screen.final and screen.text.startswith("Invalid choice, please try again.\nData shop")
    assert (await phone.reply("4")).text == "Your balance: 120 KES, 350MB."
    await settled(rig, 1)


# --- load ------------------------------------------------------------------------------------------


async def test_burst_of_500_dialogues_leaves_no_session(rig: Rig) -> None:
    async def one(i: int) -> str:
        phone = rig.handsets.phone(f"2547001{i:05d}")
        screen = await phone.walk("*123#", "4")
        return screen.text

    texts = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(500))), 60)
    assert set(texts) == {"Your balance: 120 KES, 350MB."}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    service = rig.service
    while len(service.journeys) < 500 or service.live_dialogues or len(service._engine) or service._tasks:
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    assert rig.service._engine.get_timer() is None
    assert not rig.service._tasks and not rig.service._notify_waiters
    assert rig.smsc.ussd_sessions == []


@pytest.mark.parametrize(
    ("body", "screen"),
    [
        ("CON\r\nWelcome\r\n1. Go", Screen("Welcome\n1. Go", final=False)),
        ("END\r\nBye\r\n", Screen("Bye", final=True)),
        ("CON Pick\r\n1. A\r\n2. B", Screen("Pick\n1. A\n2. B", final=False)),
    ],
)
def test_http_app_crlf_line_breaks_are_line_breaks(body: str, screen: Screen) -> None:
    assert parse_response(body) == screen


# --- network-initiated ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["standard", "6d", "mica"])
async def test_push_and_notify_to_a_handset_in_a_dialogue_of_its_own(make_rig: MakeRig, profile: str) -> None:
    rig = await make_rig(profile=PROFILES[profile])
    own = rig.handsets.phone(MSISDN)
    await own.dial("*123#")  # the subscriber is in the shop when the campaign reaches them
    pushed = rig.handsets.phone(MSISDN)
    pushed.accept_pushes()
    key = await rig.service.push_menu(MSISDN, "confirm", variables={"mb": "500", "price": "60"})
    session = await pushed.pushed_session()
    assert key.session_id == session.session_id != own.session.session_id
    assert (await pushed.screen()).text.startswith("Buy 500MB")
    assert await asyncio.wait_for(rig.service.notify(MSISDN, "Bonus 50MB", wait_confirm=True), WAIT)
    assert (await own.reply("4")).text == "Your balance: 120 KES, 350MB."
    assert (await pushed.reply("2")).text == "No bundle was bought. Thank you."
    await settled(rig, 3)
    assert rig.billing.purchases == []
    assert sorted(j.outcome for j in rig.service.journeys) == ["completed", "completed", "confirmed"]

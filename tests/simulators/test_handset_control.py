"""The testers' handsets over the SMSC simulator's control channel (simulators/smsc_control.py,
simulators/handset_hub.py) and ``tgw handset sms / inbox / stk`` (simulators/cli.py).

Nothing is stubbed: the SMSC simulator listens on loopback with its control channel; the gateway is a
real ``gateway.smpp.client.SmppClient`` bound over TCP with ``gateway.ussd.UssdService`` serving the
shipped ``configs/ussd/menus.yaml`` and ``gateway.stk.StkPushService`` pushing DSTK offers secured
with the keys of ``configs/sim_keys.example.yaml``, whose subscribers the control channel gives a
handset with a SIM card holding the same keys (so the dialogs are the real ones the card shows). The
gateway confirms an accepted offer with an SMS, as the campaign does. The control channel is driven
over HTTP with aiohttp's client (its Server-Sent Events stream included) and with ``ControlClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import PackageOption, StkOffer, StkPushService
from gateway.stk.events import StkAnswerReceived
from gateway.stk.keystore import KeyStore
from gateway.stk.offer import DialogStyle
from gateway.storage import SqliteStore
from gateway.ussd import UssdContext, UssdService, load_menus
from protocols.errors import DecodeError
from protocols.gsm.split import decode_short_message
from protocols.gsm.udh import decode_udh
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.stk.dstk import StkOutcome
from protocols.ussd import get_profile, is_ussd
from simulators.cli import main
from simulators.handset import LogKind
from simulators.smsc import SmscSimulator
from simulators.smsc_control import ControlClient, ControlError, SmscControl

ROOT = Path(__file__).resolve().parents[2]
SIM_KEYS = ROOT / "configs" / "sim_keys.example.yaml"
MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
TGW = str(Path(sys.executable).parent / "tgw")
SYSTEM_ID = "gateway"
PASSWORD = "secret"
SHORT_CODE = "12345"
PHONE = "254700000001"  # AES card, yes/no GET INKEY
OLD_PHONE = "254700000002"  # 3DES card, a handset without yes/no GET INKEY: DISPLAY TEXT
TESTER = "254711000001"  # named with --handsets: no SIM applet
WAIT = 15.0
OPTIONS = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


class Gateway:
    """The gateway's side: ESME, USSD menus, STK push; it confirms an accepted offer by SMS."""

    def __init__(self, smsc: SmscSimulator, store: Path) -> None:
        config = ClientConfig(
            "127.0.0.1",
            smsc.address[1],
            SYSTEM_ID,
            PASSWORD,
            window=20,
            response_timeout=5.0,
            connect_timeout=5.0,
            reconnect_initial=0.05,
            reconnect_max=0.5,
        )
        self.client = SmppClient(config)
        profile = get_profile("standard")
        handlers = {"buy_package": self.buy_package, "gift_data": self.gift_data, "balance": self.balance}
        providers = {"my_offers": self.my_offers}
        menus = load_menus(MENUS, profile=profile, handlers=handlers, providers=providers)
        self.ussd = UssdService(self.client, profile, menus, handlers, providers, per_reply_timeout=30)
        self.store = SqliteStore(store)
        self.stk = StkPushService(self.client, KeyStore.load(SIM_KEYS), self.store, reply_to=SHORT_CODE)
        self.stk.add_listener(self._on_stk)
        self.client.add_mo_handler(self._on_mo)
        self.answers: list[StkAnswerReceived] = []
        self.texts: list[tuple[str, str, str]] = []  # MO texts: (from, to, text)
        self.parts: list[DeliverSm | DataSm] = []
        self.purchases: list[tuple[str, str]] = []
        self.offers: dict[str, StkOffer] = {}

    async def start(self) -> Gateway:
        await self.ussd.start()
        await asyncio.wait_for(self.client.start(), WAIT)
        return self

    async def close(self) -> None:
        await asyncio.wait_for(self.ussd.close(), WAIT)
        await asyncio.wait_for(self.client.close(drain_timeout=1.0), WAIT)
        self.store.close()

    async def buy_package(self, context: UssdContext) -> str:
        self.purchases.append((context.msisdn, str(context.args["mb"])))
        return f"Thank you. {context.args['mb']}MB added to {context.msisdn}."

    async def gift_data(self, context: UssdContext) -> str:
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: UssdContext) -> str:
        return f"Balance of {context.msisdn}: 120 KES, 350MB."

    async def my_offers(self, context: UssdContext) -> list[dict[str, object]]:
        return [{"id": "o-1", "name": "Night owl", "mb": 1000, "price": 50}]

    def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        if is_ussd(pdu) or not isinstance(pdu, DeliverSm):
            return
        body = pdu.short_message
        if pdu.esm_class & 0x40:
            body = body[decode_udh(body)[1] :]
        try:
            text = decode_short_message(pdu.data_coding, body)
        except DecodeError:
            return  # the SIM applet's answer (8-bit, secured): StkPushService takes it
        self.parts.append(pdu)
        self.texts.append((pdu.source_addr, pdu.destination_addr, text))

    async def push(self, offer_id: str, msisdn: str, style: DialogStyle = DialogStyle.CONFIRM) -> None:
        offer = StkOffer(offer_id, msisdn, OPTIONS, style=style)
        self.offers[offer_id] = offer
        await asyncio.wait_for(self.stk.push(offer, time.time()), WAIT)

    async def _on_stk(self, event: object) -> None:
        if not isinstance(event, StkAnswerReceived):
            return
        self.answers.append(event)
        offer = self.offers[event.offer_id]
        if event.outcome is StkOutcome.ACCEPTED:
            bought = offer.largest
        elif event.outcome is StkOutcome.ITEM_CHOSEN:
            bought = offer.options[event.item_id - 1]
        else:
            return
        text = f"Your {bought.volume_mb} MB package is active. Thank you!"
        await self.client.send_text(SHORT_CODE, event.msisdn, text)

    async def answer(self, count: int = 1) -> StkAnswerReceived:
        await until(lambda: len(self.answers) >= count, "the SIM applet's answer")
        return self.answers[count - 1]


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class Bed:
    def __init__(self, smsc: SmscSimulator, control: SmscControl, port: int, gateway: Gateway) -> None:
        self.smsc = smsc
        self.control = control
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.gateway = gateway
        self.http = aiohttp.ClientSession()

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, data = await self.call("GET", path)
        assert status == 200, data
        return data

    async def post(self, path: str, body: Any) -> Any:
        status, data = await self.call("POST", path, body)
        assert status == 200, data
        return data

    @contextlib.asynccontextmanager
    async def events(self, msisdn: str) -> AsyncIterator[EventReader]:
        async with self.http.get(f"{self.base}/handsets/{msisdn}/events") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            yield EventReader(response)


class EventReader:
    """Server-Sent Events from an aiohttp response (HTML Living Standard 9.2.6)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, kind: str | None = None, timeout: float = WAIT) -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while True:
                event = await self._one()
                if kind is None or event[0] == kind:
                    return event

    async def _one(self) -> tuple[str, dict[str, Any]]:
        name, data = "message", []
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("the event stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    return name, json.loads("\n".join(data))
                name = "message"
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


@contextlib.asynccontextmanager
async def open_bed(tmp_path: Path, **control_kwargs: Any) -> AsyncIterator[Bed]:
    smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=7)
    await smsc.start("127.0.0.1", 0)
    control = SmscControl(smsc, handsets=[TESTER], sim_keys=SIM_KEYS, **control_kwargs)
    _, port = await control.start("127.0.0.1", 0)
    gateway = await Gateway(smsc, tmp_path / "gateway.sqlite").start()
    bed = Bed(smsc, control, port, gateway)
    try:
        yield bed
    finally:
        await bed.http.close()
        await gateway.close()
        await control.stop()
        await smsc.stop()


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    async with open_bed(tmp_path) as opened:
        yield opened


# --- handsets ---------------------------------------------------------------------------------------


async def test_handsets_are_listed_and_switched_on_at_first_use(bed: Bed) -> None:
    listed = (await bed.get("/handsets"))["handsets"]
    assert [(h["msisdn"], h["sim"]) for h in listed] == [
        (TESTER, False),
        (PHONE, True),
        (OLD_PHONE, True),  # "+254700000002" in the key file
        ("254700000003", True),
    ]
    state = await bed.get("/handsets/+254799000009")
    assert state == {
        "msisdn": "254799000009",
        "sim": False,
        "inbox": [],
        "sent": [],
        "dialog": None,
        "last_event": 0,
    }
    assert len((await bed.get("/handsets"))["handsets"]) == 5
    status, error = await bed.call("GET", "/handsets/not-a-number/sms")
    assert (status, error) == (
        400,
        {"error": "'not-a-number' is no MSISDN: 1 to 20 digits, optionally after a +"},
    )


async def test_sms_both_ways(bed: Bed) -> None:
    sent = (await bed.post(f"/handsets/{PHONE}/sms", {"to": SHORT_CODE, "text": "BUY 500"}))["sent"]
    assert sent["to"] == SHORT_CODE and sent["parts"] == 1 and sent["status"] == 0
    await until(lambda: bed.gateway.texts == [(PHONE, SHORT_CODE, "BUY 500")], "the MO text")
    long_text = "Zażółć gęślą jaźń. " * 5  # not GSM 7-bit: UCS-2, 95 characters in two parts
    await bed.post(f"/handsets/{PHONE}/sms", {"to": SHORT_CODE, "text": long_text})
    await until(lambda: len(bed.gateway.parts) == 3, "both parts")
    assert [pdu.data_coding for pdu in bed.gateway.parts[1:]] == [8, 8]
    assert all(pdu.esm_class & 0x40 for pdu in bed.gateway.parts[1:])  # a concatenation UDH each
    assert "".join(text for _, _, text in bed.gateway.texts[1:]) == long_text

    box = await bed.get(f"/handsets/{PHONE}/sms")
    assert box["inbox"] == [] and [m["id"] for m in box["sent"]] == [1, 2]
    status, error = await bed.call("GET", f"/handsets/{PHONE}/sms?after=2&timeout=0.2")
    assert (status, error) == (504, {"error": "no SMS within 0.2 s"})

    async def deliver_later() -> None:
        await asyncio.sleep(0.2)
        await bed.gateway.client.send_text(SHORT_CODE, PHONE, "Hello from the gateway")

    task = asyncio.ensure_future(deliver_later())
    box = await bed.get(f"/handsets/{PHONE}/sms?after=2&timeout=10")  # waits for it
    await task
    assert box["sent"] == []
    [received] = box["inbox"]
    assert (received["id"], received["from"], received["text"]) == (3, SHORT_CODE, "Hello from the gateway")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", received["at"])

    for body, reason in [
        ({"to": SHORT_CODE}, "'text' must be a str"),
        ({"to": SHORT_CODE, "text": ""}, "the text is empty"),
        ({"to": "", "text": "x"}, "is no address"),
        ({"to": SHORT_CODE, "text": "x" * 2001}, "at most 2000 characters"),
    ]:
        status, error = await bed.call("POST", f"/handsets/{PHONE}/sms", body)
        assert status == 400 and reason in error["error"], (body, error)


async def test_sms_errors_without_a_gateway(tmp_path: Path) -> None:
    smsc = SmscSimulator({SYSTEM_ID: PASSWORD})
    await smsc.start("127.0.0.1", 0)
    control = SmscControl(smsc)
    _, port = await control.start("127.0.0.1", 0)
    try:
        async with ControlClient("127.0.0.1", port) as client:
            with pytest.raises(ControlError, match="no gateway bound") as unbound:
                await client.send_sms(PHONE, SHORT_CODE, "hello")
            assert unbound.value.status == 503
            assert await client.stk(PHONE) is None  # no key file: no SIM applet, never a dialog
            assert (await client.state(PHONE))["sim"] is False
    finally:
        await control.stop()
        await smsc.stop()


# --- USSD -------------------------------------------------------------------------------------------


async def test_ussd_screens_reach_the_event_stream(bed: Bed) -> None:
    async with bed.events(PHONE) as events:
        kind, state = await events.next()
        assert kind == "state" and state["msisdn"] == PHONE and state["sim"] is True
        opened = await bed.post("/ussd/dial", {"msisdn": PHONE, "code": "*123#"})
        session = opened["session"]
        _, event = await events.next("ussd")
        assert event["session"] == session and event["code"] == "*123#"
        assert event["network_initiated"] is False
        assert event["screen"]["kind"] == "continue"
        assert event["screen"]["text"].startswith("Data shop\n1. Buy data bundle")
        await bed.post(f"/ussd/sessions/{session}/reply", {"text": "4"})
        _, event = await events.next("ussd")
        assert event["screen"] == {
            "text": f"Balance of {PHONE}: 120 KES, 350MB.",
            "kind": "final",
            "label": "final",
            "final": True,
            "sequence": event["screen"]["sequence"],
        }
        # the long poll still sees every screen: the stream does not consume them
        assert (await bed.get(f"/ussd/sessions/{session}/screen?timeout=1"))["kind"] == "continue"
        assert (await bed.get(f"/ussd/sessions/{session}/screen?timeout=1"))["final"] is True

        # a menu the gateway opens (network-initiated USSR) shows up on the stream with its handle
        await bed.gateway.ussd.push_menu(PHONE, "main")
        _, event = await events.next("ussd")
        assert event["network_initiated"] is True and event["screen"]["kind"] == "continue"
        await bed.post(f"/ussd/sessions/{event['session']}/reply", {"text": "5"})
        _, event = await events.next("ussd")
        assert event["screen"]["text"].startswith("Dial *123# for bundles")
        answered = bed.control.hub.get(PHONE).entries(LogKind.USSD_ANSWERED)
        assert [entry.detail for entry in answered] == ["4", "5"]  # the handset's log sees the replies


async def test_dial_a_purchase_code(bed: Bed) -> None:
    async with ControlClient("127.0.0.1", bed.port) as client:
        opened = await client.dial(TESTER, "*123*500#")
        screen = await client.screen(opened["session"], WAIT)
    assert screen["text"] == f"Thank you. 500MB added to {TESTER}." and screen["final"] is True
    assert bed.gateway.purchases == [(TESTER, "500")]


# --- SIM toolkit ------------------------------------------------------------------------------------


async def test_a_dstk_offer_answered_ok_reaches_the_gateway(bed: Bed) -> None:
    async with bed.events(PHONE) as events:
        await events.next("state")
        await bed.gateway.push("web-1", PHONE)
        _, shown = await events.next("stk-shown")
        dialog = (await bed.get(f"/handsets/{PHONE}/stk?timeout=5"))["dialog"]
        assert dialog == {**shown, "expires_in": dialog["expires_in"]}
        assert dialog["command"] == "GET INKEY" and dialog["kind"] == "yes_no"
        assert dialog["text"] == "Buy 500 MB now, pay later? 4.00 USD"
        assert dialog["items"] == [] and dialog["input"] is None
        assert 100 < dialog["expires_in"] <= 120
        answered = await bed.post(f"/handsets/{PHONE}/stk/answer", {"action": "ok", "dialog": dialog["id"]})
        assert answered == {"answered": {"id": dialog["id"], "action": "ok"}}
        _, closed = await events.next("stk-closed")
        assert closed["id"] == dialog["id"] and closed["by"] == "user answered"
        answer = await bed.gateway.answer()
        assert (answer.offer_id, answer.msisdn, answer.outcome) == ("web-1", PHONE, StkOutcome.ACCEPTED)
        _, sms = await events.next("sms")
        assert sms["direction"] == "in" and sms["from"] == SHORT_CODE
        assert sms["text"] == "Your 500 MB package is active. Thank you!"
    assert (await bed.get(f"/handsets/{PHONE}/stk"))["dialog"] is None


async def test_the_sim_apdus_can_be_traced(bed: Bed) -> None:
    """``tgw sim smsc --pcap`` traces each handset's APDUs: the ENVELOPE of the SMS-PP download, the
    FETCH of the dialog, the TERMINAL RESPONSE with the answer (ETSI TS 102 221 CLA 80)."""
    traced: list[tuple[str, bytes]] = []
    bed.control.hub.trace_apdus(lambda msisdn, apdu: traced.append((msisdn, apdu)))
    async with bed.events(PHONE) as events:
        await events.next("state")
        await bed.gateway.push("trace-1", PHONE)
        _, shown = await events.next("stk-shown")
        await bed.post(f"/handsets/{PHONE}/stk/answer", {"action": "ok", "dialog": shown["id"]})
        await bed.gateway.answer()
    instructions = [apdu[:2] for msisdn, apdu in traced if msisdn == PHONE]
    assert instructions[:3] == [b"\x80\xc2", b"\x80\x12", b"\x80\x14"]
    envelope = next(apdu for _, apdu in traced if apdu[:2] == b"\x80\xc2")
    assert envelope[4] == len(envelope) - 7  # Lc, then the data, then the status word


async def test_menus_display_text_and_refused_answers(bed: Bed) -> None:
    answer_path = f"/handsets/{PHONE}/stk/answer"
    status, error = await bed.call("POST", answer_path, {"action": "ok"})
    assert (status, error) == (409, {"error": "no SIM toolkit dialog is open"})
    await bed.gateway.push("menu-1", PHONE, DialogStyle.MENU)
    dialog = (await bed.get(f"/handsets/{PHONE}/stk?timeout=10"))["dialog"]
    assert dialog["command"] == "SELECT ITEM" and dialog["kind"] == "select"
    assert dialog["items"] == [{"id": 1, "text": "100 MB 1.00"}, {"id": 2, "text": "500 MB 4.00"}]
    for body, status_wanted, reason in [
        ({"action": "ok"}, 400, "SELECT ITEM: choose an item (action item) or cancel"),
        ({"action": "item", "item": 9}, 400, "item 9 is not among the items 1, 2"),
        ({"action": "input", "text": "1"}, 400, "SELECT ITEM: choose an item"),
        ({"action": "press"}, 400, "unknown action 'press'"),
        ({"action": "item", "item": "2"}, 400, "'item' must be a int"),
        ({"action": "item", "item": 2, "dialog": dialog["id"] + 1}, 409, "is closed"),
    ]:
        status, error = await bed.call("POST", answer_path, body)
        assert status == status_wanted and reason in error["error"], (body, error)
    await bed.post(answer_path, {"action": "item", "item": 2, "dialog": dialog["id"]})
    answer = await bed.gateway.answer()
    assert (answer.outcome, answer.item_id) == (StkOutcome.ITEM_CHOSEN, 2)
    await until(lambda: bool(bed.control.hub.get(PHONE).received), "the confirmation SMS")

    # the old handset shows DISPLAY TEXT; Cancel declines it
    await bed.gateway.push("old-1", OLD_PHONE)
    dialog = (await bed.get(f"/handsets/{OLD_PHONE}/stk?timeout=10"))["dialog"]
    assert (dialog["command"], dialog["kind"]) == ("DISPLAY TEXT", "display")
    assert dialog["text"] == "Buy 500 MB now, pay later? 4.00 USD Press OK to buy"
    status, error = await bed.call(
        "POST", f"/handsets/{OLD_PHONE}/stk/answer", {"action": "input", "text": "1"}
    )
    assert (status, error["error"]) == (400, "DISPLAY TEXT takes no input: answer ok or cancel")
    await bed.post(f"/handsets/{OLD_PHONE}/stk/answer", {"action": "cancel"})
    answer = await bed.gateway.answer(2)
    assert (answer.msisdn, answer.outcome) == (OLD_PHONE, StkOutcome.DECLINED)
    status, error = await bed.call("GET", f"/handsets/{OLD_PHONE}/stk?timeout=0.1")
    assert (status, error) == (504, {"error": "no SIM toolkit dialog within 0.1 s"})


async def test_a_dialog_nobody_answers_times_out(tmp_path: Path) -> None:
    async with open_bed(tmp_path, dialog_timeout=0.3) as bed, bed.events(PHONE) as events:
        await events.next("state")
        await bed.gateway.push("late-1", PHONE)
        _, shown = await events.next("stk-shown")
        assert shown["expires_in"] <= 0.3
        _, closed = await events.next("stk-closed")
        assert closed == {
            "id": shown["id"],
            "by": "terminal answered",
            "detail": "no response from the user",
            "result": 0x12,
        }
        answer = await bed.gateway.answer()
        assert answer.outcome is StkOutcome.NO_RESPONSE
        status, error = await bed.call("POST", f"/handsets/{PHONE}/stk/answer", {"action": "ok"})
        assert (status, error) == (409, {"error": "no SIM toolkit dialog is open"})


async def test_requests_from_another_origin_are_refused(bed: Bed) -> None:
    body = {"to": SHORT_CODE, "text": "hi"}
    status, error = await bed.call(
        "POST", f"/handsets/{PHONE}/sms", body, headers={"Origin": "http://evil.example"}
    )
    assert (status, error) == (403, {"error": "requests from http://evil.example are not accepted"})
    assert bed.gateway.texts == []
    status, _ = await bed.call(
        "POST", f"/handsets/{PHONE}/sms", body, headers={"Origin": f"http://127.0.0.1:{bed.port}"}
    )
    assert status == 200


async def test_a_host_name_it_does_not_serve_is_refused_even_from_its_own_origin(bed: Bed) -> None:
    """DNS rebinding: a page whose name now points at this machine is same-origin to the browser."""
    body = {"to": SHORT_CODE, "text": "hi"}
    rebound = {"Host": f"evil.example:{bed.port}", "Origin": f"http://evil.example:{bed.port}"}
    status, error = await bed.call("POST", f"/handsets/{PHONE}/sms", body, headers=rebound)
    assert status == 403 and "'evil.example:" in error["error"] and "--allow-host" in error["error"]
    status, _ = await bed.call("GET", f"/handsets/{PHONE}/sms", headers={"Host": "evil.example"})
    assert status == 403  # reading the inbox is refused too
    assert bed.gateway.texts == []
    for host in (f"localhost:{bed.port}", f"phone.localhost:{bed.port}", f"[::1]:{bed.port}", "127.0.0.1"):
        status, _ = await bed.call("GET", f"/handsets/{PHONE}/sms", headers={"Host": host})
        assert status == 200, host


async def test_names_a_tester_allows_are_served(tmp_path: Path) -> None:
    async with open_bed(tmp_path, allowed_hosts=["Lab-SMSC.example."]) as bed:
        for host, expected in (
            ("lab-smsc.example", 200),
            (f"LAB-SMSC.example:{bed.port}", 200),
            ("x.example", 403),
        ):
            status, _ = await bed.call("GET", f"/handsets/{PHONE}/sms", headers={"Host": host})
            assert status == expected, host


# --- tgw handset sms / inbox / stk ------------------------------------------------------------------


async def tgw(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_tgw_handset_sms_and_inbox(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    sim = ("--sim", f"127.0.0.1:{bed.port}", "--msisdn", PHONE)
    assert await tgw("handset", "sms", *sim) == 0
    assert capsys.readouterr().out == f"(no SMS received by {PHONE})\n"
    assert await tgw("handset", "sms", *sim, "--to", SHORT_CODE, "--text", "BUY 100") == 0
    assert capsys.readouterr().out == f"sent to {SHORT_CODE} (1 part(s)): BUY 100\n"
    await until(lambda: bed.gateway.texts == [(PHONE, SHORT_CODE, "BUY 100")], "the MO text")
    assert await tgw("handset", "sms", *sim, "--text", "no destination") == 64
    assert capsys.readouterr().err == "tgw: give both --to and --text to send an SMS\n"

    waiting = asyncio.ensure_future(tgw("handset", "inbox", *sim, "--wait", "10"))
    # "--wait" is the next SMS after those there when it asked: send only once it waits (a fixed
    # sleep lost that race on a loaded machine, and the CLI rightly waited for a later one)
    await until(lambda: bed.control.hub.get(PHONE).waiting > 0, "the inbox's long poll")
    await bed.gateway.client.send_text(SHORT_CODE, PHONE, "100 MB added.\nThank you.")
    assert await asyncio.wait_for(waiting, WAIT) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(rf"--- SMS 2 from {SHORT_CODE} at \S+Z ---\n100 MB added\.\nThank you\.\n", out), out
    assert await tgw("handset", "inbox", *sim) == 0
    assert "100 MB added." in capsys.readouterr().out
    assert await tgw("handset", "inbox", *sim, "--wait", "0.2") == 4
    assert capsys.readouterr().err == f"tgw: no SMS to {PHONE} within 0.2 s\n"


async def test_tgw_handset_stk(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    sim = ("--sim", f"127.0.0.1:{bed.port}", "--msisdn", PHONE)
    assert await tgw("handset", "stk", *sim) == 4
    assert capsys.readouterr().err == f"tgw: no SIM toolkit dialog is open on {PHONE}\n"
    await bed.gateway.push("cli-1", PHONE, DialogStyle.MENU)
    assert await tgw("handset", "stk", *sim, "--wait", "10") == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"--- SIM toolkit dialog 1: SELECT ITEM, \d+ s left ---\n"
        r"Buy data\n  1\. 100 MB 1\.00\n  2\. 500 MB 4\.00\n"
        r"\[answer with --item N or --cancel \(Back\)\]\n",
        out,
    ), out
    assert await tgw("handset", "stk", *sim, "--ok") == 64
    assert "choose an item" in capsys.readouterr().err
    assert await tgw("handset", "stk", *sim, "--item", "1") == 0
    assert capsys.readouterr().out.endswith("> item 1\n")
    answer = await bed.gateway.answer()
    assert (answer.outcome, answer.item_id) == (StkOutcome.ITEM_CHOSEN, 1)
    handset = bed.control.hub.get(PHONE)
    await until(lambda: bool(handset.entries(LogKind.MO_SENT)), "the card's answer taken")  # not busy

    await bed.gateway.push("cli-2", PHONE)
    assert await tgw("handset", "stk", *sim, "--wait", "10", "--ok") == 0
    out = capsys.readouterr().out
    assert out.startswith("--- SIM toolkit dialog 2: GET INKEY (yes/no), ")
    assert "Buy 500 MB now, pay later? 4.00 USD\n[answer with --ok (Yes) or --cancel (No)]\n> OK\n" in out
    assert (await bed.gateway.answer(2)).outcome is StkOutcome.ACCEPTED
    await until(lambda: len(handset.received) == 2, "both confirmations")
    assert await tgw("handset", "sms", *sim) == 0
    out = capsys.readouterr().out
    assert "Your 100 MB package is active." in out and "Your 500 MB package is active." in out


@pytest.mark.e2e
async def test_tgw_sim_smsc_switches_the_key_files_handsets_on(free_port: Callable[[], int]) -> None:
    proc = await asyncio.create_subprocess_exec(
        TGW,
        "sim",
        "smsc",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--account",
        f"{SYSTEM_ID}:{PASSWORD}",
        "--control",
        "127.0.0.1:0",
        "--handsets",
        f"{TESTER},254711000002",
        "--sim-keys",
        str(SIM_KEYS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(3)]
        match = re.fullmatch(r"SMSC control channel on http://127\.0\.0\.1:(\d+)\n", lines[1])
        assert match, lines
        assert lines[2] == f"web handset on http://127.0.0.1:{match.group(1)}/\n"
        async with ControlClient("127.0.0.1", int(match.group(1))) as client:
            handsets = await client.handsets()
        assert [(h["msisdn"], h["sim"]) for h in handsets] == [
            (TESTER, False),
            ("254711000002", False),
            (PHONE, True),
            (OLD_PHONE, True),
            ("254700000003", True),
        ]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.communicate(), 30)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


def test_tgw_sim_smsc_refuses_a_bad_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "keys.yaml"
    bad.write_text("version: 1\nsubscribers:\n  - {msisdn: '1'}\n", encoding="utf-8")
    argv = ["sim", "smsc", "--listen", "127.0.0.1:0", "--account", "a:b", "--control", "127.0.0.1:0"]
    assert main([*argv, "--sim-keys", str(bad)]) == 64  # in the main thread: it sets signal handlers
    err = capsys.readouterr().err
    assert err.startswith(f"tgw: {bad}:3: ") and err.count("\n") == 1, err

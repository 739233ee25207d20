"""The web handset page (simulators/web_handset.py) and the tester handsets behind it
(simulators/handset_hub.py).

The page is checked as served by the control channel (its Content-Security-Policy and nonce) and as
text: it loads nothing from elsewhere and puts nothing on the page as HTML. The tester handsets get
the SIM toolkit dialogs the gateway never sends (GET INPUT, a GET INKEY for one key), pushed the way
the gateway pushes (``stk_sim_kit``: a DstkOffer in a TS 102 225 command packet, submit_sm from a real
ESME through the SMSC simulator), and their answers are read back from the card's MO.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from stk_sim_kit import (
    DISPLAY,
    GATEWAY,
    SELECT,
    SPI_POR_REPORT,
    YES_NO,
    command_packet,
    make_card,
    offer_message,
    parse_answer,
)

from gateway.smpp.client import SmppClient
from gateway.stk.keystore import KeyStore
from protocols.errors import ConfigError, LocalProtocolError
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.stk.commands import GetInkey, GetInkeyQualifier, GetInput, GetInputQualifier, ProactiveCommand
from protocols.stk.dstk import DstkAnswer, StkOutcome
from protocols.stk.ota import COMMAND_UDH
from protocols.stk.terminal import TerminalProfileFeature
from protocols.stk.tlv import Duration, ResponseLength, TextString, TimeUnit
from simulators.handset import DEFAULT_PROFILE, LogKind
from simulators.handset_hub import (
    DialogError,
    HandsetHub,
    HubFull,
    InteractiveHandset,
    describe_command,
)
from simulators.smsc import SmscSimulator
from simulators.smsc_control import SmscControl
from simulators.web_handset import PAGE, page_html

MSISDN = "254700000009"
WAIT = 10.0

PIN = GetInput(
    TextString.of("Enter your PIN"),
    ResponseLength(4, 6),
    GetInputQualifier.HIDDEN,
    default_text=TextString.of("0000"),
)
NAME = GetInput(TextString.of("Your name?"), ResponseLength(1, 10), GetInputQualifier.ALPHABET)
DIGIT = GetInkey(
    TextString.of("Press 1 to buy"), GetInkeyQualifier.NONE, duration=Duration(TimeUnit.SECONDS, 40)
)


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.005)


# --- the page -----------------------------------------------------------------------------------------


async def test_the_page_is_served_with_a_fresh_nonce(smsc: SmscSimulator) -> None:
    control = SmscControl(smsc)
    _, port = await control.start("127.0.0.1", 0)
    nonces = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
                    policy = response.headers["Content-Security-Policy"]
                    html = await response.text()
                match = re.fullmatch(
                    r"default-src 'none'; script-src 'nonce-(\S+)'; style-src 'nonce-\1'; connect-src 'self'; "
                    r"img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                    policy,
                )
                assert match, policy
                nonce = match.group(1)
                assert html == page_html(nonce)
                assert html.count(f'nonce="{nonce}"') == 2  # the one style and the one script
                nonces.append(nonce)
    finally:
        await control.stop()
    assert nonces[0] != nonces[1]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    assert re.findall(r"""(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", PAGE) == ["data:,"]
    assert not re.search(r"https?:|//[a-z]", PAGE.replace("http://www.w3.org", ""), re.IGNORECASE)
    assert "@import" not in PAGE and "url(" not in PAGE
    assert PAGE.count("<script") == 1 and PAGE.count("<style") == 1
    assert not re.search(r"\sstyle=|\son[a-z]+=", PAGE)  # no inline style or handler the CSP would block


def test_the_page_puts_data_on_the_page_as_text_only() -> None:
    script = PAGE[PAGE.index("<script") : PAGE.index("</script>")]
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
        "srcdoc",
    ):
        assert sink not in script, sink
    assert "textContent" in script
    # every element the script looks up exists in the markup
    for element_id in set(re.findall(r'\$\("([a-z-]+)"\)', script)):
        assert f'id="{element_id}"' in PAGE, element_id
    for view in ("messages", "phone", "log"):
        assert f'id="view-{view}"' in PAGE and f'id="tab-{view}"' in PAGE


# --- what a dialog shows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "described"),
    [
        (DISPLAY, {"command": "DISPLAY TEXT", "kind": "display", "text": "Buy 1GB for 5.00? Press OK"}),
        (YES_NO, {"command": "GET INKEY", "kind": "yes_no", "text": "Buy 1GB for 5.00?"}),
        (
            DIGIT,
            {
                "command": "GET INKEY",
                "kind": "key",
                "text": "Press 1 to buy",
                "input": {"min": 1, "max": 1, "digits_only": True, "hidden": False},
            },
        ),
        (
            PIN,
            {
                "command": "GET INPUT",
                "kind": "input",
                "text": "Enter your PIN",
                "input": {"min": 4, "max": 6, "digits_only": True, "hidden": True, "default": "0000"},
            },
        ),
        (
            SELECT,
            {
                "command": "SELECT ITEM",
                "kind": "select",
                "text": "Data bundles",
                "items": [
                    {"id": 1, "text": "100MB 1.00"},
                    {"id": 2, "text": "200MB 1.80"},
                    {"id": 3, "text": "500MB 4.00"},
                    {"id": 4, "text": "1000MB 7.00"},
                ],
            },
        ),
    ],
)
def test_describe_command(command: ProactiveCommand, described: dict[str, object]) -> None:
    assert describe_command(command) == {"items": [], "input": None, **described}


# --- tester handsets with a raw push ------------------------------------------------------------------


class Phone:
    """A tester handset with the kit's card, and the gateway's ESME that pushes to it."""

    def __init__(self, smsc: SmscSimulator, esme: SmppClient, dialog_timeout: float = 60.0) -> None:
        self.handset = InteractiveHandset(
            MSISDN, make_card(None), DEFAULT_PROFILE, smsc, dialog_timeout=dialog_timeout
        )
        self.esme = esme
        self.mo: list[DeliverSm | DataSm] = []
        esme.add_mo_handler(self.mo.append)
        self.cntr = 0

    async def push(self, command: ProactiveCommand, offer_id: str) -> dict[str, object]:
        self.cntr += 1
        packet = command_packet(offer_message(command, offer_id=offer_id), self.cntr, SPI_POR_REPORT)
        pdu = SubmitSm(
            source_addr=GATEWAY,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=MSISDN,
            esm_class=0x40,
            protocol_id=0x7F,
            data_coding=0xF6,
            short_message=COMMAND_UDH + packet,
        )
        await asyncio.wait_for(self.esme.submit(pdu), WAIT)
        await until(lambda: self.handset.dialog() is not None, "the dialog")
        dialog = self.handset.dialog()
        assert dialog is not None
        return dialog

    async def answer(self, count: int) -> DstkAnswer:
        await until(lambda: len(self.mo) >= count, "the card's answer")
        pdu = self.mo[count - 1]
        assert isinstance(pdu, DeliverSm)
        return parse_answer(pdu.short_message, SPI_POR_REPORT)[1]


@pytest.fixture
async def phone(smsc: SmscSimulator, esme: SmppClient) -> AsyncIterator[Phone]:
    made = Phone(smsc, esme)
    yield made
    await made.handset.close()


async def test_get_input_takes_what_the_command_allows(phone: Phone) -> None:
    handset = phone.handset
    subscription = handset.subscribe()
    dialog = await phone.push(PIN, "pin-1")
    assert dialog["kind"] == "input" and dialog["id"] == 1
    for kwargs, reason in [
        ({"action": "ok"}, "GET INPUT asks for input: give a text"),
        ({"action": "input", "text": "12"}, "GET INPUT takes 4 to 6 character(s), got 2"),
        ({"action": "input", "text": "1234567"}, "GET INPUT takes 4 to 6 character(s), got 7"),
        ({"action": "input", "text": "12a4"}, "GET INPUT takes digits only (0-9, *, #, +)"),
        ({"action": "item", "item": 1}, "GET INPUT lists no items: answer ok or cancel"),
    ]:
        with pytest.raises(DialogError, match=re.escape(reason)) as refused:
            handset.answer_dialog(**kwargs)  # type: ignore[arg-type]
        assert not refused.value.conflict
    assert handset.answer_dialog("input", text="4321", dialog_id=1) == {
        "id": 1,
        "action": "input",
        "text": "4321",
    }
    answer = await phone.answer(1)
    assert (answer.offer_id, answer.outcome) == ("pin-1", StkOutcome.ACCEPTED)
    with pytest.raises(DialogError, match="no SIM toolkit dialog is open") as gone:
        handset.answer_dialog("ok")
    assert gone.value.conflict
    events = []
    while (event := await subscription.get(0)) is not None:
        events.append(event)
        if event.kind == "stk-closed":
            assert event.data == {"id": 1, "by": "user answered", "detail": "GetInput: accept", "result": 0}
            break
    assert [event.id for event in events] == list(range(1, len(events) + 1))
    assert [event.kind for event in events if event.kind != "log"] == ["stk-shown", "stk-closed"]
    shown = next(index for index, event in enumerate(events) if event.kind == "stk-shown")
    assert events[shown - 1].data["kind"] == "dialog shown"  # the log entry, then the dialog
    assert events[shown - 1].data["detail"] == "GetInput: Enter your PIN"
    subscription.close()

    await until(lambda: bool(handset.entries(LogKind.MO_SENT)), "the answer taken")
    dialog = await phone.push(NAME, "name-1")
    assert dialog["input"] == {"min": 1, "max": 10, "digits_only": False, "hidden": False, "default": ""}
    handset.answer_dialog("ok", text="Ada")  # ok with a text is input
    assert (await phone.answer(2)).outcome is StkOutcome.ACCEPTED


async def test_get_inkey_for_one_key_and_its_duration(phone: Phone) -> None:
    handset = phone.handset
    dialog = await phone.push(DIGIT, "key-1")
    assert dialog["kind"] == "key" and 38 < dialog["expires_in"] <= 40  # the command's Duration
    with pytest.raises(DialogError, match=r"takes 1 character\(s\), got 2"):
        handset.answer_dialog("input", text="12")
    with pytest.raises(DialogError, match="is closed; dialog 1 is open") as stale:
        handset.answer_dialog("input", text="1", dialog_id=7)
    assert stale.value.conflict
    handset.answer_dialog("cancel")
    assert (await phone.answer(1)).outcome is StkOutcome.DECLINED


async def test_a_dialog_times_out_on_the_terminal(smsc: SmscSimulator, esme: SmppClient) -> None:
    phone = Phone(smsc, esme, dialog_timeout=0.2)
    try:
        await phone.push(YES_NO, "late-1")
        assert (await phone.answer(1)).outcome is StkOutcome.NO_RESPONSE
        assert phone.handset.dialog() is None
    finally:
        await phone.handset.close()


async def test_subscriptions_end_and_waits_return(phone: Phone) -> None:
    handset = phone.handset
    subscription = handset.subscribe()
    with pytest.raises(TimeoutError):
        await subscription.get(0.01)
    assert not await handset.wait_for(lambda: handset.last_sms_id > 0, 0.05)
    waiting = asyncio.ensure_future(handset.wait_for(lambda: handset.last_sms_id > 0, WAIT))
    await asyncio.sleep(0.01)
    await phone.esme.send_text(GATEWAY, MSISDN, "hello")
    assert await asyncio.wait_for(waiting, WAIT)
    event = await subscription.get(WAIT)
    assert event is not None and event.kind == "log"
    event = await subscription.get(WAIT)
    assert event is not None and event.kind == "sms" and event.data["text"] == "hello"
    assert event.sse().startswith(f"id: {event.id}\nevent: sms\ndata: {{".encode())
    assert event.sse().endswith(b"}\n\n") and event.sse().count(b"\n") == 4
    await handset.close()
    assert await subscription.get(WAIT) is None  # switched off: the stream ends
    assert handset.subscribe().closed


# --- the hub --------------------------------------------------------------------------------------------


async def test_the_hub_switches_handsets_on(smsc: SmscSimulator) -> None:
    keys = KeyStore.load("configs/sim_keys.example.yaml")
    hub = HandsetHub(smsc, keystore=keys, msisdns=["+254711000001"], max_handsets=5)
    try:
        assert [h.msisdn for h in hub] == ["254711000001", "254700000001", "254700000002", "254700000003"]
        assert hub.get("254700000001").sim is not None and hub.get("254711000001").sim is None
        yes_no = TerminalProfileFeature.GET_INKEY_BINARY_CHOICE
        assert hub.get("254700000001").profile.supports(yes_no)
        assert not hub.get("+254700000002").profile.supports(yes_no)  # supports_yes_no: false
        assert not hub.get("254700000003").profile.supports(yes_no)  # its TERMINAL PROFILE says so
        assert hub.find("254799000000") is None and hub.find("nonsense") is None
        assert hub.get(" 254799000000").msisdn == "254799000000"
        with pytest.raises(HubFull):
            hub.get("254799000001")
        for wrong in ("", "12a", "+", "1" * 21):
            with pytest.raises(LocalProtocolError, match="is no MSISDN"):
                hub.get(wrong)
    finally:
        await hub.close()
    with pytest.raises(LocalProtocolError, match="switched off"):
        hub.get("254799000002")
    with pytest.raises(ConfigError, match="handsets: '07x' is no MSISDN"):
        HandsetHub(smsc, msisdns=["07x"])

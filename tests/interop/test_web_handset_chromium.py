"""The web handset (simulators/web_handset.py) in real headless Chromium, driven by Playwright.

Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package are installed by
``.ci/run``; when either is missing the test fails with a message saying so, never skips (a skipped
browser test proves nothing and would hide a broken CI image). Playwright drives the system browser
(``executable_path``): ``playwright install`` is never run.

Around the page everything is real and on loopback: the SMSC simulator with its control channel
(handsets from ``configs/sim_keys.example.yaml``, so the SIM applet holds the example keys); the
gateway is ``gateway.smpp.client.SmppClient`` bound over TCP with ``gateway.ussd.UssdService`` serving
``configs/ussd/menus.yaml`` and ``gateway.stk.StkPushService`` pushing DSTK offers with the same keys
and confirming an accepted one by SMS. A tester picks a subscriber, dials ``*123*500#`` on the keypad
and sees the final screen, walks a menu with the reply box, answers a DSTK offer with the pop-up's
OK and sees the activation SMS in the inbox, and sends an SMS; markup in a text stays text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import PackageOption, StkOffer, StkPushService
from gateway.stk.events import StkAnswerReceived
from gateway.stk.keystore import KeyStore
from gateway.storage import SqliteStore
from gateway.ussd import UssdContext, UssdService, load_menus
from protocols.errors import DecodeError
from protocols.gsm.split import decode_short_message
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.stk.dstk import StkOutcome
from protocols.ussd import get_profile, is_ussd
from simulators.smsc import SmscSimulator
from simulators.smsc_control import SmscControl

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SIM_KEYS = ROOT / "configs" / "sim_keys.example.yaml"
MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
SYSTEM_ID = "gateway"
PASSWORD = "secret"
SHORT_CODE = "12345"
PHONE = "254700000001"  # the example key file's AES card; its handset shows yes/no GET INKEY
WAIT = 15.0
UI_WAIT = 15_000  # ms, for Playwright's expectations
OPTIONS = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


@pytest.fixture
def browser_tools() -> Any:
    """Playwright's async API, failing (not skipping) when it or Debian's chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `apt-get install chromium` (.ci/run does it)")
    try:
        from playwright import async_api
    except ImportError:
        pytest.fail(
            "playwright missing: `pip install playwright` (.ci/run does it; the browser is Debian's "
            "chromium, never `playwright install`)"
        )
    return async_api


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


class Gateway:
    """ESME + the shipped USSD menus + the STK push, confirming an accepted offer by SMS."""

    def __init__(self, smsc: SmscSimulator, store: Path) -> None:
        self.client = SmppClient(
            ClientConfig(
                "127.0.0.1",
                smsc.address[1],
                SYSTEM_ID,
                PASSWORD,
                response_timeout=5.0,
                connect_timeout=5.0,
                reconnect_initial=0.05,
            )
        )
        handlers = {"buy_package": self.buy_package, "gift_data": self.gift_data, "balance": self.balance}
        providers = {"my_offers": self.my_offers}
        profile = get_profile("standard")
        menus = load_menus(MENUS, profile=profile, handlers=handlers, providers=providers)
        self.ussd = UssdService(self.client, profile, menus, handlers, providers)
        self.store = SqliteStore(store)
        self.stk = StkPushService(self.client, KeyStore.load(SIM_KEYS), self.store, reply_to=SHORT_CODE)
        self.stk.add_listener(self._on_stk)
        self.client.add_mo_handler(self._on_mo)
        self.answers: list[StkAnswerReceived] = []
        self.texts: list[tuple[str, str]] = []

    async def buy_package(self, context: UssdContext) -> str:
        return f"Thank you. {context.args['mb']}MB added to {context.msisdn}."

    async def gift_data(self, context: UssdContext) -> str:
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: UssdContext) -> str:
        return f"Balance of {context.msisdn}: 120 KES, 350MB."

    async def my_offers(self, context: UssdContext) -> list[dict[str, object]]:
        return []

    def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        if isinstance(pdu, DeliverSm) and not is_ussd(pdu):
            with contextlib.suppress(DecodeError):  # the SIM applet's answer is binary
                self.texts.append((pdu.source_addr, decode_short_message(pdu.data_coding, pdu.short_message)))

    async def _on_stk(self, event: object) -> None:
        if isinstance(event, StkAnswerReceived):
            self.answers.append(event)
            if event.outcome is StkOutcome.ACCEPTED:
                await self.client.send_text(
                    SHORT_CODE, event.msisdn, "Your 500 MB package is active. Thank you!"
                )


@contextlib.asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[tuple[str, Gateway]]:
    smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=11)
    await smsc.start("127.0.0.1", 0)
    control = SmscControl(smsc, sim_keys=SIM_KEYS)
    _, port = await control.start("127.0.0.1", 0)
    gateway = Gateway(smsc, tmp_path / "gateway.sqlite")
    await gateway.ussd.start()
    try:
        await asyncio.wait_for(gateway.client.start(), WAIT)
        yield f"http://127.0.0.1:{port}", gateway
    finally:
        await asyncio.wait_for(gateway.ussd.close(), WAIT)
        await asyncio.wait_for(gateway.client.close(drain_timeout=1.0), WAIT)
        gateway.store.close()
        await control.stop()
        await smsc.stop()


@pytest.mark.interop
async def test_a_tester_dials_answers_a_dstk_offer_and_sees_the_activation(
    browser_tools: Any, tmp_path: Path
) -> None:
    expect = browser_tools.expect
    expect.set_options(timeout=UI_WAIT)
    async with network(tmp_path) as (base, gateway), browser_tools.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console", lambda message: problems.append(message.text) if message.type == "error" else None
            )
            await page.goto(base + "/")
            await expect(page.locator("#picker option")).to_have_count(4)  # a placeholder and 3 subscribers

            # pick a subscriber: the live stream connects
            await page.select_option("#picker", PHONE)
            await expect(page.locator("#live")).to_have_text("live")
            await expect(page.locator("#sb-msisdn")).to_have_text(PHONE)
            await expect(page.locator("#sb-sim")).to_have_text("SIM toolkit")

            # dial *123*500# on the keypad and see the final screen
            await page.click("#tab-phone")
            for key in "*123*500#":
                await page.click(f'#keypad button[data-key="{key}"]')
            await expect(page.locator("#dial-number")).to_have_value("*123*500#")
            await page.click("#dial-call")
            await expect(page.locator("#ussd-text")).to_have_text(f"Thank you. 500MB added to {PHONE}.")
            await expect(page.locator("#ussd-form")).to_be_hidden()
            await page.click("#ussd-ok")
            await expect(page.locator("#ussd")).to_be_hidden()

            # a menu: the reply box answers it
            await page.fill("#dial-number", "*123#")
            await page.click("#dial-call")
            await expect(page.locator("#ussd-text")).to_contain_text("Data shop\n1. Buy data bundle")
            await page.fill("#ussd-input", "4")
            await page.click("#ussd-send")
            await expect(page.locator("#ussd-text")).to_have_text(f"Balance of {PHONE}: 120 KES, 350MB.")
            await page.click("#ussd-ok")

            # the gateway pushes a DSTK offer: the pop-up shows it, OK (Yes) buys
            offer = StkOffer("web-1", PHONE, OPTIONS)
            await asyncio.wait_for(gateway.stk.push(offer, time.time()), WAIT)
            await expect(page.locator("#stk")).to_be_visible()
            await expect(page.locator("#stk-text")).to_have_text("Buy 500 MB now, pay later? 4.00 USD")
            await expect(page.locator("#stk-ok")).to_have_text("Yes")
            await expect(page.locator("#stk-cancel")).to_have_text("No")
            await expect(page.locator("#stk-timer")).to_contain_text("The phone answers for you in")
            await page.click("#stk-ok")
            await expect(page.locator("#stk")).to_be_hidden()
            await until(lambda: bool(gateway.answers), "the answer at the gateway")
            answer = gateway.answers[0]
            assert (answer.offer_id, answer.msisdn, answer.outcome) == ("web-1", PHONE, StkOutcome.ACCEPTED)

            # the activation SMS: a badge on the Messages tab, then the text in the inbox
            await expect(page.locator("#badge")).to_have_text("1")
            await page.click("#tab-messages")
            await expect(page.locator("#badge")).to_be_hidden()
            last_in = page.locator("#inbox .bubble.in .body").last
            await expect(last_in).to_have_text("Your 500 MB package is active. Thank you!")
            await expect(page.locator("#inbox .bubble.in .meta").last).to_contain_text(f"From {SHORT_CODE}")

            # the tester answers by SMS
            await page.fill("#sms-to", SHORT_CODE)
            await page.fill("#sms-text", "THANKS")
            await page.click("#sms-send")
            await expect(page.locator("#inbox .bubble.out .body").last).to_have_text("THANKS")
            await until(lambda: (PHONE, "THANKS") in gateway.texts, "the MO at the gateway")

            # markup in a text is shown as text, never run
            markup = '<img id="pwned" src="x" onerror="document.title=1">bold'
            await gateway.client.send_text(SHORT_CODE, PHONE, markup)
            await expect(last_in).to_have_text(markup)
            assert await page.locator("#pwned").count() == 0
            assert await page.title() == "TGW web handset"

            # the log shows what the handset did
            await page.click("#tab-log")
            await expect(page.locator("#log")).to_contain_text("user answered")
            assert problems == []
        finally:
            await browser.close()

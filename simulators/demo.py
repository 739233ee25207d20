"""``tgw demo``: the richest end-to-end flow there is so far, in one process over loopback.

1. SMS with delivery receipts: the gateway's ESME sends texts (GSM 7-bit, UCS-2, a long text split
   into concatenated parts) to the SMSC simulator and prints each part's receipt as it comes back
   (the simulator writes receipt ids in decimal and message ids in hex, as some SMSCs do).
2. The SIM toolkit offer: the gateway pushes secured DSTK offers (TS 102 225 AES packets) to
   simulated handsets whose SIM applet shows the dialog; one subscriber accepts, one declines, one
   picks a package from a menu, one ignores the dialog until it times out. Each answer comes back
   as a secured MO and is printed as the gateway's typed event.
3. USSD: a subscriber dials *123# and walks the data-shop menus of configs/ussd/menus.yaml three
   levels deep (paging with More, going Back) and buys a bundle; another buys with the one-shot
   code *123*500#. Every screen is printed as the handset shows it.
4. A burst of submit_sm through a window of 100, to show throughput.

The keys are the public test keys of configs/sim_keys.example.yaml; the push records and OTA
counters go to a SQLite file in a temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import KeyStore, PackageOption, StkOffer, StkPushService
from gateway.stk.events import StkAnswerReceived, StkDelivered, StkDeliveryFailed, StkRejectedBySim
from gateway.stk.offer import DialogStyle
from gateway.storage import SqliteStore
from gateway.ussd import UssdContext, UssdService, load_menus
from protocols.smpp.pdu import SubmitSm
from protocols.ussd import get_profile
from simulators.handset import DEFAULT_PROFILE, Handset, ReactionDelay, UserAction, UserPolicy
from simulators.sim_applet import SimCard
from simulators.smsc import SmscSimulator, parse_personality

__all__ = ["run_demo"]

Emit = Callable[[str], None]

SHORT_CODE = "12345"
_KEYS = """
version: 1
minimum_security: {integrity: cc, ciphering: true, counter: higher}
defaults:
  tar: BFFF01
subscribers:
"""
_SUBSCRIBERS = [
    # msisdn, what the simulated user does, which dialog the offer uses
    ("254700000001", UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.3)), DialogStyle.CONFIRM),
    ("254700000002", UserPolicy(UserAction.DECLINE, delay=ReactionDelay.fixed(0.2)), DialogStyle.CONFIRM),
    ("254700000003", UserPolicy(UserAction.ACCEPT, item=1, delay=ReactionDelay.fixed(0.4)), DialogStyle.MENU),
    ("254700000004", UserPolicy(UserAction.IGNORE), DialogStyle.CONFIRM),
]
_CATALOGUE = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D200", 200, Decimal("1.80"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


def _keys_yaml() -> str:
    lines = [_KEYS]
    for n, (msisdn, _, _) in enumerate(_SUBSCRIBERS, start=1):
        lines.append(
            f'  - msisdn: "{msisdn}"\n'
            f'    iccid: "89254000000000000{n:02d}"\n'
            f'    kic: {{algorithm: aes, key: "{n:02x}0102030405060708090a0b0c0d0e0f", kvn: 1}}\n'
            f'    kid: {{algorithm: aes, key: "{n:02x}1102030405060708090a0b0c0d0e0f", kvn: 1}}\n'
        )
    return "".join(lines)


async def _sms_with_receipts(client: SmppClient, emit: Emit) -> None:
    texts = [
        ("31612340001", "Your 500 MB package is active. Enjoy!"),
        ("31612340002", "Grüße aus dem Gateway: ÄÖÜ € (UCS-2)"),
        (
            "31612340003",
            "A long text, split into concatenated parts with a UDH: " + "the quick brown fox " * 12,
        ),
        ("31612340004", "Package exhausted? Dial *123*500# to buy 500 MB now, pay later."),
    ]
    emit("1. SMS with delivery receipts")
    emit(f"   {'message id':>10}  {'to':<12} {'part':>4}  {'receipt':<8} {'receipt id':>10}  text")
    for destination, text in texts:
        results = await client.send_text(SHORT_CODE, destination, text, registered_delivery=1)
        for part, result in enumerate(results, start=1):
            receipt = await client.wait_receipt(result.message_id, 10)
            label = f"{part}/{len(results)}"
            emit(
                f"   {result.message_id:>10}  {destination:<12} {label:>4}  {receipt.stat:<8} {receipt.id:>10}  {text[:38]}"
            )


async def _stk_offers(client: SmppClient, smsc: SmscSimulator, workdir: Path, emit: Emit) -> None:
    keystore = KeyStore.from_yaml(_keys_yaml(), file="<demo keys>")
    store = SqliteStore(workdir / "gateway.sqlite")
    service = StkPushService(client, keystore, store, reply_to=SHORT_CODE)
    handsets = []
    for n, (msisdn, user, _) in enumerate(_SUBSCRIBERS, start=1):
        entry = keystore.by_msisdn(msisdn)
        assert entry is not None
        card = SimCard(entry.iccid, {entry.tar: entry.key_set()}, dialog_timeout=5.0)
        handsets.append(Handset(msisdn, card, DEFAULT_PROFILE, user, smsc, seed=n, dialog_timeout=1.5))
    emit("\n2. SIM toolkit offers (AES-secured DSTK push, answered by the simulated SIM applet)")
    loop = asyncio.get_running_loop()
    started = loop.time()
    answered: dict[str, StkAnswerReceived] = {}
    async with service.events() as events:
        for n, (msisdn, user, style) in enumerate(_SUBSCRIBERS, start=1):
            offer = StkOffer(f"off-{n}", msisdn, _CATALOGUE, style=style)
            result = await service.push(offer, time.time())
            emit(
                f"   pushed {offer.offer_id} to {msisdn}: {style.value} dialog, {result.payload_octets} of "
                f"{result.budget_octets} octets, OTA counter {result.cntr} (the simulated user will {user.action.value})"
            )
        while len(answered) < len(_SUBSCRIBERS):
            event = await events.get(timeout=15)
            at = f"{loop.time() - started:5.2f} s"
            if isinstance(event, StkDelivered):
                emit(f"   {at}  {event.offer_id}: delivered to the SIM of {event.msisdn}")
            elif isinstance(event, StkAnswerReceived):
                answered[event.offer_id] = event
                item = (
                    f", item {event.item_id} ({_CATALOGUE[event.item_id - 1].volume_mb} MB)"
                    if event.item_id
                    else ""
                )
                emit(f"   {at}  {event.offer_id}: {event.msisdn} answered {event.outcome.name}{item}")
            elif isinstance(event, StkDeliveryFailed | StkRejectedBySim):
                emit(f"   {at}  {event.offer_id}: {event}")
    for handset in handsets:
        await handset.close()
    store.close()


_MENUS = Path(__file__).resolve().parent.parent / "configs" / "ussd" / "menus.yaml"


class _DataShop:
    """The handlers and the provider the shipped menus name; purchases are recorded, not billed."""

    def __init__(self) -> None:
        self.purchases: list[tuple[str, str]] = []

    async def buy_package(self, context: UssdContext) -> str:
        self.purchases.append((context.msisdn, str(context.args["mb"])))
        return f"Thank you. {context.args['mb']}MB added to {context.msisdn}."

    async def gift_data(self, context: UssdContext) -> str:
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: UssdContext) -> str:
        return "Your balance: 120 KES, 350MB."

    async def my_offers(self, context: UssdContext) -> list[dict[str, object]]:
        return [{"name": "Night owl", "mb": 1000, "price": 50}]


async def _ussd(client: SmppClient, smsc: SmscSimulator, emit: Emit) -> None:
    shop = _DataShop()
    profile = get_profile("standard")
    handlers = {"buy_package": shop.buy_package, "gift_data": shop.gift_data, "balance": shop.balance}
    providers = {"my_offers": shop.my_offers}
    menus = load_menus(_MENUS, profile=profile, handlers=handlers, providers=providers)
    emit("\n3. USSD (the shipped data-shop menus)")
    async with UssdService(client, profile, menus, handlers, providers, per_reply_timeout=10):
        phone = Handset("254700000005", None, DEFAULT_PROFILE, UserPolicy(), smsc, seed=5)
        # main -> buy data -> monthly (two pages) -> More -> Back -> weekly -> 500MB -> yes
        for code, replies in (("*123#", ["1", "3", "99", "0", "0", "2", "2", "1"]), ("*123*500#", [])):
            emit(f"   dial {code}")
            dialog = await phone.dial(code)
            for reply in [*replies, None]:
                screen = await dialog.next_screen(10)
                for line in screen.text.splitlines():
                    emit(f"   | {line}")
                if screen.final or reply is None:
                    break
                emit(f"   > {reply}")
                await dialog.answer(reply)
        await phone.close()
    emit(f"   purchases recorded by the handler: {shop.purchases}")


async def _burst(client: SmppClient, count: int, emit: Emit) -> None:
    sub = SubmitSm(source_addr=SHORT_CODE, destination_addr="31600000000", short_message=b"burst")
    started = time.perf_counter()

    async def worker(n: int) -> None:
        for _ in range(n):
            await client.submit(sub)

    await asyncio.gather(*(worker(count // 100) for _ in range(100)))
    elapsed = time.perf_counter() - started
    emit(
        f"\n4. burst: {count} submit_sm through a window of 100 in {elapsed:.2f} s = {count / elapsed:,.0f}/s"
    )


async def run_demo(emit: Emit, burst: int = 20_000) -> int:
    """Run the demo, writing its report through ``emit`` (the CLI passes print)."""
    smsc = SmscSimulator(
        {"demo": "secret"},
        personality=parse_personality("mixed-ids"),  # receipts carry decimal ids, submits hex
        receipt_delay=0.2,
        outcomes={"DELIVRD": 0.8, "UNDELIV": 0.1, "EXPIRED": 0.1},
        seed=2,
    )
    host, port = await smsc.start("127.0.0.1", 0)
    emit(f"SMSC simulator on {host}:{port}; the gateway's ESME binds as a transceiver\n")
    client = SmppClient(ClientConfig(host, port, "demo", "secret", window=100, enquire_link_interval=5))
    await client.start()
    try:
        with tempfile.TemporaryDirectory(prefix="tgw-demo-") as tmp:
            await _sms_with_receipts(client, emit)
            await _stk_offers(client, smsc, Path(tmp), emit)
            await _ussd(client, smsc, emit)
            await _burst(client, burst, emit)
        emit(f"\nESME: {client.stats}")
        emit(f"SMSC: {smsc.stats}")
    finally:
        await client.close()
        await smsc.stop()
    return 0

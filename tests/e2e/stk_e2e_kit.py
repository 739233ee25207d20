"""The whole SIM toolkit chain on loopback, for the end-to-end tests (import as ``from stk_e2e_kit import ...``).

Nothing is mocked (DESIGN.md, "Real parts"): the SMSC simulator listens on a loopback port; the
gateway is an ``SmppClient`` bound over TCP as a transceiver, a ``KeyStore`` loaded from a YAML key
file written into the test's directory, a ``SqliteStore`` on a real file and the ``StkPushService``;
each subscriber is a ``Handset`` with its own ``SimCard`` whose keys come from the same test data
as the key file (not from the gateway's parsed key store, so a key-file bug cannot hide). Gateway
and network run as separate asyncio tasks of one loop and meet only on the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import KeyStore, PackageOption, StkEvent, StkEventStream, StkOffer, StkPushService
from gateway.storage import SqliteStore
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.stk.dstk import DSTK_TAR
from protocols.stk.ota import KeySet
from protocols.stk.terminal import TerminalProfile
from simulators.handset import DEFAULT_PROFILE, Handset, UserPolicy
from simulators.sim_applet import SimCard
from simulators.smsc import SmscSimulator

E = TypeVar("E")

SYSTEM_ID = "gateway"
PASSWORD = "secret"
SHORT_CODE = "12345"  # the gateway's short code: originator of the pushes, reply_to of the answers
WAIT = 30.0  # seconds any single wait may take before the test calls it a hang (a shared 2-core box)
CARD_MSL = 0x16  # the card's minimum security level: CC + ciphering + counter higher

OPTIONS = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D200", 200, Decimal("1.80"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


@dataclass(frozen=True)
class Subscriber:
    """One subscriber's card as the operator's card vendor knows it (AES-128, KVN 1)."""

    msisdn: str
    iccid: str
    kic_key: bytes
    kid_key: bytes
    extra: tuple[str, ...] = ()  # further fields of the key-file entry, e.g. "supports_yes_no: false"

    @classmethod
    def numbered(cls, n: int, *extra: str) -> Subscriber:
        """Subscriber ``n``: its own MSISDN, ICCID and keys (derived from ``n``, so every card differs)."""
        return cls(
            msisdn=f"2547{n:08d}",
            iccid=f"8925400{n:012d}",
            kic_key=hashlib.sha256(f"KIc {n}".encode()).digest()[:16],
            kid_key=hashlib.sha256(f"KID {n}".encode()).digest()[:16],
            extra=extra,
        )


def key_file_yaml(subscribers: list[Subscriber], *, por: str = "on_error") -> str:
    """The gateway's SIM key file (configs/sim_keys.example.yaml documents every field).

    ``por``: none, always or on_error; a PoR goes back as an MO SMS-SUBMIT the gateway sees.
    """
    lines = [
        "version: 1",
        "minimum_security: {integrity: cc, ciphering: true, counter: higher}",
        "defaults:",
        f"  tar: {DSTK_TAR.hex().upper()}",
        f"  spi: {{integrity: cc, ciphering: true, counter: higher, por: {por},",
        "        por_integrity: cc, por_ciphering: true, por_via_sms_submit: true}",
        "subscribers:",
    ]
    for sub in subscribers:
        lines += [
            f'  - msisdn: "{sub.msisdn}"',
            f'    iccid: "{sub.iccid}"',
            f'    kic: {{algorithm: aes, key: "{sub.kic_key.hex()}", kvn: 1}}',
            f'    kid: {{algorithm: aes, key: "{sub.kid_key.hex()}", kvn: 1}}',
            *(f"    {line}" for line in sub.extra),
        ]
    return "\n".join(lines) + "\n"


def write_key_file(path: Path, subscribers: list[Subscriber], *, por: str = "on_error") -> Path:
    path.write_text(key_file_yaml(subscribers, por=por), encoding="utf-8")
    return path


def make_sim_card(
    sub: Subscriber,
    *,
    kid_key: bytes | None = None,
    counter: int = 0,
    dialog_timeout: float = 60.0,
    card_class: type[SimCard] = SimCard,
) -> SimCard:
    """The card in the subscriber's handset: the DSTK applet at TAR BFFF01 with the subscriber's keys
    (``kid_key`` replaces the KID key, ``counter`` is the last counter the card already accepted)."""
    keys = key_set(sub, counter=counter)
    if kid_key is not None:
        keys = replace(keys, kid_key=kid_key)
    return card_class(sub.iccid, {DSTK_TAR: keys}, dialog_timeout=dialog_timeout)


def key_set(sub: Subscriber, *, counter: int = 0) -> KeySet:
    """The card's key set for TAR BFFF01: the subscriber's keys, KVN 1, MSL 0x16, last counter ``counter``."""
    return KeySet(sub.kic_key, sub.kid_key, kvn=1, minimum_security=CARD_MSL, counter=counter)


def offer(offer_id: str, sub: Subscriber, **kwargs: object) -> StkOffer:
    return StkOffer(offer_id, sub.msisdn, OPTIONS, **kwargs)  # type: ignore[arg-type]


@dataclass
class Gateway:
    """The gateway's side: a bound ESME, the SQLite store, the push service, and a stream of its events."""

    client: SmppClient
    store: SqliteStore
    service: StkPushService
    events: StkEventStream
    mo: list[bytes] = field(default_factory=list)  # the user data of every MO deliver_sm the ESME received

    async def push(self, the_offer: StkOffer) -> None:
        await asyncio.wait_for(self.service.push(the_offer, time.time()), WAIT)

    async def stop(self) -> None:
        """What a shutdown does: unbind and close the socket, close the store."""
        self.events.close()
        await asyncio.wait_for(self.client.close(drain_timeout=1.0), WAIT)
        self.store.close()


class Testbed:
    """The SMSC simulator, the handsets and the gateway(s); ``close()`` tears it all down."""

    __test__ = False  # not a test class

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=5)
        self.handsets: list[Handset] = []
        self.gateways: list[Gateway] = []

    async def start(self) -> None:
        await self.smsc.start("127.0.0.1", 0)

    @property
    def port(self) -> int:
        return self.smsc.address[1]

    def add_handset(
        self,
        sub: Subscriber,
        user: UserPolicy,
        *,
        profile: TerminalProfile = DEFAULT_PROFILE,
        card: SimCard | None = None,
        dialog_timeout: float = 60.0,
        seed: int = 1,
    ) -> Handset:
        """A handset registered with the SMSC under ``sub.msisdn`` (with ``card`` or a matching SIM)."""
        sim = card if card is not None else make_sim_card(sub)
        phone = Handset(sub.msisdn, sim, profile, user, self.smsc, seed, dialog_timeout=dialog_timeout)
        self.handsets.append(phone)
        return phone

    async def start_gateway(
        self, keys: Path, store: Path | None = None, *, window: int = 20, **service: object
    ) -> Gateway:
        """The gateway process: key store from ``keys``, SQLite store at ``store``, ESME bound to the SMSC."""
        keystore = KeyStore.load(keys)
        sqlite = SqliteStore(store or self.workdir / "gateway.sqlite")
        config = ClientConfig(
            "127.0.0.1",
            self.port,
            SYSTEM_ID,
            PASSWORD,
            window=window,
            response_timeout=10.0,
            connect_timeout=10.0,
            reconnect_initial=0.05,
            reconnect_max=0.5,
        )
        client = SmppClient(config)
        service_ = StkPushService(client, keystore, sqlite, reply_to=SHORT_CODE, **service)  # type: ignore[arg-type]
        gateway = Gateway(client, sqlite, service_, service_.events())

        def record_mo(pdu: DeliverSm | DataSm) -> None:
            if isinstance(pdu, DeliverSm):
                gateway.mo.append(pdu.short_message)

        client.add_mo_handler(record_mo)
        await asyncio.wait_for(client.start(), WAIT)
        self.gateways.append(gateway)
        return gateway

    async def close(self) -> None:
        for gateway in self.gateways:
            with contextlib.suppress(Exception):
                await gateway.stop()
        for phone in self.handsets:
            await phone.close()
        await self.smsc.stop()


async def wait_for_events(
    stream: StkEventStream, done: Callable[[list[StkEvent]], bool], what: str, timeout: float = WAIT
) -> list[StkEvent]:
    """Read events until ``done(events so far)``; fail the test (not hang) after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[StkEvent] = []
    while not done(seen):
        try:
            seen.append(await stream.get(timeout=max(0.0, deadline - loop.time())))
        except TimeoutError:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; events so far: {seen}")
    return seen


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def quiet(stream: StkEventStream, handsets: list[Handset], settle: float = 0.5) -> list[StkEvent]:
    """Wait until no handset has a dialog open or a proactive session running, give the last MOs and
    receipts ``settle`` seconds to arrive, and return the events nobody has read yet."""
    await wait_until(
        lambda: all(not h.dialog_open and not (h.sim is not None and h.sim.busy) for h in handsets),
        "the handsets to go idle",
    )
    await asyncio.sleep(settle)
    return [await stream.get(timeout=WAIT) for _ in range(stream.pending())]


def of_type(events: list[StkEvent], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]

"""Helpers of the USSD interop tests (``test_ussd_interop.py``) and of ``bench/ussd.py``: the node
`smpp` USSD peers (``node/ussd_smsc.js``, ``node/ussd_esme.js``) as asyncio subprocesses, smpplib
2.2.4 as a USSD application in a thread, our gateway (SmppClient + UssdService on the shipped menus
with a small application behind them), and live loopback capture with dumpcap / tshark (PEERS.md 2.5).

A name unique in ``tests/`` (pytest's prepend import mode puts every test directory on sys.path).

smpplib quirk (#104, checked against 2.2.4): its ``DeliverSM`` parameter table lacks
``ussd_service_op`` although ``consts.OPTIONAL_PARAMS`` names the tag, so parsing a USSD deliver_sm
raises ``KeyError: 'ussd_service_op'`` even with ``allow_unknown_opt_params=True`` (that flag only
skips tags smpplib has no name for). ``smpplib_reads_ussd_deliver_sm`` adds the parameter, with the
type smpplib gives it on submit_sm, for as long as it is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "node"
USSD_SMSC_JS = NODE_DIR / "ussd_smsc.js"
USSD_ESME_JS = NODE_DIR / "ussd_esme.js"
SHIPPED_MENUS = Path(__file__).resolve().parents[2] / "configs" / "ussd" / "menus.yaml"
HOST = "127.0.0.1"
WAIT = 15.0


def node_binary() -> str:
    node = shutil.which(os.environ.get("NODE", "node"))
    if node is None or not (NODE_DIR / "node_modules" / "smpp" / "package.json").is_file():
        raise RuntimeError(f"node `smpp` peer missing: need `node` on PATH and `npm ci` in {NODE_DIR}")
    return node


# --- node peers ------------------------------------------------------------------------------------------


class NodePeer:
    """A node script run as an asyncio subprocess whose stdout is JSON lines (``READY <port>`` first
    for a server). ``lines`` holds every parsed JSON object so far, ``events(kind)`` those of one kind."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.port = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace").strip()
            self.raw.append(text)
            if text.startswith("READY "):
                self.port = int(text.split()[1])
            elif text.startswith("{"):
                self.lines.append(json.loads(text))
            self._changed.set()
        self._changed.set()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == kind]

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Wait until ``predicate()``; fail with the peer's output when it exits first or times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if self._reader.done() or loop.time() >= deadline:
                why = "exited" if self._reader.done() else f"timed out after {timeout} s"
                raise AssertionError(f"node peer {why} before {what}: {self.raw} {await self.stderr()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.1)

    async def finish(self, timeout: float = WAIT) -> int:
        """Wait for the process to exit by itself; its exit code."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code

    async def stderr(self) -> str:
        if self.proc.returncode is None or self.proc.stderr is None:
            return ""
        return (await self.proc.stderr.read()).decode(errors="replace")

    async def stop(self) -> None:
        """Terminate it if it still runs (teardown)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            self._reader.cancel()
            await self._reader


async def _spawn(script: Path, *args: str) -> NodePeer:
    proc = await asyncio.create_subprocess_exec(
        node_binary(), str(script), *args, cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return NodePeer(proc)


async def start_ussd_smsc(*args: str) -> NodePeer:
    """``ussd_smsc.js 0 *args``, once it listens (``peer.port``)."""
    peer = await _spawn(USSD_SMSC_JS, "0", *args)
    await peer.wait_for(lambda: peer.port > 0, "READY")
    return peer


async def start_ussd_esme(port: int, system_id: str, password: str, *args: str) -> NodePeer:
    """``ussd_esme.js`` bound to our SMSC at ``port`` (returns once it printed ``bound``)."""
    peer = await _spawn(
        USSD_ESME_JS, "--port", str(port), "--system-id", system_id, "--password", password, *args
    )
    await peer.wait_for(lambda: bool(peer.events("bound")), "the bind")
    return peer


# --- smpplib as a USSD application ----------------------------------------------------------------------


@contextlib.contextmanager
def smpplib_reads_ussd_deliver_sm() -> Iterator[None]:
    """See the module docstring: give smpplib's DeliverSM the ``ussd_service_op`` parameter."""
    import smpplib.command

    cls: Any = smpplib.command.DeliverSM
    saved = (cls.params, cls.params_order)
    cls.params = {**cls.params, "ussd_service_op": smpplib.command.Param(type=int, size=1)}
    cls.params_order = (*cls.params_order, "ussd_service_op")
    try:
        yield
    finally:
        cls.params, cls.params_order = saved


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


@dataclass
class SmpplibUssdApp:
    """smpplib 2.2.4 as the USSD application behind our SMSC simulator: a synchronous ESME
    (``read_once`` loop, run it in a thread with ``run``) that answers each PSSR indication with a menu
    (USSR request, op 2), each USSR confirm with the next menu, and the ``depth``-th screen with the
    final PSSR response (op 0x11, end bit), echoing ``its_session_info``'s session with the next
    sequence. ``received`` keeps every deliver_sm as smpplib parsed it, ``sent`` every submit_sm."""

    port: int
    system_id: str
    password: str
    depth: int = 3
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # of the submit_sm_resp
    completed: int = 0
    bound: threading.Event = field(default_factory=threading.Event)
    _choices: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _finals: set[int] = field(default_factory=set)

    def _on_deliver(self, pdu: Any) -> None:
        info = int(pdu.its_session_info)
        fields = {
            "service_type": _text(pdu.service_type),
            "source_addr": _text(pdu.source_addr),
            "destination_addr": _text(pdu.destination_addr),
            "data_coding": pdu.data_coding,
            "short_message": pdu.short_message,
            "ussd_service_op": pdu.ussd_service_op,
            "its_session_info": info,
        }
        self.received.append(fields)
        session, sequence, end = info >> 8, (info & 0xFF) >> 1, bool(info & 1)
        msisdn, key = fields["source_addr"], (fields["source_addr"], session)
        if pdu.ussd_service_op == 0x01:
            self._choices[key] = []
        elif pdu.ussd_service_op == 0x12 and not end and key in self._choices:
            self._choices[key].append(_text(pdu.short_message))
        else:
            self._choices.pop(key, None)  # released by the network
            return
        screen = len(self._choices[key]) + 1
        final = screen >= self.depth
        text = f"smpplib: you chose {'>'.join(self._choices[key])}" if final else f"smpplib menu {screen}"
        if final:
            del self._choices[key]
        self._outbox.append(
            {
                "service_type": "USSD",
                "source_addr_ton": 0,
                "source_addr_npi": 0,
                "source_addr": fields["destination_addr"],
                "dest_addr_ton": 1,
                "dest_addr_npi": 1,
                "destination_addr": msisdn,
                "data_coding": 0,
                "short_message": text.encode("ascii"),
                "ussd_service_op": 0x11 if final else 0x02,
                "its_session_info": session << 8 | ((sequence + 1) & 0x7F) << 1 | final,
            }
        )

    def _on_sent(self, pdu: Any) -> None:
        self.statuses.append(int(pdu.status))
        if pdu.sequence in self._finals and pdu.status == 0:
            self.completed += 1

    def run(self, dialogues: int, timeout: float = WAIT) -> None:
        """Bind, answer until ``dialogues`` final screens were acknowledged, unbind (blocking)."""
        import smpplib.client

        client = smpplib.client.Client(HOST, self.port, timeout=0.2, allow_unknown_opt_params=True)
        client.set_message_received_handler(lambda pdu, **_: self._on_deliver(pdu))
        client.set_message_sent_handler(lambda pdu, **_: self._on_sent(pdu))
        client.connect()
        try:
            client.bind_transceiver(system_id=self.system_id, password=self.password)
            self.bound.set()
            deadline = time.monotonic() + timeout
            while self.completed < dialogues:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"smpplib app: {self.completed} of {dialogues} dialogues done")
                client.read_once()  # a socket timeout makes smpplib send an enquire_link
                while self._outbox:
                    fields = self._outbox.pop(0)
                    sent = client.send_message(**fields)
                    self.sent.append(fields)
                    if fields["ussd_service_op"] == 0x11:
                        self._finals.add(sent.sequence)
            client.unbind()
        finally:
            client.disconnect()


# --- our gateway --------------------------------------------------------------------------------------


@dataclass
class Purchases:
    """The application behind the shipped menus: buy_package records, the rest answers plainly."""

    made: list[dict[str, str]] = field(default_factory=list)

    async def buy_package(self, context: Any) -> str:
        self.made.append({"msisdn": context.msisdn, **context.args})
        return f"Thank you. {context.args['mb']}MB added to {context.msisdn}."

    async def gift_data(self, context: Any) -> str:
        return f"{context.args['mb']}MB sent to {context.args['to']}."

    async def balance(self, context: Any) -> str:
        return "Your balance: 120 KES, 350MB."

    async def my_offers(self, context: Any) -> Sequence[dict[str, object]]:
        return [{"id": "o-night", "name": "Night", "mb": 500, "price": 30}]

    def handlers(self) -> dict[str, Callable[[Any], Awaitable[str]]]:
        return {"buy_package": self.buy_package, "gift_data": self.gift_data, "balance": self.balance}

    def providers(self) -> dict[str, Callable[[Any], Awaitable[Sequence[dict[str, object]]]]]:
        return {"my_offers": self.my_offers}


@dataclass
class Gateway:
    client: Any  # gateway.smpp.client.SmppClient
    service: Any  # gateway.ussd.UssdService
    purchases: Purchases


@contextlib.asynccontextmanager
async def ussd_gateway(
    port: int, system_id: str, password: str, *, profile: str = "standard", window: int = 100, **service: Any
) -> AsyncIterator[Gateway]:
    """Our gateway bound to the SMSC at ``port``: SmppClient + UssdService on the shipped menus.
    Leaving the block closes the service and unbinds."""
    from gateway.smpp.client import ClientConfig, SmppClient
    from gateway.ussd import UssdService, load_menus
    from protocols.ussd import get_profile

    ussd_profile = get_profile(profile)
    config = ClientConfig(
        HOST, port, system_id, password, window=window, response_timeout=10.0, connect_timeout=5.0,
        reconnect_initial=0.05, reconnect_max=0.5,
    )  # fmt: skip
    client = SmppClient(config)
    purchases = Purchases()
    menus = load_menus(SHIPPED_MENUS, profile=ussd_profile)
    usd = UssdService(client, ussd_profile, menus, purchases.handlers(), purchases.providers(), **service)
    # listen before binding: an SMSC may deliver the moment the bind is answered (ussd_smsc.js does),
    # and SmppClient acknowledges a deliver_sm that no handler takes (ESME_ROK), so it would be lost
    await usd.start()
    await asyncio.wait_for(client.start(), WAIT)
    try:
        yield Gateway(client, usd, purchases)
    finally:
        await asyncio.wait_for(usd.close(), WAIT)
        await asyncio.wait_for(client.close(drain_timeout=2.0), WAIT)


# --- live capture (PEERS.md 2.5) ----------------------------------------------------------------------------


async def start_dumpcap(dumpcap: str, port: int, path: Path) -> asyncio.subprocess.Process:
    """dumpcap on ``lo`` for ``tcp port {port}``; returns once it writes the capture file."""
    proc = await asyncio.create_subprocess_exec(
        dumpcap, "-i", "lo", "-f", f"tcp port {port}", "-w", str(path), "-q",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
        if proc.returncode is not None:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode(errors="replace").strip()
            raise AssertionError(f"dumpcap exited {proc.returncode}: {err}")
        if path.exists() and path.stat().st_size >= 48:  # section and interface blocks written
            await asyncio.sleep(0.3)  # the capture filter is in place before the first SYN
            return proc
    proc.kill()
    await proc.wait()
    raise AssertionError(f"dumpcap did not start capturing within {WAIT} s")


async def stop_dumpcap(proc: asyncio.subprocess.Process) -> None:
    await asyncio.sleep(1.0)  # the last segments reach the capture buffer, even on a loaded machine
    proc.send_signal(signal.SIGINT)  # dumpcap flushes and closes the file
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, err.decode(errors="replace")


def tshark(tshark_bin: str, pcap: Path, port: int, *args: str) -> str:
    proc = subprocess.run(
        [tshark_bin, "-n", "-r", str(pcap), "-d", f"tcp.port=={port},smpp", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def field_int(value: str) -> int:
    """A tshark field value: decimal, or hex with 0x."""
    return int(value, 16) if value.lower().startswith("0x") else int(value)

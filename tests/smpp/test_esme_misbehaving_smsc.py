"""End-to-end tests of our ESME (gateway/smpp/client.py) against a scripted SMSC.

The SMSC here is a raw asyncio server on a loopback port that frames PDUs by command_length and writes
whatever bytes a test scripts, so it can misbehave in ways our own simulator never would: a delivery
receipt whose text names no message (SMPP 3.4 Appendix B, section 5.2.12 message type 0x04), a bind
answered by a generic_nack with command_status 0 (section 4.3); it also counts the submit_sm it holds
unanswered, to check the window the ESME keeps. Nothing of ours is mocked: the
client connects over TCP and the assertions read what went over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.smpp.client import BindError, ClientConfig, SmppClient
from protocols.smpp.constants import CommandId as C
from protocols.smpp.constants import CommandStatus as S
from protocols.smpp.pdu import (
    BindTransceiverResp,
    DataSm,
    DeliverSm,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    encode_pdu,
)

_HEADER = struct.Struct(">IIII")
WAIT = 10.0  # seconds any single await may take before the test calls it a hang

# called with (connection number, the bind's sequence_number, writer) when a bind arrives: it writes
# the answer and whatever the SMSC is to send next
Script = Callable[[int, int, asyncio.StreamWriter], None]
# the fixture: ``server, port = await scripted(script, submit_delay=None)``
MakeSmsc = Callable[..., Awaitable["tuple[ScriptedSmsc, int]"]]


class ScriptedSmsc:
    """An SMSC that answers the bind as the script says and records every PDU it receives."""

    def __init__(self, script: Script, port: int, submit_delay: float | None = None) -> None:
        self.script = script
        self.port = port
        self.submit_delay = submit_delay  # answer each submit_sm after this long (None: never)
        self.connections = 0
        self.outstanding = 0  # submit_sm received and not yet answered
        self.max_outstanding = 0
        self.submits = 0
        self.received: list[tuple[int, int, int, int]] = []  # (connection, command_id, status, seq)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length, cid, status, seq = _HEADER.unpack(await reader.readexactly(16))
                await reader.readexactly(max(length, 16) - 16)
                self.received.append((number, cid, status, seq))
                if cid in (C.BIND_TRANSCEIVER, C.BIND_TRANSMITTER, C.BIND_RECEIVER):
                    self.script(number, seq, writer)
                elif cid == C.UNBIND:
                    writer.write(_HEADER.pack(16, C.UNBIND_RESP, 0, seq))
                elif cid == C.SUBMIT_SM and self.submit_delay is not None:
                    self.submits += 1
                    self.outstanding += 1
                    self.max_outstanding = max(self.max_outstanding, self.outstanding)
                    asyncio.get_running_loop().call_later(self.submit_delay, self._answer_submit, writer, seq)
        writer.close()

    def _answer_submit(self, writer: asyncio.StreamWriter, seq: int) -> None:
        self.outstanding -= 1
        if not writer.is_closing():
            writer.write(encode_pdu(SubmitSmResp(seq, 0, f"{seq:x}")))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


@pytest.fixture
async def scripted(free_port: Callable[[], int]) -> AsyncIterator[MakeSmsc]:
    """``server, port = await scripted(script, submit_delay=None)``: a listening ScriptedSmsc."""
    servers: list[ScriptedSmsc] = []

    async def make(script: Script, submit_delay: float | None = None) -> tuple[ScriptedSmsc, int]:
        server = ScriptedSmsc(script, free_port(), submit_delay)
        servers.append(server)
        return server, await server.start()

    yield make
    for server in servers:
        await server.stop()


def config(port: int, window: int = 10) -> ClientConfig:
    return ClientConfig(
        "127.0.0.1",
        port,
        "esme",
        "secret",
        window=window,
        response_timeout=5.0,
        connect_timeout=5.0,
        reconnect_initial=0.05,
        reconnect_max=0.5,
    )


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {WAIT} s waiting for {what}")
        await asyncio.sleep(0.01)


def bind_ok(seq: int) -> bytes:
    return encode_pdu(BindTransceiverResp(seq, 0, "smsc"))


# --- a receipt whose text cannot be read ---------------------------------------------------------------


BROKEN_RECEIPTS: dict[str, Pdu] = {
    "deliver_sm without id": DeliverSm(
        sequence_number=5,
        source_addr="31600000001",
        destination_addr="12345",
        esm_class=0x04,
        short_message=b"this is no Appendix B text",
    ),
    "deliver_sm without stat": DeliverSm(
        sequence_number=5,
        source_addr="31600000001",
        destination_addr="12345",
        esm_class=0x04,
        short_message=b"id:2a sub:001 dlvrd:001",
    ),
    "data_sm without text": DataSm(
        sequence_number=5,
        source_addr="31600000001",
        destination_addr="12345",
        esm_class=0x04,
    ),
}


@pytest.mark.parametrize("name", list(BROKEN_RECEIPTS))
async def test_unreadable_receipt_is_answered_and_the_link_stays_up(scripted: MakeSmsc, name: str) -> None:
    """A receipt (esm_class 0x04) that names no message or no state is answered with a permanent
    application error (ESME_RX_P_APPN, section 5.1.3: the SMSC must not deliver it again, no retry can
    make it readable), on the same connection; the MO that follows it still reaches its handler.

    Before the fix the parse error escaped the protocol callback: asyncio dropped the connection,
    the deliver_sm was never answered, and the SMSC re-delivered it on every rebind (a reconnect
    loop several times a second)."""
    broken = BROKEN_RECEIPTS[name]
    mo = DeliverSm(
        sequence_number=6, source_addr="31600000001", destination_addr="12345", short_message=b"hi"
    )

    def script(number: int, seq: int, writer: asyncio.StreamWriter) -> None:
        writer.write(bind_ok(seq))
        if number == 1:
            writer.write(encode_pdu(broken) + encode_pdu(mo))

    server, port = await scripted(script)
    client = SmppClient(config(port))
    received: list[bytes] = []
    client.add_mo_handler(lambda pdu: received.append(getattr(pdu, "short_message", b"")))
    await asyncio.wait_for(client.start(), WAIT)
    try:
        resp_id = C.DATA_SM_RESP if isinstance(broken, DataSm) else C.DELIVER_SM_RESP

        def answers() -> list[tuple[int, int, int, int]]:
            return [r for r in server.received if r[1] in (resp_id, C.DELIVER_SM_RESP)]

        await wait_until(lambda: len(answers()) >= 2, "both deliveries answered")
        assert answers() == [(1, resp_id, S.ESME_RX_P_APPN, 5), (1, C.DELIVER_SM_RESP, 0, 6)]
        assert received == [b"hi"]
        await asyncio.sleep(0.3)  # time enough for the reconnect loop the defect caused
        assert server.connections == 1
        assert client.is_bound
        assert client.stats.receipts == 0
        assert client.stats.bad_receipts == 1
    finally:
        await asyncio.wait_for(client.close(drain_timeout=1.0), WAIT)


# --- a bind answered by generic_nack with status 0 -------------------------------------------------------


async def test_bind_answered_by_generic_nack_status_zero_is_a_refusal(
    scripted: MakeSmsc,
) -> None:
    """A generic_nack answers no bind, whatever its command_status: the first bind fails with
    BindError (ESME_RBINDFAIL stands in for the missing status) after one connection.

    Before the fix the client read status 0 as success: ``start()`` never returned, and the client
    reconnected without back-off (each "successful" bind reset it) until the caller gave up."""

    def script(number: int, seq: int, writer: asyncio.StreamWriter) -> None:
        writer.write(encode_pdu(GenericNack(seq, 0)))

    server, port = await scripted(script)
    client = SmppClient(config(port))
    with pytest.raises(BindError) as info:
        await asyncio.wait_for(client.start(), WAIT)
    assert info.value.status == S.ESME_RBINDFAIL
    assert server.connections == 1
    await asyncio.wait_for(client.close(drain_timeout=0.1), WAIT)


# --- submits cancelled while on the wire -------------------------------------------------------------


def sms() -> SubmitSm:
    return SubmitSm(source_addr="12345", destination_addr="31600000001", short_message=b"offer")


async def test_cancelled_submits_on_the_wire_keep_their_window_slot(scripted: MakeSmsc) -> None:
    """A submit whose caller gives up while it is on the wire is still outstanding at the SMSC: its
    window slot is freed by the answer (or the timer, or the connection's loss), not by the caller.
    So the SMSC never sees more than ``window`` outstanding requests, and later submits wait for the
    slot instead of failing.

    Before the fix the slot was freed at once: the next submits went out beside the unanswered ones
    (3 outstanding on a window of 2) and the one after overflowed the session's window and raised
    LocalProtocolError("window of 3 outstanding requests is full") to its caller."""

    def script(number: int, seq: int, writer: asyncio.StreamWriter) -> None:
        writer.write(bind_ok(seq))

    server, port = await scripted(script, submit_delay=0.3)
    client = SmppClient(config(port, window=2))
    await asyncio.wait_for(client.start(), WAIT)
    try:
        first = [asyncio.create_task(client.submit(sms())) for _ in range(2)]
        await wait_until(lambda: server.submits == 2, "two submits on the wire")
        for task in first:
            task.cancel()
        await asyncio.gather(*first, return_exceptions=True)
        results = await asyncio.wait_for(asyncio.gather(*(client.submit(sms()) for _ in range(2))), WAIT)
        assert all(r.message_id for r in results)
        assert server.submits == 4
        assert server.max_outstanding == 2
        # every slot comes back once the cancelled submits are answered: a full window still works
        results = await asyncio.wait_for(asyncio.gather(*(client.submit(sms()) for _ in range(4))), WAIT)
        assert len(results) == 4
        assert server.max_outstanding == 2
    finally:
        await asyncio.wait_for(client.close(drain_timeout=1.0), WAIT)


# --- an SMSC that binds and drops at once ------------------------------------------------------------


async def test_a_bind_that_drops_at_once_does_not_reset_the_back_off(scripted: MakeSmsc) -> None:
    """An SMSC that accepts every bind and closes the connection right after (overloaded, a flapping
    link) is redialled with growing pauses. Before the fix each accepted bind reset the back-off, so
    the client redialled every ``reconnect_initial`` (0.05 s here: some 40 connections in 2 s); with it
    the pauses double up to ``reconnect_max`` (0.5 s): at most 11 in 2 s, jitter included."""

    def script(number: int, seq: int, writer: asyncio.StreamWriter) -> None:
        writer.write(bind_ok(seq))
        writer.close()

    server, port = await scripted(script)
    client = SmppClient(config(port))
    await asyncio.wait_for(client.start(), WAIT)
    await asyncio.sleep(2.0)
    connections = server.connections
    await asyncio.wait_for(client.close(drain_timeout=0.1), WAIT)
    assert 3 <= connections <= 12, connections


async def test_a_bind_that_held_starts_the_back_off_afresh(scripted: MakeSmsc) -> None:
    """The other side: binds that last ``stable_bind`` reset the back-off, so an SMSC that drops a
    long-lived bind now and then is redialled at once, not after the pauses of old failures."""

    def script(number: int, seq: int, writer: asyncio.StreamWriter) -> None:
        writer.write(bind_ok(seq))
        asyncio.get_running_loop().call_later(0.05, writer.close)

    server, port = await scripted(script)
    client = SmppClient(dataclasses.replace(config(port), stable_bind=0.01))
    await asyncio.wait_for(client.start(), WAIT)
    await asyncio.sleep(2.0)
    connections = server.connections
    await asyncio.wait_for(client.close(drain_timeout=0.1), WAIT)
    assert connections >= 14, connections  # every 0.05 s bind + 0.025-0.05 s pause: about 25

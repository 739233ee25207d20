"""Helpers for the STK gateway tests (import as ``from stk_harness import ...``).

Everything is real: the SMSC simulator listens on loopback, the ESME connects over TCP, and the
``SubmitTap`` is a TCP relay that decodes each PDU the ESME sends with the SMPP codec, so a test can
check the exact submit_sm fields on the wire (validity_period, registered_delivery ...).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.smpp.client import ClientConfig
from protocols.smpp.pdu import Pdu, SubmitSm, decode_pdu

SYSTEM_ID = "esme"
PASSWORD = "secret"
WAIT = 10.0  # seconds any single await may take before the test calls it a hang
REPLY_TO = "12345"

# pySim's public test keys (PROTOCOLS.md 1.5.4): never real card keys
AES_KIC = "200102030405060708090a0b0c0d0e0f"
AES_KID = "201102030405060708090a0b0c0d0e0f"
TDES_KIC = "300102030405060708090a0b0c0d0e0f"
TDES_KID = "301102030405060708090a0b0c0d0e0f"

AES_MSISDN = "254700000001"
AES_ICCID = "8925400000000000018"
TDES_MSISDN = "254700000002"
TDES_ICCID = "8925400000000000026"
OLD_PHONE_MSISDN = "254700000003"
OLD_PHONE_ICCID = "8925400000000000034"

KEYS_YAML = f"""\
minimum_security: {{integrity: cc, ciphering: true, counter: higher}}
defaults:
  tar: BFFF01
  spi: {{integrity: cc, ciphering: true, counter: higher, por: none,
        por_integrity: cc, por_ciphering: true, por_via_sms_submit: true}}
subscribers:
  - msisdn: "{AES_MSISDN}"
    iccid: "{AES_ICCID}"
    kic: {{algorithm: aes, key: "{AES_KIC}", kvn: 1}}
    kid: {{algorithm: aes, key: "{AES_KID}", kvn: 1}}
  - msisdn: "{TDES_MSISDN}"
    iccid: "{TDES_ICCID}"
    kic: {{algorithm: 3des2, key: "{TDES_KIC}", kvn: 3}}
    kid: {{algorithm: 3des2, key: "{TDES_KID}", kvn: 3}}
  - msisdn: "{OLD_PHONE_MSISDN}"
    iccid: "{OLD_PHONE_ICCID}"
    kic: {{algorithm: aes, key: "{AES_KIC}"}}
    kid: {{algorithm: aes, key: "{AES_KID}"}}
    supports_yes_no: false
"""


def client_config(port: int, **overrides: Any) -> ClientConfig:
    """A ClientConfig for tests: small back-offs so reconnects and throttling settle quickly."""
    settings: dict[str, Any] = {
        "window": 10,
        "response_timeout": 5.0,
        "enquire_link_interval": 30.0,
        "connect_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        "throttle_initial": 0.02,
        "throttle_max": 0.5,
    }
    settings.update(overrides)
    return ClientConfig("127.0.0.1", port, SYSTEM_ID, PASSWORD, **settings)


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test (not hang) if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class SubmitTap:
    """A TCP relay between ESME and SMSC that decodes every PDU the ESME sends."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.from_esme: list[Pdu] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def submits(self) -> list[SubmitSm]:
        return [pdu for pdu in self.from_esme if isinstance(pdu, SubmitSm)]

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        for src, dst, sink in ((reader, up_writer, self.from_esme), (up_reader, writer, None)):
            task = asyncio.create_task(self._pump(src, dst, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, sink: list[Pdu] | None) -> None:
        buffer = bytearray()
        try:
            while data := await src.read(65536):
                if sink is not None:
                    buffer += data
                    while len(buffer) >= 16 and len(buffer) >= int.from_bytes(buffer[0:4], "big"):
                        length = int.from_bytes(buffer[0:4], "big")
                        sink.append(decode_pdu(bytes(buffer[:length])))
                        del buffer[:length]
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


StartSmsc = Callable[..., Awaitable[Any]]
Connect = Callable[..., Awaitable[Any]]

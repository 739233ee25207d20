"""Helpers for the gateway end-to-end tests (import as ``from smpp_harness import ...``).

Everything here is real: the SMSC simulator listens on a loopback socket, the ESME connects to it
over TCP, and the wire tap is a TCP relay that reads the SMPP headers going by. Nothing of ours is
mocked. Timeouts are generous because the machine is small and other suites run at the same time;
no test asserts that anything is fast.

The fixtures that use these live in ``conftest.py`` next to this file; the helpers live here, under
a name unique in ``tests/``, because several directories have a ``conftest`` module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.smpp.client import ClientConfig, SmppClient
from simulators.smsc import SmscSimulator

SYSTEM_ID = "esme"
PASSWORD = "secret"
WAIT = 10.0  # seconds any single await may take before the test calls it a hang


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
    system_id = settings.pop("system_id", SYSTEM_ID)
    password = settings.pop("password", PASSWORD)
    return ClientConfig("127.0.0.1", port, system_id, password, **settings)


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test (not hang) if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


StartSmsc = Callable[..., Awaitable[SmscSimulator]]
Connect = Callable[..., Awaitable[SmppClient]]


class WireTap:
    """A TCP relay that records command_id and command_status of every SMPP PDU in each direction.

    It frames the byte stream by command_length only (the first four octets of each PDU), so what it
    reports does not depend on our codec.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.to_smsc: list[tuple[int, int]] = []  # (command_id, command_status) from ESME to SMSC
        self.to_esme: list[tuple[int, int]] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @staticmethod
    def count(direction: list[tuple[int, int]], command_id: int, status: int | None = None) -> int:
        """How many PDUs with ``command_id`` (and ``status`` if given) went in ``direction``."""
        return sum(1 for cid, st in direction if cid == command_id and (status is None or st == status))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        for src, dst, log in ((reader, up_writer, self.to_smsc), (up_reader, writer, self.to_esme)):
            task = asyncio.create_task(self._pump(src, dst, log))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: list[tuple[int, int]]) -> None:
        buffer = bytearray()
        try:
            while data := await src.read(65536):
                buffer += data
                while len(buffer) >= 16:
                    length = int.from_bytes(buffer[0:4], "big")
                    if len(buffer) < max(length, 16):
                        break
                    log.append((int.from_bytes(buffer[4:8], "big"), int.from_bytes(buffer[8:12], "big")))
                    del buffer[: max(length, 16)]
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

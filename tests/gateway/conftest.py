"""Fixtures for the gateway end-to-end tests: a running SMSC simulator, a bound ESME, a wire tap.

Helpers and types they share with the tests are in ``smpp_harness.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_bed import Network, open_network
from smpp_harness import PASSWORD, SYSTEM_ID, WAIT, Connect, StartSmsc, WireTap, client_config

from gateway.smpp.client import SmppClient
from simulators.smsc import SmscSimulator, parse_personality


@pytest.fixture
async def start_smsc() -> AsyncIterator[StartSmsc]:
    """``await start_smsc(personality="nack:5", port=0, **simulator_kwargs)`` -> a listening simulator."""
    sims: list[SmscSimulator] = []

    async def start(personality: str = "happy", port: int = 0, **kwargs: Any) -> SmscSimulator:
        kwargs.setdefault("seed", 7)
        accounts = kwargs.pop("accounts", {SYSTEM_ID: PASSWORD})
        sim = SmscSimulator(accounts, personality=parse_personality(personality), **kwargs)
        await sim.start("127.0.0.1", port)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(port, **config_overrides)`` -> a started (bound) SmppClient, closed at teardown."""
    clients: list[SmppClient] = []

    async def make(port: int, **overrides: Any) -> SmppClient:
        client = SmppClient(client_config(port, **overrides))
        await asyncio.wait_for(client.start(), WAIT)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await asyncio.wait_for(client.close(drain_timeout=1.0), WAIT)


@pytest.fixture
async def smsc(start_smsc: StartSmsc) -> SmscSimulator:
    """A well-behaved SMSC simulator on an ephemeral loopback port."""
    return await start_smsc()


@pytest.fixture
async def client(smsc: SmscSimulator, connect: Connect) -> SmppClient:
    """An ESME bound as transceiver to ``smsc``."""
    return await connect(smsc.address[1])


@pytest.fixture
async def wire_tap() -> AsyncIterator[Callable[[int], Awaitable[tuple[WireTap, int]]]]:
    """``tap, port = await wire_tap(smsc_port)``: connect the ESME to ``port`` to be observed."""
    taps: list[WireTap] = []

    async def make(upstream_port: int) -> tuple[WireTap, int]:
        tap = WireTap(upstream_port)
        taps.append(tap)
        return tap, await tap.start()

    yield make
    for tap in taps:
        await tap.stop()


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    """A whole gateway's network on loopback (gateway_bed.py): simulators up, gateways made on demand."""
    async for net in open_network(tmp_path):
        yield net

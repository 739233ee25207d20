"""Fixtures for the simulator tests: a real SMSC simulator on a loopback port and a real ESME bound to it.

Shared builders live in ``stk_sim_kit.py`` (a name unique in ``tests/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.smpp.client import ClientConfig, SmppClient
from simulators.smsc import SmscSimulator

SYSTEM_ID = "gateway"
PASSWORD = "secret"


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    sim = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=3)
    await sim.start("127.0.0.1", 0)
    yield sim
    await sim.stop()


@pytest.fixture
async def esme(smsc: SmscSimulator) -> AsyncIterator[SmppClient]:
    """The gateway's ESME, bound as transceiver: it submits pushes and receives the MO answers."""
    config = ClientConfig(
        "127.0.0.1",
        smsc.address[1],
        SYSTEM_ID,
        PASSWORD,
        window=10,
        response_timeout=5.0,
        connect_timeout=5.0,
        reconnect_initial=0.05,
        reconnect_max=0.5,
    )
    client = SmppClient(config)
    await asyncio.wait_for(client.start(), 10)
    yield client
    await asyncio.wait_for(client.close(drain_timeout=1.0), 10)

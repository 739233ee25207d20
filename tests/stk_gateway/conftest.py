"""Fixtures for the STK gateway tests: an SMSC simulator, a bound ESME, a store, a key store.

Helpers they share with the tests are in ``stk_harness.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from stk_harness import KEYS_YAML, PASSWORD, SYSTEM_ID, WAIT, Connect, StartSmsc, SubmitTap, client_config

from gateway.smpp.client import SmppClient
from gateway.stk.keystore import KeyStore
from gateway.storage.sqlite_store import SqliteStore
from simulators.smsc import SmscSimulator, parse_personality


@pytest.fixture
async def start_smsc() -> AsyncIterator[StartSmsc]:
    """``await start_smsc(personality="happy", **simulator_kwargs)`` -> a listening simulator."""
    sims: list[SmscSimulator] = []

    async def start(personality: str = "happy", **kwargs: Any) -> SmscSimulator:
        kwargs.setdefault("seed", 7)
        sim = SmscSimulator({SYSTEM_ID: PASSWORD}, personality=parse_personality(personality), **kwargs)
        await sim.start("127.0.0.1", 0)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(port, **config_overrides)`` -> a bound SmppClient, closed at teardown."""
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
    sim: SmscSimulator = await start_smsc()
    return sim


@pytest.fixture
async def tap(smsc: SmscSimulator) -> AsyncIterator[tuple[SubmitTap, int]]:
    """A decoding relay in front of ``smsc``: connect the ESME to the returned port."""
    relay = SubmitTap(smsc.address[1])
    port = await relay.start()
    yield relay, port
    await relay.stop()


@pytest.fixture
async def client(tap: tuple[SubmitTap, int], connect: Connect) -> SmppClient:
    """An ESME bound as transceiver to ``smsc`` through the tap."""
    esme: SmppClient = await connect(tap[1])
    return esme


@pytest.fixture
def keystore() -> KeyStore:
    return KeyStore.from_yaml(KEYS_YAML, file="test_keys.yaml")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.sqlite"


@pytest.fixture
def store(store_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(store_path) as opened:
        yield opened

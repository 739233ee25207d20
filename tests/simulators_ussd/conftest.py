"""Fixtures for the USSD relay tests: a real SMSC simulator on a loopback port (profile "standard",
a short network timeout where a test asks for one) and the test's gateway (``ussd_relay_kit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ussd_relay_kit import PASSWORD, SYSTEM_ID, UssdGateway, bound_gateway

from simulators.smsc import SmscSimulator


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    sim = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=5)
    await sim.start("127.0.0.1", 0)
    yield sim
    await sim.stop()


@pytest.fixture
async def gateway(smsc: SmscSimulator) -> AsyncIterator[UssdGateway]:
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gw:
        yield gw

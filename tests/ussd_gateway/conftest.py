"""Fixtures for the USSD service tests: an SMSC simulator, a bound ESME, the USSD service on it with
the shipped menus, and handsets that dial through the simulator. Helpers are in
``ussd_gateway_harness.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ussd_gateway_harness import (
    PASSWORD,
    SHIPPED_MENUS,
    SYSTEM_ID,
    WAIT,
    Billing,
    Handsets,
    MakeRig,
    Rig,
    client_config,
)

from gateway.smpp.client import SmppClient
from gateway.ussd import MenuConfig, UssdService, load_menus
from protocols.ussd import PROFILES, UssdProfile
from simulators.smsc import SmscSimulator


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """``await make_rig(profile=..., menus=..., handlers=..., providers=..., **service_kwargs)``: an
    SMSC simulator, an ESME bound to it and a started USSD service (the shipped menus and the Billing
    handlers unless given); all torn down after the test."""
    made: list[Rig] = []

    async def make(
        *,
        profile: UssdProfile | None = None,
        menus: MenuConfig | None = None,
        handlers: Mapping[str, Any] | None = None,
        providers: Mapping[str, Any] | None = None,
        **service_kwargs: Any,
    ) -> Rig:
        profile = profile or PROFILES["standard"]
        smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, seed=7, ussd_profile=profile)
        await smsc.start("127.0.0.1", 0)
        handsets = Handsets(smsc, profile)
        client = SmppClient(client_config(smsc.address[1]))
        await asyncio.wait_for(client.start(), WAIT)
        billing = Billing()
        service = UssdService(
            client,
            profile,
            menus or load_menus(SHIPPED_MENUS, profile=profile),
            billing.handlers() if handlers is None else handlers,
            billing.providers() if providers is None else providers,
            **service_kwargs,
        )
        await service.start()
        rig = Rig(smsc, client, handsets, service, billing)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await asyncio.wait_for(rig.service.close(), WAIT)
        await asyncio.wait_for(rig.client.close(drain_timeout=1.0), WAIT)
        await rig.smsc.stop()


@pytest.fixture
async def rig(make_rig: MakeRig) -> Rig:
    made: Rig = await make_rig()
    return made

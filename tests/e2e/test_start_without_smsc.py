"""``tgw run`` while the SMSC is down (w2 #2): the gateway starts anyway, takes usage events, says
it is not ready until it is bound, and binds once the SMSC comes up. A bind the SMSC refuses at
start (a wrong password) is still fatal at once, with the reason and a non-zero exit status.

The gateway is a separate process started as an operator runs it; the SMSC and billing simulators
run in the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import free_port
from tgw_kit import TOKEN, billing_simulator, copy_configs, gateway_config, tgw_run

from simulators.smsc import SmscSimulator


@pytest.fixture
async def billing_url() -> AsyncIterator[str]:
    async with billing_simulator() as url:
        yield url


def _config(tmp_path: Path, smsc_port: int, billing_url: str, admin_port: int, http_port: int) -> Path:
    # the bind retried at most every half second: the test does not wait long once the SMSC is up
    changes = [("  reconnect_max: 30", "  reconnect_max: 0.5")]
    configs = copy_configs(tmp_path)
    return gateway_config(
        configs, smsc_port, billing_url, http_port=http_port, admin_port=admin_port, changes=changes
    )


async def _ready(session: aiohttp.ClientSession, admin: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{admin}/health/ready", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        body: dict[str, Any] = await r.json()
        return r.status, body


EVENT = {
    "event_id": "254700000001:data_1000mb:1:1",
    "msisdn": "254700000001",
    "kind": "threshold",
    "package_id": "data_1000mb",
    "timestamp": "2026-05-28T10:00:00+00:00",
    "sequence": 1,
    "used_bytes": 900,
    "quota_bytes": 1000,
    "percent": 90.0,
    "period": "1",
}


async def test_gateway_starts_and_takes_events_while_the_smsc_is_down(
    billing_url: str, tmp_path: Path
) -> None:
    smsc_port, admin_port, http_port = free_port(), free_port(), free_port()
    smsc: SmscSimulator | None = None
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        async with tgw_run(_config(tmp_path, smsc_port, billing_url, admin_port, http_port)) as running:
            await running.until("gateway running")
            async with aiohttp.ClientSession() as session:
                status, body = await _ready(session, admin)
                assert status == 503 and any("SMPP not bound" in str(r) for r in body["reasons"]), body
                async with session.post(f"http://127.0.0.1:{http_port}/v1/events", json=EVENT) as answer:
                    assert answer.status == 202, await answer.text()
                # the SMSC comes up: the gateway binds on its own and is ready
                smsc = SmscSimulator({"tgw": "secret"}, enquire_link_interval=None)
                await smsc.start("127.0.0.1", smsc_port)
                async with asyncio.timeout(20):
                    while (await _ready(session, admin))[0] != 200:
                        await asyncio.sleep(0.1)
                assert "tgw" in smsc.bound_system_ids
            running.proc.terminate()
            assert await asyncio.wait_for(running.proc.wait(), 30) == 0
    finally:
        if smsc is not None:
            await smsc.stop()


async def test_a_refused_bind_at_start_is_fatal(billing_url: str, tmp_path: Path) -> None:
    smsc = SmscSimulator({"tgw": "other"}, enquire_link_interval=None)  # the gateway's password is wrong
    await smsc.start("127.0.0.1", 0)
    try:
        async with tgw_run(
            _config(tmp_path, smsc.address[1], billing_url, free_port(), free_port())
        ) as running:
            status, err = await running.ended()
        assert status == 1, err
        assert "ESME_RINVPASWD" in err and f"127.0.0.1:{smsc.address[1]}" in err, err
        assert "Traceback" not in err
        assert smsc.stats.bind_failures == 1
    finally:
        await smsc.stop()

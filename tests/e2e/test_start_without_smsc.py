"""``tgw run`` while the SMSC is down (w2 #2): the gateway starts anyway, takes usage events, says
it is not ready until it is bound, and binds once the SMSC comes up. A bind the SMSC refuses at
start (a wrong password) is still fatal at once, with the reason and a non-zero exit status.

The gateway is a separate process started as an operator runs it; the SMSC and billing simulators
run in the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import free_port

from simulators.billing import Billing, BillingConfig, BillingServer
from simulators.smsc import SmscSimulator

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef-test-token"


@pytest.fixture
async def billing_url() -> AsyncIterator[str]:
    billing = BillingServer(Billing(BillingConfig()), clock=lambda: 1_780_000_000.0)
    host, port = await billing.start()
    yield f"http://{host}:{port}"
    await billing.stop()


def _config(tmp_path: Path, smsc_port: int, billing_url: str, admin_port: int, http_port: int) -> Path:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    config = configs / "gateway.yaml"
    text = config.read_text()
    for old, new in (
        ("  port: 2775", f"  port: {smsc_port}"),
        ("  reconnect_max: 30", "  reconnect_max: 0.5"),
        ("  url: http://127.0.0.1:8090", f"  url: {billing_url}"),
        ("    port: 3868", "    port: 0"),
        ("    port: 8081", f"    port: {http_port}"),
        ("  port: 8088", f"  port: {admin_port}"),
        ("state_dir: ../var/gateway", f"state_dir: {tmp_path / 'state'}"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    config.write_text(text)
    return config


async def _start(config: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "TGW_SMSC_PASSWORD": "secret", "TGW_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.cli", "run", "--config", str(config), env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _until(proc: asyncio.subprocess.Process, needle: str, timeout: float = 30.0) -> str:
    assert proc.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while raw := await proc.stderr.readline():
            line = raw.decode(errors="replace").rstrip()
            seen.append(line)
            if needle in line:
                return line
    raise AssertionError(f"no line with {needle!r}:\n" + "\n".join(seen[-30:]))


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
    proc = await _start(_config(tmp_path, smsc_port, billing_url, admin_port, http_port))
    smsc: SmscSimulator | None = None
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        await _until(proc, "gateway running")
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
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if smsc is not None:
            await smsc.stop()


async def test_a_refused_bind_at_start_is_fatal(billing_url: str, tmp_path: Path) -> None:
    smsc = SmscSimulator({"tgw": "other"}, enquire_link_interval=None)  # the gateway's password is wrong
    await smsc.start("127.0.0.1", 0)
    proc = await _start(_config(tmp_path, smsc.address[1], billing_url, free_port(), free_port()))
    try:
        status = await asyncio.wait_for(proc.wait(), 30)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert status == 1, err
        assert "ESME_RINVPASWD" in err and f"127.0.0.1:{smsc.address[1]}" in err, err
        assert "Traceback" not in err
        assert smsc.stats.bind_failures == 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()

"""``tgw sim billing`` (w2 #5): the billing / OCS simulator as a process, so ``tgw run`` can be pointed
at it (its ``billing.url``) without writing Python: subscribers with a credit history, the config's
scoring and catalogue, the HTTP API of ``simulators.billing.BillingServer``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
from helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.cli", "sim", "billing", *args, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_sim_billing_serves_subscribers_over_http() -> None:
    port = free_port()
    proc = await _start("--listen", f"127.0.0.1:{port}", "--subscribers", "3", "--no-faults")
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"billing simulator listening on http://127.0.0.1:{port}" in line and "3 subscribers" in line
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/v1/subscribers/254700000002/credit") as answer:
                assert answer.status == 200
                credit = await answer.json()
            assert credit["msisdn"] == "254700000002" and float(credit["credit_limit"]) > 0
            async with session.get(f"{base}/v1/subscribers/254700000003") as answer:
                assert answer.status == 404  # only the three named
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sim_billing_bad_config_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "billing.yaml"
    config.write_text("currency: KES\ncredit_fee_percent: 10.5\n")
    proc = await _start("--listen", f"127.0.0.1:{free_port()}", "--config", str(config))
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 64
    assert f"{config}:2" in err.decode() and "Traceback" not in err.decode()

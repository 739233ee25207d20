"""``tgw sim billing`` (w2 #5): the billing / OCS simulator as a process, so ``tgw run`` can be pointed
at it (its ``billing.url``) without writing Python: subscribers with a credit history, the config's
scoring and catalogue, the HTTP API of ``simulators.billing.BillingServer``.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiohttp
from helpers import free_port
from tgw_kit import process


def _sim_billing(*args: str) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
    return process(sys.executable, "-m", "simulators.cli", "sim", "billing", *args)


async def test_sim_billing_serves_subscribers_over_http() -> None:
    port = free_port()
    async with _sim_billing("--listen", f"127.0.0.1:{port}", "--subscribers", "3", "--no-faults") as proc:
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


async def test_sim_billing_bad_config_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "billing.yaml"
    config.write_text("currency: KES\ncredit_fee_percent: 10.5\n")
    async with _sim_billing("--listen", f"127.0.0.1:{free_port()}", "--config", str(config)) as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 64
    assert f"{config}:2" in err.decode() and "Traceback" not in err.decode()

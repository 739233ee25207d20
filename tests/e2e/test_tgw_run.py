"""``tgw run`` as a process (issue #9): it validates its config before starting, binds to the SMSC,
reloads on SIGHUP (refusing a bad config with the reason and keeping the bind), drains and unbinds on
SIGTERM, and exits at once on a second SIGTERM.

The SMSC and billing simulators run in the test's event loop; the gateway is a separate process
started with the installed ``tgw`` entry point, as an operator would run it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tgw_kit import TOKEN, bound, copy_configs, gateway_config, line_of, simulators, tgw_run

from gateway.runtime import thp_mode
from simulators.smsc import SmscSimulator, parse_personality


@pytest.fixture
async def network() -> AsyncIterator[tuple[SmscSimulator, str]]:
    async with simulators() as net:
        yield net


def _config(tmp_path: Path, smsc: SmscSimulator, billing_url: str) -> Path:
    return gateway_config(copy_configs(tmp_path), smsc.address[1], billing_url)


async def test_reload_and_graceful_stop(network: tuple[SmscSimulator, str], tmp_path: Path) -> None:
    smsc, billing_url = network
    config = _config(tmp_path, smsc, billing_url)
    async with tgw_run(config, "--pcap", str(tmp_path / "gateway.pcap")) as running:
        # the object heap is on huge pages where the kernel offers them (gateway.runtime.use_huge_pages)
        heap = await running.until("object heap on")
        if thp_mode() in {"always", "madvise"}:
            assert "transparent huge pages: 65536 MiB reserved" in heap
        else:
            assert "default pages" in heap
        await running.until("gateway running")
        await bound(smsc)
        binds = smsc.stats.binds
        # a broken campaign file: the reload is refused with the file and the reason, the bind stays
        campaign = config.parent / "campaigns" / "upsell_new.yaml"
        good = campaign.read_text()
        campaign.write_text(good.replace("packages: [data_100mb,", "packages: [data_150mb,", 1))
        running.proc.send_signal(signal.SIGHUP)
        refused = await running.until("reload refused")
        assert "upsell_new.yaml" in refused and "data_150mb" in refused
        # fixed again, and a change of the log level: applied live
        campaign.write_text(good)
        gateway_yaml = config.read_text()
        config.write_text(gateway_yaml.replace("  level: INFO", "  level: DEBUG", 1))
        running.proc.send_signal(signal.SIGHUP)
        reloaded = await running.until("config reloaded:")
        assert "campaigns" in reloaded and "logging" in reloaded
        assert smsc.stats.binds == binds and "tgw" in smsc.bound_system_ids  # no re-bind
        # SIGTERM: drain and unbind, exit 0
        assert await running.stop(30) == 0
    assert smsc.stats.unbinds >= 1  # a clean close, not a dropped link
    records = [json.loads(line) for line in running.lines if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    # the capture (both directions, the SMSC being another process's socket as far as tgw run knows)
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark missing: `apt-get install tshark` (.ci/run does it)")
    pcap = tmp_path / "gateway.pcap"
    decode = ("-d", f"tcp.port=={smsc.address[1]},smpp")
    malformed = subprocess.run(
        [tshark, "-n", "-r", str(pcap), *decode, "-Y", "_ws.malformed"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert malformed.stdout == ""
    pdus = subprocess.run(
        [tshark, "-n", "-r", str(pcap), *decode, "-Y", "smpp", "-T", "fields", "-e", "smpp.command_id"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    # bind_transceiver and its response, unbind and its response: what we sent and what we received
    assert {"0x00000009", "0x80000009", "0x00000006", "0x80000006"} <= set(pdus)


async def test_a_bad_config_starts_nothing(network: tuple[SmscSimulator, str], tmp_path: Path) -> None:
    smsc, billing_url = network
    config = _config(tmp_path, smsc, billing_url)
    config.write_text(config.read_text().replace("  window: 100", "  window: -1", 1))
    async with tgw_run(config) as running:
        status, err = await running.ended()
    assert status == 64
    assert f"gateway.yaml:{line_of(config, 'window: -1')}:" in err and "window" in err
    assert smsc.stats.binds == 0


async def test_a_second_sigterm_exits_at_once(network: tuple[SmscSimulator, str], tmp_path: Path) -> None:
    """An SMSC that binds and then answers nothing: a test message sent through the admin API stays in
    the SMPP window, so the graceful stop waits for it to drain; the second SIGTERM ends the process at
    once with status 1."""
    _, billing_url = network
    smsc = SmscSimulator(
        {"tgw": "secret"}, personality=parse_personality("blackhole"), enquire_link_interval=None
    )
    await smsc.start("127.0.0.1", 0)
    sending: asyncio.Task[object] | None = None
    try:
        async with tgw_run(_config(tmp_path, smsc, billing_url)) as running:
            address = await running.address("admin API listening on")
            await running.until("gateway running")
            await bound(smsc)

            async def send() -> object:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        f"http://{address}/v1/messages/test",
                        json={"to": "254700000001", "text": "ping"},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    ) as response,
                ):
                    return response.status

            sending = asyncio.create_task(send())
            loop = asyncio.get_running_loop()
            await asyncio.sleep(1.0)  # the submit_sm goes out and stays unanswered (the SMSC counts nothing)
            assert not sending.done()
            running.proc.send_signal(signal.SIGTERM)
            await running.until("stopping")
            await asyncio.sleep(1.0)  # the graceful stop is under way, waiting for the window to drain
            assert running.proc.returncode is None
            began = loop.time()
            running.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(running.proc.wait(), 30) == 1
            assert loop.time() - began < 5
    finally:
        if sending is not None:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        await smsc.stop()

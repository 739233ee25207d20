"""``tgw`` as an operator runs it, when things go wrong: a listen port already taken by another process
(``tgw run``), an SMSC that goes away after the bind, arguments the SMSC could never take, and the
wording of a connection failure (``tgw send-sms``). Real subprocesses, real sockets on loopback.

Exit statuses are those of ``gateway/cli.py``'s docstring: 1 connection failure, 64 bad arguments.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from simulators.billing import Billing, BillingConfig, BillingServer
from simulators.smsc import SmscSimulator, parse_personality

ROOT = Path(__file__).resolve().parents[2]
TGW = str(Path(sys.executable).parent / "tgw")
TOKEN = "0123456789abcdef-test-token"
PROCESS_WAIT = 60.0  # a cold Python start on a busy 2-core machine can take a while


async def run_tgw(
    *args: str, timeout: float = PROCESS_WAIT, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TGW, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"tgw {' '.join(args[:1])} still running after {timeout:g} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def send_args(port: int, *, source: str = "12345", destination: str = "31600000001") -> list[str]:
    return [
        "send-sms",
        "--smsc",
        f"127.0.0.1:{port}",
        "--system-id",
        "a",
        "--password",
        "b",
        "--from",
        source,
        "--to",
        destination,
        "--text",
        "hi",
    ]


# --- tgw run: a listen port taken by another process -------------------------------------------------


@pytest.fixture
async def network() -> AsyncIterator[tuple[SmscSimulator, str]]:
    smsc = SmscSimulator({"tgw": "secret"}, enquire_link_interval=None)
    await smsc.start("127.0.0.1", 0)
    billing = BillingServer(Billing(BillingConfig()), clock=lambda: 1_780_000_000.0)
    host, port = await billing.start()
    yield smsc, f"http://{host}:{port}"
    await billing.stop()
    await smsc.stop()


def _config(tmp_path: Path, smsc: SmscSimulator, billing_url: str, taken: str, port: int) -> Path:
    """configs/gateway.yaml on the simulators, every listener on port 0 but ``taken`` on ``port``."""
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    config = configs / "gateway.yaml"
    text = config.read_text()
    listeners = {"diameter": "    port: 3868", "http": "    port: 8081", "admin": "  port: 8088"}
    for old, new in (
        ("  port: 2775", f"  port: {smsc.address[1]}"),
        ("  url: http://127.0.0.1:8090", f"  url: {billing_url}"),
        *(
            (line, line.split(":")[0] + f": {port if name == taken else 0}")
            for name, line in listeners.items()
        ),
        ("state_dir: ../var/gateway", f"state_dir: {tmp_path / 'state'}"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    config.write_text(text)
    return config


@pytest.mark.parametrize("taken", ["admin", "diameter"])
async def test_run_on_a_taken_port_says_so_and_unbinds(
    network: tuple[SmscSimulator, str], tmp_path: Path, taken: str
) -> None:
    """Another process holds the admin API's (aiohttp) or the Diameter peer's port: one line that says
    which address cannot be listened on, exit 1, and the SMPP bind made before is closed with an unbind."""
    smsc, billing_url = network
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = _config(tmp_path, smsc, billing_url, taken, port)
        env = {**os.environ, "TGW_SMSC_PASSWORD": "secret", "TGW_ADMIN_TOKEN": TOKEN}
        code, out, err = await run_tgw("run", "--config", str(config), env=env)
    assert code == 1, err
    assert out == ""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("tgw:")]
    assert len(errors) == 1, err
    assert "cannot listen" in errors[0] and str(port) in errors[0], errors
    assert smsc.stats.binds == 1
    assert smsc.stats.unbinds == 1  # what was started was stopped gracefully


async def test_ingest_on_a_taken_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "ingest.yaml"
        config.write_text(
            f"ingest:\n  http:\n    host: 127.0.0.1\n    port: {port}\n"
            f"  journal:\n    path: {tmp_path / 'ingest.sqlite'}\n",
            encoding="utf-8",
        )
        code, out, err = await run_tgw("ingest", "--config", str(config))
    assert code == 1, err
    assert out == ""
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot listen" in err and str(port) in err


# --- tgw send-sms ------------------------------------------------------------------------------------


async def test_send_sms_to_an_smsc_that_goes_away_after_the_bind_ends() -> None:
    """The SMSC binds, answers nothing, and goes away: the client keeps trying to reconnect in the
    background, but the command gives up within its bound, says so, and exits 1."""
    smsc = SmscSimulator({"a": "b"}, personality=parse_personality("blackhole"), enquire_link_interval=None)
    await smsc.start("127.0.0.1", 0)
    port = smsc.address[1]
    proc = await asyncio.create_subprocess_exec(
        TGW, *send_args(port), "--timeout", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROCESS_WAIT
        while "a" not in smsc.bound_system_ids:
            assert loop.time() < deadline, "send-sms did not bind"
            await asyncio.sleep(0.02)
        await smsc.stop()  # the SMSC goes away (no listener either: reconnects are refused)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 40.0)  # the bound is 2 s x 4 x 1 part
        except TimeoutError:
            raise AssertionError("tgw send-sms still running 40 s after the SMSC went away") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()
    assert proc.returncode == 1, err
    assert out == b""
    assert b"no answer from the SMSC" in err, err
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    ("source", "destination", "field"),
    [
        ("123456789012345678901", "31600000001", "--from"),  # 21 digits: source_addr is at most 20
        ("12345", "3160000000131600000001", "--to"),
        ("Caf\u20ac", "31600000001", "--from"),  # not latin-1: no C-Octet String can carry it
    ],
)
async def test_send_sms_address_the_smsc_cannot_take_is_a_usage_error(
    source: str, destination: str, field: str
) -> None:
    """Bad arguments (exit 64), told before connecting: the SMSC here counts no connection at all."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code, out, err = await run_tgw(*send_args(port, source=source, destination=destination))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert code == 64, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert field in err


async def test_send_sms_connection_failure_is_said_once(free_port: Callable[[], int]) -> None:
    port = free_port()
    code, out, err = await run_tgw(*send_args(port))
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.count("cannot connect") == 1, err
    assert f"127.0.0.1:{port}" in err

"""``tgw`` as an operator runs it, when things go wrong: a listen port already taken by another process
(``tgw run``), an SMSC that goes away after the bind, arguments the SMSC could never take, and the
wording of a connection failure (``tgw send-sms``). Real subprocesses, real sockets on loopback.

Exit statuses are those of ``gateway/cli.py``'s docstring: 1 connection failure, 64 bad arguments.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tgw_kit import (
    PROCESS_WAIT,
    RUN_ENV,
    TGW,
    bound,
    copy_configs,
    gateway_config,
    kill,
    run_tgw,
    send_args,
    simulators,
)

from simulators.smsc import SmscSimulator, parse_personality

# --- tgw run: a listen port taken by another process -------------------------------------------------


@pytest.fixture
async def network() -> AsyncIterator[tuple[SmscSimulator, str]]:
    async with simulators() as net:
        yield net


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
        # every listener on port 0 but the taken one
        config = gateway_config(
            copy_configs(tmp_path), smsc.address[1], billing_url, **{f"{taken}_port": port}
        )
        code, out, err = await run_tgw("run", "--config", str(config), env={**os.environ, **RUN_ENV})
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
        await bound(smsc, "a", PROCESS_WAIT)
        await smsc.stop()  # the SMSC goes away (no listener either: reconnects are refused)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 40.0)  # the bound is 2 s x 4 x 1 part
        except TimeoutError:
            raise AssertionError("tgw send-sms still running 40 s after the SMSC went away") from None
    finally:
        await kill(proc)
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

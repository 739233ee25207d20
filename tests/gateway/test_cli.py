"""The ``tgw`` console script, run as the operator runs it: real subprocesses over loopback.

``tgw sim smsc`` runs in the background; ``tgw send-sms`` talks to it. Exit statuses are those
documented in ``gateway/cli.py`` (0 ok, 1 connection failure, 2 bind refused, 5 the receipt reports
a failure, 64 a usage/config error; argparse's own errors exit 2). Also unit tests of the small
parsers behind the command line and of the TPS limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from tgw_kit import PROCESS_WAIT, TGW, run_tgw, send_args

from gateway.cli import parse_host_port
from gateway.smpp.client import TokenBucket
from protocols.errors import ConfigError
from simulators.cli import _parse_outcomes
from simulators.smsc import Personality, SmscSimulator, parse_account, parse_personality

SmscProcess = Callable[..., Awaitable[int]]


@pytest.fixture
async def sim_smsc(free_port: Callable[[], int]) -> AsyncIterator[SmscProcess]:
    """``port = await sim_smsc(*extra_args)``: ``tgw sim smsc`` listening, account a:b."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(*extra: str) -> int:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            TGW,
            "sim",
            "smsc",
            "--listen",
            f"127.0.0.1:{port}",
            "--account",
            "a:b",
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), PROCESS_WAIT)).decode()
        assert "listening" in line, line
        assert f"127.0.0.1:{port}" in line
        return port

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.communicate(), PROCESS_WAIT)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- the console script ------------------------------------------------------------------------------


async def test_send_sms_with_receipt(sim_smsc: SmscProcess) -> None:
    port = await sim_smsc()
    code, out, err = await run_tgw(*send_args(port, "--dlr"))
    assert code == 0, err
    lines = out.split()
    assert len(lines) == 2
    message_id, stat = lines
    int(message_id, 16)  # the simulator's ids are hex
    assert stat == "DELIVRD"


async def test_send_sms_long_unicode_text(sim_smsc: SmscProcess) -> None:
    """A text over 70 UCS-2 characters goes in concatenated parts, each with its id and receipt."""
    port = await sim_smsc()
    args = send_args(port, "--dlr")
    args[args.index("hi")] = "Привет из шлюза " * 6  # 96 UCS-2 characters: 2 parts of <= 67
    code, out, err = await run_tgw(*args)
    assert code == 0, err
    lines = out.split()
    assert len(lines) == 4  # two message ids, then two receipts
    assert [int(mid, 16) for mid in lines[:2]] == sorted(int(mid, 16) for mid in lines[:2])
    assert lines[2:] == ["DELIVRD", "DELIVRD"]


@pytest.mark.parametrize("split", ["sar", "payload"])
async def test_send_sms_split_methods(sim_smsc: SmscProcess, split: str) -> None:
    port = await sim_smsc()
    args = send_args(port, "--split", split)
    args[args.index("hi")] = "x" * 200  # GSM 7-bit, over 160 septets
    code, out, err = await run_tgw(*args)
    assert code == 0, err
    assert len(out.split()) == (2 if split == "sar" else 1)


async def test_send_sms_wrong_password(sim_smsc: SmscProcess) -> None:
    port = await sim_smsc()
    code, out, err = await run_tgw(*send_args(port, password="wrong"))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "ESME_RINVPASWD" in err


async def test_send_sms_nothing_listening(free_port: Callable[[], int]) -> None:
    code, out, err = await run_tgw(*send_args(free_port()))
    assert code == 1
    assert out == ""
    assert "cannot connect" in err


async def test_send_sms_failed_receipt(sim_smsc: SmscProcess) -> None:
    port = await sim_smsc("--outcomes", "UNDELIV=1")
    code, out, err = await run_tgw(*send_args(port, "--dlr"))
    assert code == 5, err
    assert out.split()[-1] == "UNDELIV"


async def test_send_sms_without_dlr_prints_only_the_id(sim_smsc: SmscProcess) -> None:
    port = await sim_smsc()
    code, out, err = await run_tgw(*send_args(port))
    assert code == 0, err
    assert len(out.split()) == 1


async def test_send_sms_text_outside_the_bmp_goes_as_surrogate_pairs(sim_smsc: SmscProcess) -> None:
    port = await sim_smsc()
    args = send_args(port, "--dlr")
    args[args.index("hi")] = "party \U0001f389"
    code, out, err = await run_tgw(*args)
    assert code == 0, err
    assert out.split()[-1] == "DELIVRD"


async def test_sim_stops_cleanly_on_sigterm(free_port: Callable[[], int]) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        TGW,
        "sim",
        "smsc",
        "--listen",
        f"127.0.0.1:{port}",
        "--account",
        "a:b",
        "--personality",
        "nack:3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), PROCESS_WAIT)).decode()
    assert "personality=nack" in line
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_WAIT)
    assert proc.returncode == 0
    assert "stopped:" in out.decode()


async def test_sim_on_a_busy_port_fails_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_tgw("sim", "smsc", "--listen", f"127.0.0.1:{port}", "--account", "a:b")
    assert code == 1
    assert out == ""
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert len(err.strip().splitlines()) == 1, err


async def test_demo_burst() -> None:
    code, out, err = await run_tgw("demo", "--burst", "2000")
    assert code == 0, err
    # the SMS table: message id (hex), to, part, receipt stat, receipt id (decimal), text
    rows = [
        fields
        for fields in map(str.split, out.splitlines())
        if fields[1:2] and fields[1].startswith("3161234")
    ]
    assert len(rows) == 5  # four texts, the long one in two parts, each part with its receipt
    assert {row[3] for row in rows} <= {"DELIVRD", "UNDELIV", "EXPIRED"}
    for row in rows:
        assert int(row[0], 16) == int(row[4])  # hex message id, decimal receipt id: correlated
    # the SIM toolkit offers: every simulated user's choice comes back as the gateway's event
    assert "off-1: 254700000001 answered ACCEPTED" in out
    assert "off-2: 254700000002 answered DECLINED" in out
    assert "off-3: 254700000003 answered ITEM_CHOSEN, item 2" in out
    assert "off-4: 254700000004 answered NO_RESPONSE" in out
    # USSD: the menu walk and the one-shot code each end in a purchase the handler recorded once
    assert out.count("| Thank you. 500MB added to 254700000005.") == 2
    assert "| 99. More" in out
    assert "purchases recorded by the handler: [('254700000005', '500'), ('254700000005', '500')]" in out
    assert "burst: 2000 submit_sm" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--personality", "grumpy"], "unknown personality 'grumpy'"),
        (["--personality", "throttle:fast"], "throttle:fast"),
        (["--outcomes", "LOST=1"], "unknown receipt outcome 'LOST'"),
        (["--account", "a-system-id-too-long:b"], "at most 15"),
    ],
)
async def test_sim_config_errors_exit_64(free_port: Callable[[], int], args: list[str], message: str) -> None:
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    account = [] if "--account" in args else ["--account", "a:b"]
    code, out, err = await run_tgw("sim", "smsc", *listen, *account, *args)
    assert code == 64
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("smsc", ["localhost", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", ":2775"])
async def test_bad_smsc_address_is_a_usage_error(smsc: str) -> None:
    code, out, err = await run_tgw(
        "send-sms",
        "--smsc",
        smsc,
        "--system-id",
        "a",
        "--password",
        "b",
        "--from",
        "1",
        "--to",
        "2",
        "--text",
        "x",
    )
    assert code == 2
    assert out == ""
    assert "usage:" in err
    assert "is not HOST:PORT" in err


# --- the parsers behind the command line -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("happy", Personality()),
        ("throttle:50", Personality("throttle", throttle_tps=50.0)),
        ("throttle", Personality("throttle", throttle_tps=100.0)),
        ("blackhole", Personality("blackhole", blackhole=True)),
        ("slow:0.25", Personality("slow", response_delay=0.25)),
        ("slow", Personality("slow", response_delay=0.5)),
        ("disconnect:7", Personality("disconnect", disconnect_every=7)),
        ("nack:5", Personality("nack", nack_every=5)),
        ("nack:", Personality("nack", nack_every=10)),  # an empty argument takes the default
        ("lossy-receipts:1.0", Personality("lossy-receipts", receipt_loss=1.0)),
        ("lossy-receipts", Personality("lossy-receipts", receipt_loss=0.2)),
        ("mixed-ids", Personality("mixed-ids", receipt_ids_decimal=True)),
    ],
)
def test_parse_personality(spec: str, expected: Personality) -> None:
    assert parse_personality(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "grumpy",
        "",
        "throttle:x",
        "slow:soon",
        "disconnect:1.5",
        "nack:x",
        "lossy-receipts:1.5",
        "lossy-receipts:-0.1",
    ],
)
def test_parse_personality_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_personality(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a:b", ("a", "b")),
        ("esme:", ("esme", "")),
        ("x" * 15 + ":" + "y" * 8, ("x" * 15, "y" * 8)),
        ("a:b:c", ("a", "b:c")),
    ],
)
def test_parse_account(spec: str, expected: tuple[str, str]) -> None:
    assert parse_account(spec) == expected


@pytest.mark.parametrize("spec", ["nocolon", ":pw", "x" * 16 + ":pw", "a:" + "y" * 9])
def test_parse_account_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_account(spec)


def test_parse_host_port() -> None:
    assert parse_host_port("127.0.0.1:2775") == ("127.0.0.1", 2775)
    assert parse_host_port("::1:2775") == ("::1", 2775)
    assert parse_host_port("127.0.0.1:0") == ("127.0.0.1", 0)  # listen on any free port
    for bad in ("127.0.0.1", "127.0.0.1:65536", ":1", "h:-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_host_port(bad)


def test_parse_outcomes() -> None:
    assert _parse_outcomes("DELIVRD=0.9, undeliv=0.1") == {"DELIVRD": 0.9, "UNDELIV": 0.1}
    assert _parse_outcomes("EXPIRED") == {"EXPIRED": 1.0}
    with pytest.raises(ConfigError):
        _parse_outcomes("DELIVRD=most")


def test_simulator_rejects_unknown_outcome() -> None:
    with pytest.raises(ConfigError, match="LOST"):
        SmscSimulator({"a": "b"}, outcomes={"LOST": 1.0})


async def test_token_bucket_paces_to_its_rate() -> None:
    """A lower bound only: 1 + 10 tokens at 50/s with a burst of 1 need at least 10 / 50 s."""
    bucket = TokenBucket(50, burst=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(11):
        await bucket.acquire()
    assert loop.time() - started >= 0.2 * 0.9


async def test_token_bucket_burst() -> None:
    bucket = TokenBucket(1000)
    assert bucket.burst == 100  # a tenth of a second
    assert TokenBucket(5).burst == 1.0
    # the burst is there at once: at one token per 1000 s, waiting for a refill would be a hang
    glacial = TokenBucket(0.001, burst=5)
    for _ in range(5):
        await asyncio.wait_for(glacial.acquire(), 10)
    # after the burst, two more tokens take (at least) a second at 2/s
    slow = TokenBucket(2, burst=3)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        await asyncio.wait_for(slow.acquire(), 10)
    burst_done = loop.time()
    await slow.acquire(2)
    assert loop.time() - burst_done >= 1.0 * 0.9


def test_token_bucket_rejects_non_positive_rate() -> None:
    for rate in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            TokenBucket(rate)

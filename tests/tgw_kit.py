"""``tgw`` as an operator runs it, for tests (exit statuses: ``gateway/cli.py``'s docstring).

- ``run_tgw`` / ``send_args``: a ``tgw`` command (the installed console script) run to its end: status,
  stdout, stderr. ``process`` / ``kill``: any other command as a process, never left running.
- ``tgw_run`` / ``Running``: ``tgw run`` as a long-running process, its JSON log lines (stderr) read as
  they come; the process is killed on the way out if the test left it running.
- ``copy_configs`` / ``gateway_config`` / ``edit`` / ``line_of``: a copy of the shipped ``configs/`` to
  change, its ``gateway.yaml`` pointed at simulators on loopback.
- ``simulators`` / ``billing_simulator``: the SMSC and billing simulators such a gateway talks to, in the
  test's event loop; ``bound`` waits for a bind to the SMSC simulator.

Import as ``from tgw_kit import ...`` (``tests/`` is on ``sys.path``: see helpers.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from simulators.billing import Billing, BillingConfig, BillingServer
from simulators.smsc import SmscSimulator

ROOT = Path(__file__).resolve().parents[1]
TGW = str(Path(sys.executable).parent / "tgw")
TOKEN = "0123456789abcdef-test-token"
# what tgw run reads from its environment (the shipped gateway.yaml names these variables)
RUN_ENV = {"TGW_SMSC_PASSWORD": "secret", "TGW_ADMIN_TOKEN": TOKEN}
PROCESS_WAIT = 60.0  # a cold Python start on a busy 2-core machine can take a while
LOG_WAIT = 30.0  # seconds a wait for one log line may take before the test calls it a hang


# --- a copy of configs/ -----------------------------------------------------------------------------


def copy_configs(tmp_path: Path) -> Path:
    """A copy of configs/ in ``tmp_path / "configs"``, to change or break."""
    target = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """The first ``old`` in the file replaced by ``new``; ``old`` must be there (a test that edits nothing
    would pass for the wrong reason)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    """The number (from 1) of the first line of the file containing ``needle``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def gateway_config(
    configs: Path,
    smsc_port: int,
    billing_url: str,
    *,
    diameter_port: int = 0,
    http_port: int = 0,
    admin_port: int = 0,
    changes: Iterable[tuple[str, str]] = (),
) -> Path:
    """``gateway.yaml`` of the copy ``configs`` pointed at the simulators: the SMSC's port, billing's URL,
    the listeners' ports (0: any free one) and the state in ``state`` next to ``configs``; then each
    ``(old, new)`` of ``changes``."""
    config = configs / "gateway.yaml"
    for old, new in (
        ("  port: 2775", f"  port: {smsc_port}"),
        ("  url: http://127.0.0.1:8090", f"  url: {billing_url}"),
        ("    port: 3868", f"    port: {diameter_port}"),
        ("    port: 8081", f"    port: {http_port}"),
        ("  port: 8088", f"  port: {admin_port}"),
        ("state_dir: ../var/gateway", f"state_dir: {configs.parent / 'state'}"),
        *changes,
    ):
        edit(config, old, new)
    return config


# --- the simulators ---------------------------------------------------------------------------------


@asynccontextmanager
async def billing_simulator() -> AsyncIterator[str]:
    """The billing simulator over HTTP (no subscribers, a fixed clock): its base URL."""
    billing = BillingServer(Billing(BillingConfig()), clock=lambda: 1_780_000_000.0)
    host, port = await billing.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        await billing.stop()


@asynccontextmanager
async def simulators() -> AsyncIterator[tuple[SmscSimulator, str]]:
    """An SMSC simulator on a free port (account tgw:secret, no enquire_link) and billing's base URL."""
    smsc = SmscSimulator({"tgw": "secret"}, enquire_link_interval=None)
    await smsc.start("127.0.0.1", 0)
    try:
        async with billing_simulator() as billing_url:
            yield smsc, billing_url
    finally:
        await smsc.stop()


async def bound(smsc: SmscSimulator, system_id: str = "tgw", timeout: float = 20.0) -> None:
    """Wait until ``system_id`` is bound to the SMSC simulator."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while system_id not in smsc.bound_system_ids:
        assert loop.time() < deadline, f"{system_id!r} did not bind within {timeout:g} s"
        await asyncio.sleep(0.02)


# --- processes --------------------------------------------------------------------------------------


async def run_tgw(
    *args: str, timeout: float = PROCESS_WAIT, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """``tgw *args`` run to its end (killed after ``timeout``): exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        TGW, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await kill(proc)
        raise AssertionError(f"tgw {' '.join(args[:1])} still running after {timeout:g} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def send_args(
    port: int,
    *extra: str,
    password: str = "b",
    source: str = "12345",
    destination: str = "31600000001",
) -> list[str]:
    """``tgw send-sms`` of "hi" through the SMSC on loopback ``port`` as system id "a"; then ``extra``."""
    return [
        "send-sms",
        "--smsc",
        f"127.0.0.1:{port}",
        "--system-id",
        "a",
        "--password",
        password,
        "--from",
        source,
        "--to",
        destination,
        "--text",
        "hi",
        *extra,
    ]


async def kill(proc: asyncio.subprocess.Process) -> None:
    """End ``proc`` if it is still running, so a test that fails half-way leaves no process behind."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _spawn(
    *argv: str, env: Mapping[str, str], stdout: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    # unbuffered: a log line is on the pipe when it is written, not when a buffer fills
    return await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, cwd=ROOT,
        stdout=stdout, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@asynccontextmanager
async def process(
    *argv: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``argv`` as a process in the project root, ``env`` added to the environment, stdout and stderr
    piped; killed on the way out if it is still running."""
    proc = await _spawn(*argv, env=env or {})
    try:
        yield proc
    finally:
        await kill(proc)


class Running:
    """A ``tgw run`` process and its log (stderr) lines read so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def until(self, needle: str, timeout: float = LOG_WAIT) -> str:
        """The next log line containing ``needle`` (lines before it are kept in ``lines``)."""
        assert self.proc.stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no line with {needle!r}; got:\n" + "\n".join(self.lines[-30:]))
            raw = await asyncio.wait_for(self.proc.stderr.readline(), left)
            if not raw:
                raise AssertionError(f"tgw run exited before {needle!r}:\n" + "\n".join(self.lines[-30:]))
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if needle in line:
                return line

    async def address(self, needle: str, timeout: float = LOG_WAIT) -> str:
        """The host:port that ends the next log line containing ``needle`` ("admin API listening on")."""
        message: str = json.loads(await self.until(needle, timeout))["message"]
        return message.rsplit(" ", 1)[1]

    def drain(self) -> None:
        """From now on read the log in the background (into ``lines``): the process never blocks on a
        full pipe. ``until`` is not for use after this."""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def stop(self, timeout: float) -> int:
        """SIGTERM (a graceful stop) unless the process has ended; its exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def ended(self, timeout: float = LOG_WAIT) -> tuple[int, str]:
        """The exit status of a process that ends on its own, and the log it wrote."""
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()

    async def close(self) -> None:
        """Kill the process if it is still running; the background reader, if any, ends with it."""
        await kill(self.proc)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def tgw_run(config: Path, *extra: str) -> AsyncIterator[Running]:
    """``tgw run --config config *extra`` (through ``python -m simulators.cli``, the module behind the
    ``tgw`` script) with ``RUN_ENV``; killed on the way out if still running, its log reader ended."""
    argv = (sys.executable, "-m", "simulators.cli", "run", "--config", str(config), *extra)
    running = Running(await _spawn(*argv, env=RUN_ENV, stdout=asyncio.subprocess.DEVNULL))
    try:
        yield running
    finally:
        await running.close()

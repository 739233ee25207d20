"""Start and stop the node `smpp` peers (tests/interop/node) from pytest and from bench scripts.

The scripts need `npm ci` in tests/interop/node first; `node_available()` says whether that was done.
Everything here is plain subprocess code, so it works from sync tests, async tests and benchmarks alike;
`arun_node_esme` is the variant for tests whose SMSC under test runs on the same event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

NODE_DIR = Path(__file__).resolve().parent / "node"
SMSC_JS = NODE_DIR / "smsc.js"
ESME_JS = NODE_DIR / "esme.js"

# Exit codes of esme.js
ESME_OK = 0
ESME_FAILED = 1
ESME_BIND_REFUSED = 2


def _node_bin() -> str | None:
    return shutil.which(os.environ.get("NODE", "node"))


def node_available() -> bool:
    """True when a node binary is on PATH and `npm ci` has installed `smpp` next to the scripts."""
    return _node_bin() is not None and (NODE_DIR / "node_modules" / "smpp" / "package.json").is_file()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it before you bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _require_node() -> str:
    node = _node_bin()
    if node is None or not node_available():
        raise RuntimeError(f"node peers unavailable: need `node` on PATH and `npm ci` in {NODE_DIR}")
    return node


def _drain(stream: IO[str], sink: queue.Queue[str | None]) -> None:
    # A reader thread keeps the pipe from filling up and lets the caller wait with a timeout.
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def _parse_stats(line: str) -> dict[str, int]:
    fields = (f.split("=", 1) for f in line.split()[1:])
    return {k: int(v) for k, v in fields}


class NodeSmsc:
    """A running `smsc.js`. Use as a context manager, or call `stop()` to get its counters."""

    def __init__(self, proc: subprocess.Popen[str], port: int, stdout: queue.Queue[str | None]) -> None:
        self.proc = proc
        self.port = port
        self._stdout = stdout
        self._stats: dict[str, int] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGTERM, wait, and return the STATS counters (submits, receipts_sent, receipt_resps, binds,
        enquire_links, bind_rejects, unbinds, mo_sent, mo_resps). Calling it again returns the same dict."""
        if self._stats is not None:
            return self._stats
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"node smsc on port {self.port} ignored SIGTERM") from None
        lines: list[str] = []
        while (line := self._stdout.get(timeout=timeout)) is not None:
            lines.append(line)
        stats = [ln for ln in lines if ln.startswith("STATS ")]
        if not stats:
            raise RuntimeError(f"node smsc exited {self.proc.returncode} without STATS: {lines!r}")
        self._stats = _parse_stats(stats[-1])
        return self._stats

    def __enter__(self) -> NodeSmsc:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stats is None:
            try:
                self.stop()
            except RuntimeError:
                if exc is None:
                    raise


def start_node_smsc(port: int = 0, dlr: bool = False, mo: int = 0, timeout: float = 10.0) -> NodeSmsc:
    """Start `smsc.js` on 127.0.0.1 and wait for its READY line. Port 0 lets node pick a free port
    (no race); the chosen one is `NodeSmsc.port`. `dlr` sends a receipt per submit_sm asking for one,
    `mo` sends that many MO deliver_sm after each receiver/transceiver bind."""
    cmd = [_require_node(), str(SMSC_JS), str(port)]
    if dlr:
        cmd.append("--dlr")
    if mo:
        cmd += ["--mo", str(mo)]
    proc = subprocess.Popen(
        cmd, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None and proc.stderr is not None
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True).start()
    try:
        line = out.get(timeout=timeout)
    except queue.Empty:
        line = None
    if line is None or not line.startswith("READY "):
        proc.kill()
        proc.wait()
        stderr = []
        while (e := err.get(timeout=timeout)) is not None:
            stderr.append(e)
        raise RuntimeError(f"node smsc did not start (got {line!r}): {' | '.join(stderr)}")
    return NodeSmsc(proc, int(line.split()[1]), out)


def _esme_cmd(
    port: int,
    system_id: str,
    password: str,
    count: int,
    window: int,
    *,
    dlr: bool,
    bind: str,
    timeout: float,
    extra: Sequence[str],
) -> list[str]:
    cmd = [
        _require_node(), str(ESME_JS), "--port", str(port), "--system-id", system_id,
        "--password", password, "--count", str(count), "--window", str(window), "--bind", bind,
        "--timeout", str(timeout),
    ]  # fmt: skip
    if dlr:
        cmd.append("--dlr")
    return cmd + list(extra)


def _esme_result(code: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"node esme exited {code} without a result: {stdout!r} {stderr!r}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["exit_code"] = code
    return result


def run_node_esme(
    port: int,
    system_id: str,
    password: str,
    count: int,
    window: int,
    *,
    dlr: bool = False,
    bind: str = "transceiver",
    timeout: float = 60,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Run `esme.js` to completion and return its JSON result plus `exit_code`
    (0 ok, 1 error/timeout, 2 bind refused). Keys: bind_status, submitted, ok, errors ({status: n},
    status as a decimal string), receipts, receipts_matched, receipt_sample, mo, elapsed_s, rate, error.
    `extra` passes more flags, e.g. ("--ucs2",), ("--long",), ("--expect-mo", "3"), ("--text", "hi")."""
    cmd = _esme_cmd(
        port, system_id, password, count, window, dlr=dlr, bind=bind, timeout=timeout, extra=extra
    )
    # esme.js enforces `timeout` itself and still prints its JSON; the margin is for a wedged process.
    proc = subprocess.run(
        cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout + 15, check=False
    )
    return _esme_result(proc.returncode, proc.stdout, proc.stderr)


async def arun_node_esme(
    port: int,
    system_id: str,
    password: str,
    count: int,
    window: int,
    *,
    dlr: bool = False,
    bind: str = "transceiver",
    timeout: float = 60,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """`run_node_esme` without blocking the event loop, for an SMSC under test running on that loop."""
    cmd = _esme_cmd(
        port, system_id, password, count, window, dlr=dlr, bind=bind, timeout=timeout, extra=extra
    )
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 15)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return _esme_result(proc.returncode, out.decode(), err.decode())

"""How many submit_sm per second an SMSC absorbs (and answers) on one core.

A raw blaster binds, then writes pre-encoded submit_sm in large chunks (unique sequence numbers,
a window of ``--window`` PDUs in flight) and counts the submit_sm_resp coming back. The blaster does
no decoding and no per-message work beyond counting, so the sink is the bottleneck. The same blaster
runs against our SMSC simulator (its own process, uvloop and default loop) and against the node
`smpp` SMSC in the same run.

    .venv/bin/python bench/smsc_absorb.py [--count 300000] [--window 5000] [--reps 3] [--json]

Issue #3 asks the simulator to absorb at least 300k PDUs/s on one core so it never caps the ESME
benchmark; the table gives submit_sm in, and PDUs in + out.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from peers import node_available, start_node_smsc  # noqa: E402

from protocols.smpp.pdu import BindTransceiver, SubmitSm, encode_pdu  # noqa: E402


def _read_pdus(sock: socket.socket, buf: bytearray) -> int:
    """Read what is there and count the whole PDUs in it (the rest stays in ``buf``)."""
    data = sock.recv(1 << 20)
    if not data:
        raise ConnectionError("sink closed the connection")
    buf += data
    pos = 0
    count = 0
    n = len(buf)
    while n - pos >= 16:
        length = int.from_bytes(buf[pos : pos + 4], "big")
        if n - pos < length:
            break
        pos += length
        count += 1
    del buf[:pos]
    return count


def blast(port: int, count: int, window: int, system_id: str, password: str) -> float:
    """Seconds from the first submit_sm written to the last submit_sm_resp read."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(encode_pdu(BindTransceiver(system_id=system_id, password=password), 1))
    buf = bytearray()
    while _read_pdus(sock, buf) < 1:
        pass
    pdu = SubmitSm(
        source_addr="12345",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="31612345678",
        short_message=b"absorb benchmark payload of forty bytes.",
    )
    batch = 500
    chunks = [
        (
            b"".join(encode_pdu(pdu, 2 + start + i) for i in range(min(batch, count - start))),
            min(batch, count - start),
        )
        for start in range(0, count, batch)
    ]
    sent = received = 0
    started = time.perf_counter()
    for chunk, in_chunk in chunks:
        sock.sendall(chunk)
        sent += in_chunk
        while sent - received > window:
            received += _read_pdus(sock, buf)
    while received < count:
        received += _read_pdus(sock, buf)
    elapsed = time.perf_counter() - started
    sock.close()
    return elapsed


def our_sim(loop: str) -> tuple[subprocess.Popen[str], int]:
    script = ROOT / "bench" / "uvloop_sim.py" if loop == "uvloop" else None
    cmd = [sys.executable, str(script)] if script else [sys.executable, "-m", "simulators.cli"]
    proc = subprocess.Popen(
        [*cmd, "sim", "smsc", "--listen", "127.0.0.1:0", "--account", "bench:bench"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    return proc, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    for loop in ("uvloop", "asyncio"):
        proc, port = our_sim(loop)
        try:
            runs = [
                args.count / blast(port, args.count, args.window, "bench", "bench") for _ in range(args.reps)
            ]
        finally:
            proc.terminate()
            proc.wait(10)
        results[f"our SMSC simulator ({loop})"] = runs
    if node_available():
        node = start_node_smsc(0)
        try:
            runs = [
                args.count / blast(node.port, args.count, args.window, "bench", "bench")
                for _ in range(args.reps)
            ]
        finally:
            node.stop()
        results["node smpp SMSC"] = runs
    else:
        print("node smpp not installed (npm ci in tests/interop/node): node sink skipped", file=sys.stderr)

    if args.json:
        print(
            json.dumps({k: {"runs": v, "median": statistics.median(v)} for k, v in results.items()}, indent=2)
        )
        return 0
    print(
        f"submit_sm absorbed and answered, {args.count:,} per run, window {args.window:,}, median of {args.reps}"
    )
    print(f"{'sink':<34} {'submit_sm in/s':>15} {'PDUs in+out/s':>15}   runs (k/s)")
    for name, runs in results.items():
        med = statistics.median(runs)
        print(f"{name:<34} {med:>15,.0f} {2 * med:>15,.0f}   {' '.join(f'{r / 1e3:.0f}' for r in runs)}")
    best = statistics.median(results["our SMSC simulator (uvloop)"])
    print(f"goal: >= 300,000 PDUs/s on one core -> in: {best:,.0f}/s, in+out: {2 * best:,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

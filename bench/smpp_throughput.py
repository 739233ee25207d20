"""SMPP throughput benchmark: submit_sm/s over one bind, ours against peer ESMEs, same sinks, same run.

Sinks (each its own process, started once per run):

* ``sim``  our SMSC simulator, ``tgw sim smsc`` run under uvloop by bench/uvloop_sim.py
* ``node`` the node ``smpp`` SMSC, tests/interop/node/smsc.js (PEERS.md 2.1)

Clients (one process per cell, see bench/esme_clients.py and tests/interop/node/esme.js):

* ``ours``    gateway.smpp.client.SmppClient, W tasks looping on ``await client.submit()``; asyncio and uvloop
* ``node``    the node ``smpp`` client (esme.js --count N --window W)
* ``smpp34``  the Rust-core client under uvloop (PEERS.md 2.6), W tasks on ``await smsc.submit_sm()``
* ``smpplib`` synchronous, windowed by hand: W sent, then one ``read_once`` per answer (PEERS.md 2.2)

Every cell binds as a transceiver, submits the same 40-octet submit_sm with W outstanding, and times
bind response -> last submit_sm_resp. Cells are repeated ``--reps`` times (interleaved) and the median
is reported, with the ratio of ours to the best peer client against the same sink.

    .venv/bin/python bench/smpp_throughput.py [--quick] [--count N] [--reps R] [--json] [--pin]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from peers import free_port, node_available, run_node_esme, start_node_smsc  # noqa: E402

SYSTEM_ID = "bench"
PASSWORD = "bench"
TEXT = "Your 500 MB package is active. Enjoy it!"  # same 40 octets as bench/esme_clients.py
GOAL_RATIO = 2.5
GOAL_ABS_SIM = 120_000  # about 2.5x the best peer against our simulator (PEERS.md baselines)
SINK_LABELS = {"sim": "our sim (uvloop)", "node": "node SMSC"}
PYTHON = sys.executable


@dataclass(frozen=True)
class Cell:
    client: str  # ours | node | smpp34 | smpplib
    loop: str  # asyncio | uvloop | node | sync
    window: int

    @property
    def label(self) -> str:
        return f"{self.client} {self.loop} W={self.window}"


def cells(windows: list[int], clients: list[str]) -> list[Cell]:
    out: list[Cell] = []
    for client, loops in (
        ("ours", ("asyncio", "uvloop")),
        ("node", ("node",)),
        ("smpp34", ("uvloop",)),
        ("smpplib", ("sync",)),
    ):
        if client in clients:
            out += [Cell(client, loop, w) for loop in loops for w in windows]
    return out


# --- CPU placement ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def affinity(cpu: int | None) -> Iterator[None]:
    """Children inherit the affinity of the process that forks them: pin ourselves around the spawn."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads) from /proc, or None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat), measured before anything is started."""

    def sample() -> tuple[int, int]:
        vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals), idle

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


# --- sinks -----------------------------------------------------------------------------------------------


class SimSink:
    """Our SMSC simulator as its own process: bench/uvloop_sim.py sim smsc --listen 127.0.0.1:PORT.
    (``tgw`` refuses port 0, so a free port is picked first; another process could take it meanwhile.)"""

    def __init__(self, loop: str) -> None:
        port = free_port()
        cmd = [PYTHON]
        cmd += [str(BENCH / "uvloop_sim.py")] if loop == "uvloop" else ["-m", "simulators.cli"]
        cmd += ["sim", "smsc", "--listen", f"127.0.0.1:{port}", "--account", f"{SYSTEM_ID}:{PASSWORD}"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"listening on [\d.]+:(\d+)", line)
        if m is None:
            self.proc.kill()
            raise RuntimeError(f"SMSC simulator did not start: {line!r} {self.proc.stdout.read()!r}")
        self.port = int(m.group(1))
        self.stats = ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.stats = " ".join(ln for ln in out.splitlines() if ln.startswith("stopped"))


# --- one cell --------------------------------------------------------------------------------------------


def run_cell(cell: Cell, port: int, count: int) -> dict[str, Any]:
    timeout = 60 + count / 2000
    if cell.client == "node":
        res = run_node_esme(
            port, SYSTEM_ID, PASSWORD, count, cell.window, timeout=timeout, extra=("--text", TEXT)
        )
        out: dict[str, Any] = {"ok": res["ok"], "elapsed_s": res["elapsed_s"], "errors": res["errors"]}
        out["rate"] = round(res["ok"] / res["elapsed_s"]) if res["elapsed_s"] else 0
        out["cpu_s"] = None  # esme.js does not report its CPU time
        if res["exit_code"] != 0 or res["ok"] != count:
            out["error"] = res.get("error") or f"exit {res['exit_code']}, {res['ok']} of {count} accepted"
        return out
    cmd = [PYTHON, str(BENCH / "esme_clients.py"), cell.client, "--port", str(port)]
    cmd += ["--window", str(cell.window), "--count", str(count), "--system-id", SYSTEM_ID]
    cmd += ["--password", PASSWORD]
    if cell.loop in ("asyncio", "uvloop"):
        cmd += ["--loop", cell.loop]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 15, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": 0, "rate": 0, "error": "timed out"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": 0, "rate": 0, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    out = json.loads(lines[-1])
    if proc.returncode != 0 and "error" not in out:
        out["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return out


# --- the run ---------------------------------------------------------------------------------------------


def counts_for(cell: Cell, args: argparse.Namespace) -> int:
    return args.smpplib_count if cell.client == "smpplib" else args.count


def run(args: argparse.Namespace) -> dict[str, Any]:
    notes: list[str] = []
    sinks = list(args.sinks)
    clients = list(args.clients)
    if not node_available():
        notes.append("node peers unavailable (node on PATH and `npm ci` in tests/interop/node): skipped")
        sinks = [s for s in sinks if s != "node"]
        clients = [c for c in clients if c != "node"]
    grid = cells(args.windows, clients)
    sink_cpu, client_cpu = (0, 1) if args.pin else (None, None)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {c.label: [] for c in grid} for s in sinks}
    ports: dict[str, int] = {}
    sim: SimSink | None = None
    node = None
    sink_stats: dict[str, Any] = {}
    sink_pids: dict[str, int] = {}
    busy_before = machine_busy()
    t_start = time.perf_counter()
    try:
        with affinity(sink_cpu):
            if "sim" in sinks:
                sim = SimSink(args.sim_loop)
                ports["sim"] = sim.port
                sink_pids["sim"] = sim.proc.pid
            if "node" in sinks:
                node = start_node_smsc(0)
                ports["node"] = node.port
                sink_pids["node"] = node.pid
        for rep in range(args.reps):
            for sink in sinks:
                for cell in grid:
                    sink_cpu0 = cpu_seconds(sink_pids[sink])
                    with affinity(client_cpu):
                        res = run_cell(cell, ports[sink], counts_for(cell, args))
                    sink_cpu1 = cpu_seconds(sink_pids[sink])
                    # the sink's CPU over the whole cell (bind and unbind included, 10 ms ticks)
                    res["sink_cpu_s"] = (
                        None if sink_cpu0 is None or sink_cpu1 is None else round(sink_cpu1 - sink_cpu0, 3)
                    )
                    runs[sink][cell.label].append(res)
                    if not args.json:
                        status = res.get("error") or f"{res['rate']:,}/s"
                        print(
                            f"  rep {rep + 1}/{args.reps}  {SINK_LABELS[sink]:<17} {cell.label:<24} {status}",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        if sim is not None:
            sim.stop()
            sink_stats["sim"] = sim.stats
        if node is not None:
            sink_stats["node"] = node.stop()

    medians: dict[str, dict[str, float | None]] = {}
    cpu_us: dict[str, dict[str, dict[str, float | None]]] = {}
    for sink in sinks:
        medians[sink] = {}
        cpu_us[sink] = {}
        for cell in grid:
            rs = runs[sink][cell.label]
            good = [r["rate"] for r in rs if "error" not in r]
            medians[sink][cell.label] = statistics.median(good) if len(good) == len(rs) and good else None
            n = counts_for(cell, args)
            per_msg: dict[str, float | None] = {}
            for key, field in (("client", "cpu_s"), ("sink", "sink_cpu_s")):
                vals = [r[field] for r in rs if "error" not in r and r.get(field) is not None]
                per_msg[key] = round(statistics.median(vals) / n * 1e6, 2) if vals else None
            cpu_us[sink][cell.label] = per_msg

    summary: dict[str, Any] = {}
    for sink in sinks:
        peer = {c.label: medians[sink][c.label] for c in grid if c.client != "ours"}
        peer_ok = {k: v for k, v in peer.items() if v is not None}
        best_peer = max(peer_ok.items(), key=lambda kv: kv[1]) if peer_ok else None
        ours_ok = {
            c.label: medians[sink][c.label]
            for c in grid
            if c.client == "ours" and medians[sink][c.label] is not None
        }
        best_ours = max(ours_ok.items(), key=lambda kv: kv[1]) if ours_ok else None  # type: ignore[arg-type]
        ratios = {k: v / best_peer[1] for k, v in ours_ok.items()} if best_peer else {}  # type: ignore[operator]
        s: dict[str, Any] = {
            "best_peer": {"cell": best_peer[0], "rate": best_peer[1]} if best_peer else None,
            "best_ours": {"cell": best_ours[0], "rate": best_ours[1]} if best_ours else None,
            "ratio_ours_to_best_peer": {k: round(v, 3) for k, v in ratios.items()},
        }
        if best_ours and best_peer:
            ratio = best_ours[1] / best_peer[1]  # type: ignore[operator]
            s["goal_ratio"] = GOAL_RATIO
            s["goal_ratio_met"] = ratio >= GOAL_RATIO
            if sink == "sim":
                s["goal_abs"] = GOAL_ABS_SIM
                s["goal_abs_met"] = best_ours[1] >= GOAL_ABS_SIM  # type: ignore[operator]
        summary[sink] = s

    if busy_before is not None and busy_before > 0.1:
        notes.append(
            f"other processes kept {busy_before:.0%} of the CPUs busy just before the run: they compete with "
            "client and sink, so rates are noisy and low; the CPU us/msg figures hold up better"
        )
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pinned": args.pin,
            "busy_before_run": None if busy_before is None else round(busy_before, 3),
        },
        "sim_loop": args.sim_loop,
        "count": args.count,
        "smpplib_count": args.smpplib_count,
        "reps": args.reps,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "notes": notes,
        "cells": [c.__dict__ | {"label": c.label} for c in grid],
        "median_per_s": medians,
        "cpu_us_per_msg": cpu_us,
        "runs": runs,
        "summary": summary,
        "sink_stats": sink_stats,
    }


def print_table(result: dict[str, Any]) -> None:
    sinks = list(result["median_per_s"])
    grid = result["cells"]
    print(
        f"\nsubmit_sm/s, one transceiver bind, 40-octet text, no receipts; median of {result['reps']} "
        f"(ours/node/smpp34: {result['count']:,} msgs per cell, smpplib: {result['smpplib_count']:,}); "
        f"{result['machine']['cpus']} CPUs shared by client and sink"
        + (" (sink pinned to CPU 0, client to CPU 1)" if result["machine"]["pinned"] else "")
        + f"; run took {result['wall_s']} s"
    )
    head = f"{'client':<9} {'loop':<8} {'W':>4}"
    for sink in sinks:
        head += f" | {SINK_LABELS[sink]:>17} {'ours/best':>9}"
    print(head)
    print("-" * len(head))
    for c in grid:
        row = f"{c['client']:<9} {c['loop']:<8} {c['window']:>4}"
        for sink in sinks:
            v = result["median_per_s"][sink][c["label"]]
            ratio = result["summary"][sink]["ratio_ours_to_best_peer"].get(c["label"])
            cell = "failed" if v is None else f"{v:,.0f}"
            row += f" | {cell:>17} {'' if ratio is None else f'{ratio:.2f}x':>9}"
        print(row)
    print()
    print("CPU time per message (median, us): client process / sink process; client: measured span only")
    head = f"{'client':<9} {'loop':<8} {'W':>4}"
    for sink in sinks:
        head += f" | {SINK_LABELS[sink]:>20}"
    print(head)
    print("-" * len(head))
    for c in grid:
        row = f"{c['client']:<9} {c['loop']:<8} {c['window']:>4}"
        for sink in sinks:
            cu = result["cpu_us_per_msg"][sink][c["label"]]
            fmt = ["-" if cu[k] is None else f"{cu[k]:.1f}" for k in ("client", "sink")]
            row += f" | {fmt[0] + ' / ' + fmt[1]:>20}"
        print(row)
    print()
    for sink in sinks:
        s = result["summary"][sink]
        bp, bo = s["best_peer"], s["best_ours"]
        if not (bp and bo):
            print(f"{SINK_LABELS[sink]}: not enough data for a ratio")
            continue
        ratio = bo["rate"] / bp["rate"]
        line = (
            f"{SINK_LABELS[sink]}: best ours {bo['cell']} {bo['rate']:,.0f}/s, best peer {bp['cell']} "
            f"{bp['rate']:,.0f}/s -> {ratio:.2f}x; goal >= {GOAL_RATIO}x: "
            f"{'MET' if s['goal_ratio_met'] else 'NOT MET'}"
        )
        if "goal_abs" in s:
            line += f"; >= {s['goal_abs']:,}/s: {'MET' if s['goal_abs_met'] else 'NOT MET'}"
        if sink == "node" and not s["goal_ratio_met"]:
            line += " (the node SMSC itself saturates near 70-76k/s, PEERS.md 2.1)"
        print(line)
    for sink, st in result["sink_stats"].items():
        print(f"sink {sink} counters: {st}")
    for note in result["notes"]:
        print(f"note: {note}")
    failed = [
        (sink, label, r["error"])
        for sink, cellruns in result["runs"].items()
        for label, rs in cellruns.items()
        for r in rs
        if "error" in r
    ]
    for sink, label, err in failed:
        print(f"FAILED {SINK_LABELS[sink]} {label}: {err}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=50_000, help="messages per cell (ours, node, smpp34)")
    ap.add_argument("--smpplib-count", type=int, default=10_000, help="messages per smpplib cell")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per cell; the median is reported")
    ap.add_argument("--windows", default="10,100", help="comma-separated windows")
    ap.add_argument("--sinks", default="sim,node", help="comma-separated: sim, node")
    ap.add_argument("--clients", default="ours,node,smpp34,smpplib", help="comma-separated")
    ap.add_argument("--sim-loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--pin", action="store_true", help="pin the sink to CPU 0 and the clients to CPU 1")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 rep, 20,000 msgs (smpplib 3,000)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.count, args.smpplib_count = 1, 20_000, 3_000
    args.windows = [int(w) for w in args.windows.split(",")]
    args.sinks = [s for s in args.sinks.split(",") if s]
    args.clients = [c for c in args.clients.split(",") if c]
    if args.pin and (os.cpu_count() or 1) < 2:
        ap.error("--pin needs two CPUs")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    failed = any("error" in r for cr in result["runs"].values() for rs in cr.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

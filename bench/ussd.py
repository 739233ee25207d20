"""USSD dialogues per second through the gateway and the SMSC simulator on loopback, and the screen
round-trip latency a handset sees.

Each dialogue is three screens, the way a subscriber buys an offer: dial ``*123*2#`` (a shortcut into
"My offers" of configs/ussd/menus.yaml; the provider runs) -> reply ``1`` (the confirm screen) ->
reply ``1`` (the buy_package handler runs, final screen). ``--concurrency`` handsets
(simulators.handset.Handset, through the SMSC simulator's USSD relay) each run dialogues back to
back until ``--dialogues`` are done. A screen's round trip runs from the handset's ``dial()`` /
``answer()`` call to the next screen arriving: deliver_sm -> ESME -> UssdService (menu engine,
provider / handler) -> submit_sm -> SMSC -> handset.

Rows, measured in the same run (bench/README.md: figures are ratios against a peer):

- ``ours, 1 process``: SMSC simulator + handsets + gateway (SmppClient + UssdService) on one loop;
- ``ours, 2 processes``: the gateway in a child process of its own (this script with
  ``--serve-gateway``), so each side has a core;
- ``node app``: the node `smpp` USSD application ``tests/interop/node/ussd_esme.js --depth 3`` in place
  of our gateway (a scripted menu with no menu engine, config, handler or journey log behind it:
  the price of the protocol alone), against the same SMSC simulator and handsets.

Every dialogue must end with its final screen and every purchase must be recorded once, or the row
is marked failed. CPU columns are CPU seconds per 1,000 dialogues of each process (the node app's
is not measured). Tests never assert on speed; this script is where it is measured.

    .venv/bin/python bench/ussd.py [--dialogues 5000] [--concurrency 200] [--loop asyncio|uvloop]
                                   [--rows one,two,node] [--latency-dialogues 300] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from ussd_peers import node_binary, start_ussd_esme, ussd_gateway  # noqa: E402

from simulators.handset import DEFAULT_PROFILE, Handset, UserPolicy  # noqa: E402
from simulators.smsc import SmscSimulator  # noqa: E402

SYSTEM_ID, PASSWORD = "ussdbench", "bench"
Script = tuple[str, tuple[str, ...], str]  # the code dialled, the replies, how the final screen starts
OURS: Script = ("*123*2#", ("1", "1"), "Thank you.")
NODE: Script = ("*123#", ("1", "1"), "Node: you chose")
WAIT = 30.0


def _install_loop(name: str) -> None:
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- the handsets' side -----------------------------------------------------------------------------------


async def drive(smsc: SmscSimulator, dialogues: int, concurrency: int, script: Script) -> dict[str, Any]:
    """``concurrency`` handsets run ``dialogues`` three-screen dialogues; throughput and latencies."""
    code, replies, final_prefix = script
    handsets = [
        Handset(f"2547{n:08d}", None, DEFAULT_PROFILE, UserPolicy(), smsc, seed=n) for n in range(concurrency)
    ]
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    next_index = 0

    async def worker(handset: Handset) -> None:
        nonlocal next_index
        clock = time.perf_counter
        while next_index < dialogues:
            next_index += 1
            try:
                started = clock()
                dialog = await handset.dial(code, timeout=WAIT)
                screen = await dialog.next_screen(WAIT)
                latencies.append(clock() - started)
                for reply in replies:
                    started = clock()
                    await dialog.answer(reply, timeout=WAIT)
                    screen = await dialog.next_screen(WAIT)
                    latencies.append(clock() - started)
                if not (screen.final and screen.text.startswith(final_prefix)):
                    failures[f"unexpected final screen {screen.text[:40]!r}"] += 1
            except Exception as exc:
                failures[type(exc).__name__] += 1

    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(h) for h in handsets))
    elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
    for handset in handsets:
        await handset.close()
    return {
        "dialogues": dialogues,
        "concurrency": concurrency,
        "elapsed_s": elapsed,
        "dialogues_per_s": dialogues / elapsed,
        "screens_per_s": len(latencies) / elapsed,
        "latency_ms": {
            "p50": 1000 * percentile(latencies, 50),
            "p95": 1000 * percentile(latencies, 95),
            "p99": 1000 * percentile(latencies, 99),
            "max": 1000 * max(latencies),
            "mean": 1000 * statistics.fmean(latencies),
        },
        "screens": len(latencies),
        "failures": dict(failures),
        "handset_cpu_s": cpu,
    }


def _new_smsc() -> SmscSimulator:
    return SmscSimulator(
        {SYSTEM_ID: PASSWORD}, record_messages=False, window=1000, enquire_link_interval=None
    )


async def _bound(smsc: SmscSimulator, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while SYSTEM_ID not in smsc.bound_system_ids:
            await asyncio.sleep(0.01)


async def row_one_process(args: argparse.Namespace, dialogues: int, concurrency: int) -> dict[str, Any]:
    smsc = _new_smsc()
    _, port = await smsc.start("127.0.0.1", 0)
    try:
        async with ussd_gateway(port, SYSTEM_ID, PASSWORD, window=args.window, journey_limit=1000) as gateway:
            result = await drive(smsc, dialogues, concurrency, OURS)
            result["purchases"] = len(gateway.purchases.made)
            result["journeys"] = gateway.service.stats.dialogues
    finally:
        await smsc.stop()
    result["cpu_s_per_1k"] = {"all": 1000 * result.pop("handset_cpu_s") / dialogues}
    result["ok"] = not result["failures"] and result["purchases"] == dialogues
    return result


async def row_two_processes(args: argparse.Namespace, dialogues: int, concurrency: int) -> dict[str, Any]:
    smsc = _new_smsc()
    _, port = await smsc.start("127.0.0.1", 0)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-gateway", str(port), "--loop", args.loop, "--window", str(args.window),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _bound(smsc)
        result = await drive(smsc, dialogues, concurrency, OURS)
        assert child.stdin is not None
        child.stdin.close()  # the gateway closes, unbinds and reports
        out, _ = await asyncio.wait_for(child.communicate(), WAIT)
        gateway = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await smsc.stop()
    result["purchases"] = gateway["purchases"]
    result["journeys"] = gateway["dialogues"]
    result["cpu_s_per_1k"] = {
        "gateway": 1000 * gateway["cpu_s"] / dialogues,
        "smsc+handsets": 1000 * result.pop("handset_cpu_s") / dialogues,
    }
    result["ok"] = not result["failures"] and result["purchases"] == dialogues
    return result


async def row_node(args: argparse.Namespace, dialogues: int, concurrency: int) -> dict[str, Any]:
    smsc = _new_smsc()
    _, port = await smsc.start("127.0.0.1", 0)
    node = await start_ussd_esme(
        port,
        SYSTEM_ID,
        PASSWORD,
        "--depth",
        "3",
        "--dialogues",
        str(dialogues),
        "--quiet",
        "--timeout",
        "600",
    )
    try:
        result = await drive(smsc, dialogues, concurrency, NODE)
        assert await node.finish(WAIT) == 0, node.raw
    finally:
        await node.stop()
        await smsc.stop()
    (summary,) = [line for line in node.lines if "completed" in line]
    result["purchases"] = summary["completed"]
    result["cpu_s_per_1k"] = {"smsc+handsets": 1000 * result.pop("handset_cpu_s") / dialogues}
    result["ok"] = not result["failures"] and summary["completed"] == dialogues and not summary["errors"]
    return result


ROWS = {
    "one": ("ours, 1 process", row_one_process),
    "two": ("ours, 2 processes", row_two_processes),
    "node": ("node app (peer)", row_node),
}


# --- the gateway child -------------------------------------------------------------------------------------


async def serve_gateway(port: int, window: int) -> dict[str, Any]:
    """Bind to the SMSC at ``port`` and serve until stdin closes; then the counters."""
    loop = asyncio.get_running_loop()
    async with ussd_gateway(port, SYSTEM_ID, PASSWORD, window=window, journey_limit=1000) as gateway:
        cpu0 = _cpu()  # bound and idle: start-up (imports, menus) is not the benchmark's
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()  # EOF: the benchmark is over
        stats = gateway.service.stats
        result = {
            "purchases": len(gateway.purchases.made),
            "dialogues": stats.dialogues,
            "failures": stats.failures,
        }
    result["cpu_s"] = _cpu() - cpu0
    return result


# --- report --------------------------------------------------------------------------------------------------


def _print_table(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"USSD over SMPP, 3-screen dialogues (dial, reply, reply -> final), loopback, loop={args.loop}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    for phase in ("load", "idle"):
        rows = [(name, r[phase]) for name, r in results.items() if phase in r]
        if not rows:
            continue
        first = rows[0][1]
        handsets = "1 handset" if first["concurrency"] == 1 else f"{first['concurrency']} handsets at once"
        print(f"\n{phase}: {first['dialogues']} dialogues, {handsets}")
        print(
            f"{'row':<20} {'dialogues/s':>11} {'screens/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8}  cpu s/1k dialogues"
        )
        for name, r in rows:
            lat = r["latency_ms"]
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_s_per_1k"].items())
            flag = "" if r["ok"] else f"  FAILED {r['failures']} purchases={r.get('purchases')}"
            print(
                f"{name:<20} {r['dialogues_per_s']:>11,.0f} {r['screens_per_s']:>10,.0f} {lat['p50']:>8.2f} "
                f"{lat['p95']:>8.2f} {lat['p99']:>8.2f} {lat['max']:>8.2f}  {cpu}{flag}"
            )
    node = results.get("node app (peer)", {}).get("load")
    if node:
        for name, r in results.items():
            if name != "node app (peer)" and "load" in r:
                ratio = r["load"]["dialogues_per_s"] / node["dialogues_per_s"]
                print(
                    f"\n{name}: {ratio:.2f}x the dialogues/s of the node app against the same SMSC simulator"
                )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key in args.rows.split(","):
        name, row = ROWS[key]
        if key == "node":
            try:
                node_binary()
            except RuntimeError as exc:
                print(f"skipping the node row: {exc}", file=sys.stderr)
                continue
        results[name] = {"load": await row(args, args.dialogues, args.concurrency)}
        if args.latency_dialogues:
            results[name]["idle"] = await row(args, args.latency_dialogues, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dialogues", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=200, help="handsets dialling at once")
    ap.add_argument("--latency-dialogues", type=int, default=300, help="dialogues of one handset (0: none)")
    ap.add_argument("--rows", default="one,two,node", help="one, two, node (comma-separated)")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--window", type=int, default=100, help="the gateway ESME's window")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve-gateway", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    _install_loop(args.loop)
    if args.serve_gateway:
        print(json.dumps(asyncio.run(serve_gateway(args.serve_gateway, args.window))), flush=True)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        results = asyncio.run(run(args))
        if args.json:
            print(json.dumps({"loop": args.loop, "results": results}, indent=2))
        else:
            _print_table(results, args)
        return 0 if all(r[p]["ok"] for r in results.values() for p in r) else 1
    return 130


if __name__ == "__main__":
    sys.exit(main())

"""Simulation benchmark (issue #8): simulated subscriber-days per wall-clock second with the full
protocol path (``tgw simulate``: the gateway and every simulator over loopback on the simulated clock:
DPI HTTP and Diameter Gy ingest, campaign store, SMPP with STK push, SMS and USSD, billing over HTTP).

Runs the shipped A/B scenario (``configs/scenarios/upsell_ab.yaml``) for ``--days`` at each population
of ``--subscribers`` (10k and 100k by default), without the traffic capture (``--pcap`` adds it), and
reports wall seconds, subscriber-days per second, and what the run did (triggers, contacts,
activations, clock jumps). No peer simulates this workload; the figures are absolute, on this machine.

    .venv/bin/python bench/simulate.py                           # 10k and 100k subscribers, 30 days
    .venv/bin/python bench/simulate.py --subscribers 10000 --days 7 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.simulate import simulate_command  # noqa: E402


def one(subscribers: int, days: int, pcap: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tgw-bench-sim-") as tmp:
        result, _ = simulate_command(
            ROOT / "configs" / "scenarios" / "upsell_ab.yaml",
            Path(tmp),
            subscribers=subscribers,
            days=days,
            billing=ROOT / "configs" / "simulators" / "billing.yaml",
            pcap=pcap,
        )
    rows = result.rows
    return {
        "subscribers": subscribers,
        "days": days,
        "wall_seconds": result.wall_seconds,
        "subscriber_days_per_s": subscribers * days / result.wall_seconds,
        "triggers": sum(row.triggers for row in rows),
        "contacts": sum(sum(row.contacts.values()) for row in rows),
        "activations": sum(row.activations for row in rows),
        "notifications": result.counters.notifications,
        "clock_jumps": result.loop_jumps,
        "checks_passed": all(passed for passed, _ in result.checks.values()),
        "pcap_packets": result.pcap_packets,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, action="append", help="repeatable (default 10k, 100k)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pcap", action="store_true", help="write the traffic capture too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)  # the scenario names its campaign directory relative to the project
    results = [one(n, args.days, args.pcap) for n in (args.subscribers or [10_000, 100_000])]
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"tgw simulate, full protocol path (Python {platform.python_version()}, {platform.machine()})")
    print(f"{'subscribers':>11} {'days':>5} {'wall s':>8} {'sub-days/s':>11} {'triggers':>9} "
          f"{'contacts':>9} {'activations':>11} {'jumps':>9}  checks")  # fmt: skip
    for r in results:
        print(
            f"{r['subscribers']:>11,} {r['days']:>5} {r['wall_seconds']:>8.1f} {r['subscriber_days_per_s']:>11,.0f} "
            f"{r['triggers']:>9,} {r['contacts']:>9,} {r['activations']:>11,} {r['clock_jumps']:>9,}  "
            f"{'ok' if r['checks_passed'] else 'FAILED'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

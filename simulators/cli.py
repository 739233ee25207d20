"""The ``tgw`` console script: the gateway commands of ``gateway.cli`` plus the simulators.

``tgw sim smsc`` runs the SMSC simulator until interrupted. ``tgw demo`` runs the richest end-to-end
flow there is so far (see ``simulators.demo``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from gateway.cli import build_parser, parse_host_port, run
from protocols.errors import ConfigError, TransportError
from simulators.demo import run_demo
from simulators.smsc import SmscSimulator, parse_account, parse_personality

__all__ = ["main"]


def _parse_outcomes(spec: str) -> dict[str, float]:
    """``DELIVRD=0.9,UNDELIV=0.1`` -> weights."""
    out: dict[str, float] = {}
    for item in spec.split(","):
        stat, sep, weight = item.partition("=")
        try:
            out[stat.strip().upper()] = float(weight) if sep else 1.0
        except ValueError:
            raise ConfigError(f"outcome {item!r} must be STAT=WEIGHT") from None
    return out


async def _run_smsc(args: argparse.Namespace) -> int:
    accounts = dict(parse_account(a) for a in args.account)
    sim = SmscSimulator(
        accounts,
        personality=parse_personality(args.personality),
        tps_licence=args.tps,
        receipt_delay=args.receipt_delay,
        outcomes=_parse_outcomes(args.outcomes),
        seed=args.seed,
        record_messages=False,  # nobody reads them from a separate process
    )
    host, port = args.listen
    # signal handlers first: whoever reads the "listening" line may signal us at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await sim.start(host, port)
    except OSError as exc:  # port taken, address not local: one line, not a traceback
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"SMSC simulator listening on {bound[0]}:{bound[1]} personality={sim.personality.name}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        print(f"stopped: {sim.stats}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = build_parser()
    sim = sub.add_parser("sim", help="run a simulator")
    sim_sub = sim.add_subparsers(dest="simulator", required=True)
    smsc = sim_sub.add_parser("smsc", help="SMPP SMSC simulator")
    smsc.add_argument("--listen", type=parse_host_port, default=("127.0.0.1", 2775), metavar="HOST:PORT")
    smsc.add_argument("--account", action="append", required=True, metavar="SYSTEM_ID:PASSWORD")
    smsc.add_argument(
        "--personality",
        default="happy",
        help="happy, throttle:N, blackhole, slow:S, disconnect:N, nack:N, lossy-receipts:P, mixed-ids",
    )
    smsc.add_argument(
        "--tps", type=float, default=None, help="TPS licence per system_id (ESME_RTHROTTLED above)"
    )
    smsc.add_argument("--receipt-delay", type=float, default=0.0, metavar="SECONDS")
    smsc.add_argument(
        "--outcomes", default="DELIVRD=1", help="receipt outcome mix, e.g. DELIVRD=0.9,UNDELIV=0.1"
    )
    smsc.add_argument("--seed", type=int, default=None)
    smsc.set_defaults(func=lambda a: asyncio.run(_run_smsc(a)))
    demo = sub.add_parser(
        "demo", help="SMSC simulator, handsets and gateway: SMS with receipts, SIM toolkit offers"
    )
    demo.add_argument("--burst", type=int, default=20_000, help="messages in the throughput burst")
    demo.set_defaults(func=lambda a: asyncio.run(run_demo(lambda line: print(line, flush=True), a.burst)))
    return run(argv, parser)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

"""The ``tgw`` console script: the gateway commands of ``gateway.cli`` plus the simulators.

``tgw sim smsc`` runs the SMSC simulator until interrupted. ``tgw demo`` runs the richest end-to-end
flow there is so far: the SMSC simulator and the gateway's ESME in one process over loopback, SMS
sent with delivery receipts requested, each receipt printed as it comes back, then a burst through
the window to show throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence

from gateway.cli import build_parser, encode_text, parse_host_port, run
from gateway.smpp.client import ClientConfig, SmppClient
from protocols.errors import ConfigError, TransportError
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.tlv import Tlv
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


async def _demo_async(args: argparse.Namespace) -> int:
    sim = SmscSimulator(
        {"demo": "secret"},
        personality=parse_personality("mixed-ids"),  # receipts carry decimal ids, submits hex
        receipt_delay=0.2,
        outcomes={"DELIVRD": 0.8, "UNDELIV": 0.1, "EXPIRED": 0.1},
        seed=2,
    )
    host, port = await sim.start("127.0.0.1", 0)
    print(f"SMSC simulator on {host}:{port} (receipts in decimal, message ids in hex)")
    client = SmppClient(ClientConfig(host, port, "demo", "secret", window=100, enquire_link_interval=5))
    await client.start()
    print("gateway ESME bound as transceiver\n")
    texts = [
        "Your 500 MB package is active. Enjoy!",
        "Hello from the campaign gateway",
        "Grüße aus dem Gateway: ÄÖÜ €",
        "Long message: " + "the quick brown fox jumps over the lazy dog " * 5,
        "Package exhausted? Dial *123*500# to buy 500 MB now, pay later.",
    ]
    try:
        rows = []
        for i, text in enumerate(texts * 2):
            data_coding, octets = encode_text(text)
            long_text = len(octets) > (160 if data_coding == 0 else 140)
            pdu = SubmitSm(
                source_addr="12345",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"3161234{i:04d}",
                registered_delivery=1,
                data_coding=data_coding,
                short_message=b"" if long_text else octets,
                optional_parameters=(Tlv.make("message_payload", octets),) if long_text else (),
            )
            result = await client.submit(pdu)
            rows.append((result.message_id, pdu.destination_addr, text))
        print(f"{'message id':>10}  {'to':<12}  {'receipt':<8} {'receipt id':>10}  text")
        for message_id, dest, text in rows:
            receipt = await client.wait_receipt(message_id, 10)
            print(f"{message_id:>10}  {dest:<12}  {receipt.stat:<8} {receipt.id:>10}  {text[:40]}")
        count = args.burst
        sub = SubmitSm(source_addr="12345", destination_addr="31600000000", short_message=b"burst")
        started = time.perf_counter()

        async def worker(n: int) -> None:
            for _ in range(n):
                await client.submit(sub)

        await asyncio.gather(*(worker(count // 100) for _ in range(100)))
        elapsed = time.perf_counter() - started
        print(
            f"\nburst: {count} submit_sm through a window of 100 in {elapsed:.2f} s = {count / elapsed:,.0f}/s"
        )
        print(f"ESME: {client.stats}")
        print(f"SMSC: {sim.stats}")
    finally:
        await client.close()
        await sim.stop()
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
    demo = sub.add_parser("demo", help="SMSC simulator + gateway: send SMS and print their receipts")
    demo.add_argument("--burst", type=int, default=20_000, help="messages in the throughput burst")
    demo.set_defaults(func=lambda a: asyncio.run(_demo_async(a)))
    return run(argv, parser)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

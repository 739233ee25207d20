"""SIM toolkit push: secured offer packets per second, and (with --e2e) push -> accept latency.

Packets: the work the gateway does per push, from the offer to the bytes of the short_message:
a GET INKEY yes/no dialog (TS 102 223), the DSTK application header, and a TS 102 225 command
packet with AES-CBC ciphering and an AES-CMAC checksum (the strongest common profile), behind the
UDH 02 70 00. The card side (verify the CMAC, decipher, check the counter) is measured too.

End to end (--e2e N): the real pieces of tests/e2e/test_stk_e2e.py, in this one process over
loopback TCP: the SMSC simulator with N handsets (a SimCard each, AES keys of its own, a user who
accepts after --user-delay seconds, default 0), and the gateway: SmppClient bound as a transceiver,
KeyStore loaded from a YAML key file, SqliteStore on a file (WAL, synchronous=FULL: every commit is
an fsync), StkPushService. One push per subscriber, started at --rate pushes per second (0: all at
once). The latency of one round trip runs from the push() call to the StkAnswerReceived event:
counter + push records committed, secured packet built, submit_sm -> SMSC -> ENVELOPE -> card ->
GET INKEY -> user -> TERMINAL RESPONSE -> SEND SHORT MESSAGE -> MO deliver_sm -> verified, answer
committed, event. Throughput is answers per second from the first push to the last answer. The
CPU column is this process's CPU time per round trip: gateway, SMSC and cards together.

    .venv/bin/python bench/stk_push.py [--seconds 1] [--rounds 5] [--json]
    .venv/bin/python bench/stk_push.py --e2e 500 [--rate 100] [--user-delay 0] [--window 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import KeyStore, PackageOption, StkEvent, StkOffer, StkPushService
from gateway.stk.events import StkAnswerReceived
from gateway.storage import SqliteStore
from protocols.stk.commands import GetInkey, GetInkeyQualifier
from protocols.stk.dstk import DSTK_TAR, DstkOffer
from protocols.stk.ota import (
    COMMAND_UDH,
    CcAlgorithm,
    CipherAlgorithm,
    CounterMode,
    Integrity,
    KeySet,
    Kic,
    Kid,
    Spi,
    build_command_packet,
    parse_command_packet,
)
from protocols.stk.tlv import TextString
from simulators.handset import DEFAULT_PROFILE, Handset, ReactionDelay, UserAction, UserPolicy
from simulators.sim_applet import SimCard
from simulators.smsc import SmscSimulator

SPI = Spi(integrity=Integrity.CC, ciphering=True, counter=CounterMode.HIGHER)
KIC = Kic(CipherAlgorithm.AES_CBC, kvn=1)
KID = Kid(CcAlgorithm.AES_CMAC, kvn=1)
KEYS = KeySet(kic_key=bytes(range(16)), kid_key=bytes(range(16, 32)), kvn=1)


def build_push(counter: int) -> bytes:
    command = GetInkey(
        TextString.of("Buy 500 MB now, pay later? 5.00 on your next top-up"),
        command_qualifier=GetInkeyQualifier.YES_NO,
    ).encode()
    payload = DstkOffer(f"off-{counter}", "12345", command).encode()
    return COMMAND_UDH + build_command_packet(payload, SPI, KIC, KID, DSTK_TAR, counter, KEYS)


def rate(func: Callable[[int], object], seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(200):
            func(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


# --- end to end ---------------------------------------------------------------------------------------

SHORT_CODE = "12345"
ACCOUNT = ("bench", "secret")
CATALOGUE = (
    PackageOption("D100", 100, Decimal("1.00"), "USD"),
    PackageOption("D500", 500, Decimal("4.00"), "USD"),
)


def _subscriber(n: int) -> tuple[str, str, bytes, bytes]:
    """MSISDN, ICCID, KIc key and KID key of subscriber ``n`` (every card has keys of its own)."""
    return (
        f"2547{n:08d}",
        f"8925400{n:012d}",
        hashlib.sha256(f"KIc {n}".encode()).digest()[:16],
        hashlib.sha256(f"KID {n}".encode()).digest()[:16],
    )


def _key_file(count: int) -> str:
    lines = [
        "version: 1",
        "minimum_security: {integrity: cc, ciphering: true, counter: higher}",
        "defaults:",
        f"  tar: {DSTK_TAR.hex().upper()}",
        "subscribers:",
    ]
    for n in range(count):
        msisdn, iccid, kic, kid = _subscriber(n)
        lines += [
            f'  - msisdn: "{msisdn}"',
            f'    iccid: "{iccid}"',
            f'    kic: {{algorithm: aes, key: "{kic.hex()}", kvn: 1}}',
            f'    kid: {{algorithm: aes, key: "{kid.hex()}", kvn: 1}}',
        ]
    return "\n".join(lines) + "\n"


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``sorted_values`` (q in 0..100)."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def e2e(count: int, rate: float, user_delay: float, window: int, timeout: float) -> dict[str, Any]:
    """Push one offer to each of ``count`` subscribers at ``rate``/s; the latencies of push -> answer."""
    loop = asyncio.get_running_loop()
    smsc = SmscSimulator(dict([ACCOUNT]), seed=1, record_messages=False)
    host, port = await smsc.start("127.0.0.1", 0)
    handsets = []
    user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(user_delay))
    for n in range(count):
        msisdn, iccid, kic, kid = _subscriber(n)
        card = SimCard(iccid, {DSTK_TAR: KeySet(kic, kid, kvn=1, minimum_security=0x16)})
        handsets.append(Handset(msisdn, card, DEFAULT_PROFILE, user, smsc, n))
    with tempfile.TemporaryDirectory(prefix="stk-bench-") as tmp:
        keys = Path(tmp) / "sim_keys.yaml"
        keys.write_text(_key_file(count), encoding="utf-8")
        store = SqliteStore(Path(tmp) / "gateway.sqlite")
        client = SmppClient(ClientConfig(host, port, *ACCOUNT, window=window, response_timeout=30.0))
        service = StkPushService(client, KeyStore.load(keys), store, reply_to=SHORT_CODE)
        started: dict[str, float] = {}
        pushed: dict[str, float] = {}
        answered: dict[str, float] = {}
        other: dict[str, int] = {}
        done = asyncio.Event()

        def on_event(event: StkEvent) -> None:
            if isinstance(event, StkAnswerReceived):
                answered[event.offer_id] = time.perf_counter()
                if len(answered) == count:
                    done.set()
            elif type(event).__name__ != "StkDelivered":
                other[type(event).__name__] = other.get(type(event).__name__, 0) + 1

        service.add_listener(on_event)
        await client.start()
        cpu_before = time.process_time()

        async def push(n: int, at: float) -> None:
            await asyncio.sleep(max(0.0, at - loop.time()))
            offer_id = f"bench-{n}"
            msisdn = _subscriber(n)[0]
            started[offer_id] = time.perf_counter()
            await service.push(StkOffer(offer_id, msisdn, CATALOGUE), time.time())
            pushed[offer_id] = time.perf_counter()

        first = loop.time() + 0.1
        try:
            await asyncio.wait_for(
                asyncio.gather(*(push(n, first + (n / rate if rate > 0 else 0.0)) for n in range(count))),
                timeout,
            )
            await asyncio.wait_for(done.wait(), timeout)
            cpu = time.process_time() - cpu_before
            # the last receipts may trail the answers: take them before unbinding
            for _ in range(500):
                if client.stats.receipts >= count:
                    break
                await asyncio.sleep(0.01)
        finally:
            for handset in handsets:
                await handset.close()
            await client.close(drain_timeout=2.0)
            store.close()
            await smsc.stop()
    latencies = sorted((answered[k] - started[k]) * 1e3 for k in started if k in answered)
    push_calls = sorted((pushed[k] - started[k]) * 1e3 for k in pushed)
    span = max(answered.values()) - min(started.values())
    return {
        "subscribers": count,
        "rate_per_s": rate,
        "user_delay_s": user_delay,
        "window": window,
        "answers": len(latencies),
        "other_events": other,
        "latency_ms": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "p99": _percentile(latencies, 99),
            "max": latencies[-1],
            "min": latencies[0],
        },
        "push_call_ms": {"p50": _percentile(push_calls, 50), "p99": _percentile(push_calls, 99)},
        "throughput_per_s": len(latencies) / span,
        "span_s": span,
        "cpu_ms_per_round_trip": cpu * 1e3 / count,
    }


def print_e2e(result: dict[str, Any]) -> None:
    lat, call = result["latency_ms"], result["push_call_ms"]
    rate = f"at {result['rate_per_s']:g}/s" if result["rate_per_s"] > 0 else "all at once"
    print(
        f"\npush -> accept round trip over loopback: {result['subscribers']} subscribers, pushes {rate}, "
        f"user delay {result['user_delay_s']:g} s, window {result['window']}"
    )
    print(f"{'':<28} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    print(
        f"{'push() -> StkAnswerReceived':<28} {lat['p50']:>6.1f}ms {lat['p95']:>6.1f}ms {lat['p99']:>6.1f}ms {lat['max']:>6.1f}ms"
    )
    print(f"{'push() call (to msg id)':<28} {call['p50']:>6.1f}ms {'':>8} {call['p99']:>6.1f}ms")
    print(
        f"answers {result['answers']}/{result['subscribers']} in {result['span_s']:.2f} s = "
        f"{result['throughput_per_s']:,.0f} round trips/s; CPU {result['cpu_ms_per_round_trip']:.2f} ms per round trip "
        f"(gateway + SMSC + cards, one process)"
    )
    if result["other_events"]:
        print(f"other events: {result['other_events']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--e2e", type=int, nargs="?", const=500, default=None, metavar="N",
        help="also measure push -> accept round trips with N subscribers (default 500)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=100.0, help="pushes per second for --e2e (0: all at once)"
    )
    parser.add_argument("--user-delay", type=float, default=0.0, help="seconds the simulated user takes")
    parser.add_argument("--window", type=int, default=50, help="the ESME's SMPP window for --e2e")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on --e2e after this many s")
    args = parser.parse_args(argv)
    if args.e2e is not None and args.e2e < 1:
        parser.error("--e2e needs at least one subscriber")

    sample = build_push(1)
    packet = sample[len(COMMAND_UDH) :]

    def lookup(tar: bytes, kic: Kic, kid: Kid) -> KeySet:
        return KEYS

    def verify(_: int) -> object:
        return parse_command_packet(packet, lookup)

    rows: dict[str, list[float]] = {
        "build secured offer (GET INKEY + DSTK + AES-CBC + CMAC)": [rate(build_push, args.seconds)],
        "verify on the card (CMAC + decipher + counter)": [rate(verify, args.seconds)],
    }
    for _ in range(args.rounds - 1):
        rows["build secured offer (GET INKEY + DSTK + AES-CBC + CMAC)"].append(rate(build_push, args.seconds))
        rows["verify on the card (CMAC + decipher + counter)"].append(rate(verify, args.seconds))
    result: dict[str, Any] = {
        name: {"median_per_s": statistics.median(runs), "runs": runs} for name, runs in rows.items()
    }
    result["short_message_octets"] = len(sample)
    if args.e2e is not None:
        result["e2e"] = asyncio.run(e2e(args.e2e, args.rate, args.user_delay, args.window, args.timeout))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"secured offer packets, {len(sample)}-octet short_message (UDH 027000 + command packet), median of {args.rounds}"
    )
    for name, runs in rows.items():
        print(
            f"{name:<58} {statistics.median(runs):>10,.0f}/s   runs: {' '.join(f'{r / 1e3:.1f}k' for r in runs)}"
        )
    if args.e2e is not None:
        print_e2e(result["e2e"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

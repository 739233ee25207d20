"""SIM toolkit push: secured offer packets per second, and (with --e2e) push -> accept latency.

Packets: the work the gateway does per push, from the offer to the bytes of the short_message:
a GET INKEY yes/no dialog (TS 102 223), the DSTK application header, and a TS 102 225 command
packet with AES-CBC ciphering and an AES-CMAC checksum (the strongest common profile), behind the
UDH 02 70 00. The card side (verify the CMAC, decipher, check the counter) is measured too.

    .venv/bin/python bench/stk_push.py [--seconds 1] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Codec benchmark: encode + decode of one submit_sm per second, ours against the peers, same process.

The PDU: source_addr "12345", destination_addr "31612345678" (TON/NPI 1/1), a 40-octet GSM 03.38 text,
registered_delivery=1 and one TLV (user_message_reference=42). Before timing, the script checks that
all three codecs put the same octets on the wire and read the fields back.

Round trip per library, each on a PDU object built once (what a sender re-encodes is a value, not a
fresh object per call):

* ours    ``decode_pdu(encode_pdu(p))`` (protocols.smpp.pdu)
* smpplib ``smpplib.smpp.parse_pdu(p.generate())`` with ``p = smpplib.smpp.make_pdu("submit_sm", ...)``
* smpp34  ``smpp34.decode(p.encode())`` with ``p = smpp34.SubmitSm(...)`` (the Rust core's standalone codec)

The goal (>= 500k/s) applies to that round trip. A second table also builds a new PDU object per
iteration (what sending distinct messages costs), and a third splits ours and smpp34 into encode-only
and decode-only rates.

Each measurement is repeated ``--rounds`` times, libraries interleaved round by round, and the median
is reported. Run: ``.venv/bin/python bench/codec.py [--seconds S] [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.smpp.pdu import SubmitSm, decode_pdu, encode_pdu
from protocols.smpp.tlv import Tlv

GOAL = 500_000  # round trips per second, ours
SOURCE = "12345"
DEST = "31612345678"
TEXT = b"Your 500 MB package is active. Enjoy it!"  # 40 octets, GSM 03.38 default alphabet = ASCII here
SEQ = 7
UMR = 42  # user_message_reference (tag 0x0204, 2 octets)

assert len(TEXT) == 40

Loop = Callable[[int], None]


def ours_pdu() -> SubmitSm:
    return SubmitSm(
        sequence_number=SEQ,
        source_addr=SOURCE,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=DEST,
        registered_delivery=1,
        short_message=TEXT,
        optional_parameters=(Tlv.make("user_message_reference", UMR),),
    )


class _SmpplibSequence:
    """smpplib asks its client for sequence numbers; a stub stands in for the socket client."""

    sequence = SEQ

    def next_sequence(self) -> int:
        return SEQ


def smpplib_pdu() -> Any:
    import smpplib.smpp

    return smpplib.smpp.make_pdu(
        "submit_sm",
        client=_SmpplibSequence(),
        sequence=SEQ,
        source_addr_ton=0,
        source_addr_npi=0,
        source_addr=SOURCE,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=DEST,
        esm_class=0,
        protocol_id=0,
        priority_flag=0,
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=0,
        sm_default_msg_id=0,
        short_message=TEXT,
        user_message_reference=UMR,
    )


def smpp34_pdu() -> Any:
    import smpp34

    return smpp34.SubmitSm(
        SOURCE,
        DEST,
        TEXT,
        dest_addr_ton=1,
        dest_addr_npi=1,
        registered_delivery=1,
        tlvs=[smpp34.Tlv(smpp34.TLV_USER_MESSAGE_REFERENCE, UMR.to_bytes(2, "big"))],
        sequence_number=SEQ,
    )


def check_wire() -> tuple[bytes, dict[str, str]]:
    """Encode with every codec, compare the octets, decode each with every other. Returns ours and notes."""
    notes: dict[str, str] = {}
    wire = encode_pdu(ours_pdu())
    back = decode_pdu(wire)
    assert back == ours_pdu(), "ours does not round-trip"
    try:
        import smpplib.smpp

        sl = smpplib_pdu().generate()
        assert sl == wire, f"smpplib encodes differently:\n{sl.hex()}\n{wire.hex()}"
        parsed = smpplib.smpp.parse_pdu(wire, client=_SmpplibSequence(), allow_unknown_opt_params=True)
        assert parsed.short_message == TEXT and parsed.user_message_reference == UMR
        assert parsed.destination_addr.decode() == DEST and parsed.registered_delivery == 1
        notes["smpplib"] = "same octets"
    except ImportError:
        notes["smpplib"] = "not installed"
    try:
        import smpp34

        s3 = smpp34_pdu().encode()
        assert s3 == wire, f"smpp34 encodes differently:\n{s3.hex()}\n{wire.hex()}"
        d = smpp34.decode(wire)
        assert d.short_message == TEXT and d.destination_addr == DEST and d.registered_delivery == 1
        assert d.tlvs[0].tag == 0x0204 and d.tlvs[0].as_int() == UMR and d.sequence_number == SEQ
        notes["smpp34"] = "same octets"
    except ImportError:
        notes["smpp34"] = "not installed"
    return wire, notes


def loops() -> dict[str, Loop]:
    """name -> run(n): n iterations of one operation. Each closure has the same loop overhead."""
    out: dict[str, Loop] = {}

    p = ours_pdu()
    wire = encode_pdu(p)

    def ours_rt(n: int, p: SubmitSm = p, enc: Any = encode_pdu, dec: Any = decode_pdu) -> None:
        for _ in range(n):
            dec(enc(p))

    def ours_enc(n: int, p: SubmitSm = p, enc: Any = encode_pdu) -> None:
        for _ in range(n):
            enc(p)

    def ours_dec(n: int, wire: bytes = wire, dec: Any = decode_pdu) -> None:
        for _ in range(n):
            dec(wire)

    tlvs = p.optional_parameters

    def ours_build(n: int, enc: Any = encode_pdu, dec: Any = decode_pdu, tlvs: Any = tlvs) -> None:
        for _ in range(n):
            dec(
                enc(
                    SubmitSm(
                        sequence_number=SEQ,
                        source_addr=SOURCE,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        destination_addr=DEST,
                        registered_delivery=1,
                        short_message=TEXT,
                        optional_parameters=tlvs,
                    )
                )
            )

    out["ours"] = ours_rt
    out["ours encode"] = ours_enc
    out["ours decode"] = ours_dec
    out["ours build"] = ours_build

    try:
        import smpplib.smpp

        sp = smpplib_pdu()
        stub = _SmpplibSequence()

        def smpplib_rt(n: int, sp: Any = sp, parse: Any = smpplib.smpp.parse_pdu, stub: Any = stub) -> None:
            for _ in range(n):
                parse(sp.generate(), client=stub, allow_unknown_opt_params=True)

        def smpplib_build(n: int, parse: Any = smpplib.smpp.parse_pdu, stub: Any = stub) -> None:
            for _ in range(n):
                parse(smpplib_pdu().generate(), client=stub, allow_unknown_opt_params=True)

        out["smpplib"] = smpplib_rt
        out["smpplib build"] = smpplib_build
    except ImportError:
        pass
    try:
        import smpp34

        s3 = smpp34_pdu()

        def smpp34_rt(n: int, s3: Any = s3, dec: Any = smpp34.decode) -> None:
            for _ in range(n):
                dec(s3.encode())

        def smpp34_enc(n: int, s3: Any = s3) -> None:
            for _ in range(n):
                s3.encode()

        def smpp34_dec(n: int, wire: bytes = wire, dec: Any = smpp34.decode) -> None:
            for _ in range(n):
                dec(wire)

        def smpp34_build(n: int, dec: Any = smpp34.decode, mk: Any = smpp34.SubmitSm) -> None:
            tlvs = [smpp34.Tlv(smpp34.TLV_USER_MESSAGE_REFERENCE, UMR.to_bytes(2, "big"))]
            for _ in range(n):
                dec(
                    mk(
                        SOURCE,
                        DEST,
                        TEXT,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        registered_delivery=1,
                        tlvs=tlvs,
                        sequence_number=SEQ,
                    ).encode()
                )

        out["smpp34"] = smpp34_rt
        out["smpp34 build"] = smpp34_build
        out["smpp34 encode"] = smpp34_enc
        out["smpp34 decode"] = smpp34_dec
    except ImportError:
        pass
    return out


def calibrate(run: Loop, seconds: float) -> int:
    """Iterations that take about ``seconds``."""
    n = 1
    while True:
        t0 = time.perf_counter()
        run(n)
        dt = time.perf_counter() - t0
        if dt >= 0.05:
            return max(1, int(n * seconds / dt))
        n *= 4


def measure(runs: dict[str, Loop], seconds: float, rounds: int) -> dict[str, list[float]]:
    sizes = {name: calibrate(run, seconds) for name, run in runs.items()}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():  # interleaved: drift hits every library alike
            n = sizes[name]
            t0 = time.perf_counter()
            run(n)
            rates[name].append(n / (time.perf_counter() - t0))
    return rates


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("smpplib", "smpp34"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod)
        except Exception:
            out[mod] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="duration of one round per library")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per library; the median is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)

    wire, notes = check_wire()
    rates = measure(loops(), args.seconds, args.rounds)
    med = {name: statistics.median(r) for name, r in rates.items()}
    ours = med["ours"]
    ratios = {peer: ours / med[peer] for peer in ("smpplib", "smpp34") if peer in med}
    result: dict[str, Any] = {
        "pdu_octets": len(wire),
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "versions": versions(),
        "wire_check": notes,
        "median_per_s": {k: round(v) for k, v in med.items()},
        "runs_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
        "ratio_ours_to": {k: round(v, 3) for k, v in ratios.items()},
        "goal_per_s": GOAL,
        "goal_met": ours >= GOAL,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print(
        f"submit_sm codec, encode+decode round trips per second ({len(wire)}-octet PDU, 40-octet text, "
        f"1 TLV); median of {args.rounds} x {args.seconds:g} s; Python {result['versions']['python']}"
    )
    print(f"wire check: smpplib {notes.get('smpplib')}, smpp34 {notes.get('smpp34')} as ours\n")
    print(f"{'codec':<34} {'round trips/s':>14} {'ours / this':>12}   runs (k/s)")
    labels = {
        "ours": "ours (protocols.smpp.pdu)",
        "smpplib": f"smpplib {result['versions']['smpplib']} (pure Python)",
        "smpp34": f"smpp34 {result['versions']['smpp34']} (Rust core)",
    }
    for name in ("ours", "smpplib", "smpp34"):
        if name not in med:
            print(f"{labels[name]:<34} {'not installed':>14}")
            continue
        ratio = "" if name == "ours" else f"{ours / med[name]:.2f}x"
        runs = " ".join(f"{x / 1000:.0f}" for x in rates[name])
        print(f"{labels[name]:<34} {med[name]:>14,.0f} {ratio:>12}   {runs}")
    print()
    print(f"{'build a new PDU + encode + decode':<34} {'per second':>14} {'ours / this':>12}")
    for name in ("ours", "smpplib", "smpp34"):
        if f"{name} build" in med:
            v = med[f"{name} build"]
            ratio = "" if name == "ours" else f"{med['ours build'] / v:.2f}x"
            print(f"{labels[name]:<34} {v:>14,.0f} {ratio:>12}")
    print()
    print(f"{'one direction only':<34} {'encode/s':>14} {'decode/s':>12}")
    for name in ("ours", "smpp34"):
        if f"{name} encode" in med:
            print(f"{labels[name]:<34} {med[name + ' encode']:>14,.0f} {med[name + ' decode']:>12,.0f}")
    print()
    status = "MET" if result["goal_met"] else "NOT MET"
    print(f"goal: ours >= {GOAL:,} round trips/s -> {ours:,.0f}/s: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Diameter codec benchmark: Gy CCR decode + CCA encode per second on one core, ours against python-diameter.

The workload is what the usage ingest does for every Gy report (RFC 4006 section 3.1 and 3.2, 3GPP TS
32.299 section 7.2.175):

* the CCR-U, built once as bytes: Session-Id, Origin-Host, Origin-Realm, Destination-Realm,
  Auth-Application-Id 4, Service-Context-Id, CC-Request-Type 2 (UPDATE), CC-Request-Number,
  Subscription-Id (END_USER_E164), Multiple-Services-Credit-Control { Used-Service-Unit
  { CC-Total-Octets, Reporting-Reason (3GPP 872) = QUOTA_EXHAUSTED }, Rating-Group };
* "decode": bytes -> the fields the ingest needs, typed: Session-Id, Subscription-Id-Type and -Data
  (the MSISDN), CC-Request-Type and -Number, Rating-Group, CC-Total-Octets and Reporting-Reason;
* "encode": the CCA to bytes: Session-Id, Result-Code 2001, Origin-Host, Origin-Realm,
  Auth-Application-Id, CC-Request-Type and -Number, MSCC { Granted-Service-Unit { CC-Total-Octets },
  Rating-Group, Result-Code 2001 };
* "decode + encode": both, the CCA built from the fields just decoded (what one CCR costs).

Rows:

* ``ours``: ``protocols.diameter.codec`` (``decode`` / ``encode``) and ``protocols.diameter.dictionary``
  (``find``, ``value_of``, ``avp``): only the AVPs asked for are decoded.
* ``ours (credit_control)``: ``credit_control.parse_request`` (the whole CCR typed and checked against
  RFC 4006's grammar: every AVP, flag rule and value) and ``credit_control.encode_answer`` (the octets
  of ``encode(answer(...))``): what the gateway's Diameter server runs.
* ``python-diameter``: ``Message.from_bytes`` (typed attributes for every AVP) and a
  ``CreditControlAnswer`` whose attributes are set, then ``as_bytes()``.

Before timing, the script checks that both libraries decode the CCR (ours and one python-diameter
built) to the same fields, and that each decodes the other's CCA to the same fields: both do the same
work. The goal: ours >= 2x python-diameter on decode + encode, on both rows (the credit_control one is
what the server runs). Each row is measured ``--rounds`` times
for ``--seconds``, libraries interleaved round by round; the table shows the median.

    .venv/bin/python bench/diameter_codec.py [--seconds 1] [--rounds 5] [--json]
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

from protocols.diameter.codec import Avp, Message, decode, encode
from protocols.diameter.dictionary import avp, find, value_of

GOAL_RATIO = 2.0  # ours / python-diameter, decode + encode

SESSION_ID = "pgw1.epc.mnc001.mcc001.3gppnetwork.org;1717000000;42;gy"
PEER_HOST = "pgw1.epc.mnc001.mcc001.3gppnetwork.org"
PEER_REALM = "epc.mnc001.mcc001.3gppnetwork.org"
OUR_HOST = "tgw.example.net"
OUR_REALM = "example.net"
MSISDN = "31612345678"
REQUEST_NUMBER = 7
RATING_GROUP = 100
USED_OCTETS = 5_368_709_120  # 5 GiB: an Unsigned64 above 2**32
GRANTED_OCTETS = 1_073_741_824
QUOTA_EXHAUSTED = 3  # Reporting-Reason, TS 32.299 section 7.2.175
E164 = 0  # Subscription-Id-Type END_USER_E164, RFC 4006 section 8.47
UPDATE_REQUEST = 2
SUCCESS = 2001
HOP_BY_HOP = 0x1234ABCD
END_TO_END = 0x5678EF01
GY = 4

Fields = tuple[str, int, str, int, int, int, int, int]
"""Session-Id, Subscription-Id-Type, MSISDN, CC-Request-Type, CC-Request-Number, Rating-Group,
CC-Total-Octets, Reporting-Reason."""
EXPECTED: Fields = (SESSION_ID, E164, MSISDN, UPDATE_REQUEST, REQUEST_NUMBER, RATING_GROUP, USED_OCTETS, 3)

Loop = Callable[[int], None]


# --- ours: codec + dictionary -------------------------------------------------------------------


def ours_ccr() -> bytes:
    return encode(
        Message(
            command_flags=0xC0,  # R, P
            command_code=272,
            application_id=GY,
            hop_by_hop=HOP_BY_HOP,
            end_to_end=END_TO_END,
            avps=(
                avp("Session-Id", SESSION_ID),
                avp("Origin-Host", PEER_HOST),
                avp("Origin-Realm", PEER_REALM),
                avp("Destination-Realm", OUR_REALM),
                avp("Auth-Application-Id", GY),
                avp("Service-Context-Id", "32251@3gpp.org"),
                avp("CC-Request-Type", UPDATE_REQUEST),
                avp("CC-Request-Number", REQUEST_NUMBER),
                avp(
                    "Subscription-Id",
                    [avp("Subscription-Id-Type", E164), avp("Subscription-Id-Data", MSISDN)],
                ),
                avp(
                    "Multiple-Services-Credit-Control",
                    [
                        avp(
                            "Used-Service-Unit",
                            [avp("CC-Total-Octets", USED_OCTETS), avp("Reporting-Reason", QUOTA_EXHAUSTED)],
                        ),
                        avp("Rating-Group", RATING_GROUP),
                    ],
                ),
            ),
        )
    )


def _get(where: Message | tuple[Avp, ...], name: str) -> Any:
    found = find(where, name)
    if found is None:
        raise KeyError(name)
    return value_of(found)


def ours_decode(wire: bytes) -> Fields:
    message = decode(wire)
    subscription = _get(message, "Subscription-Id")
    mscc = _get(message, "Multiple-Services-Credit-Control")
    usu = _get(mscc, "Used-Service-Unit")
    return (
        _get(message, "Session-Id"),
        _get(subscription, "Subscription-Id-Type"),
        _get(subscription, "Subscription-Id-Data"),
        _get(message, "CC-Request-Type"),
        _get(message, "CC-Request-Number"),
        _get(mscc, "Rating-Group"),
        _get(usu, "CC-Total-Octets"),
        _get(usu, "Reporting-Reason"),
    )


def ours_encode(session_id: str, request_type: int, request_number: int, rating_group: int) -> bytes:
    return encode(
        Message(
            command_flags=0x40,  # P, as the request
            command_code=272,
            application_id=GY,
            hop_by_hop=HOP_BY_HOP,
            end_to_end=END_TO_END,
            avps=(
                avp("Session-Id", session_id),
                avp("Result-Code", SUCCESS),
                avp("Origin-Host", OUR_HOST),
                avp("Origin-Realm", OUR_REALM),
                avp("Auth-Application-Id", GY),
                avp("CC-Request-Type", request_type),
                avp("CC-Request-Number", request_number),
                avp(
                    "Multiple-Services-Credit-Control",
                    [
                        avp("Granted-Service-Unit", [avp("CC-Total-Octets", GRANTED_OCTETS)]),
                        avp("Rating-Group", rating_group),
                        avp("Result-Code", SUCCESS),
                    ],
                ),
            ),
        )
    )


def ours_round(wire: bytes) -> bytes:
    fields = ours_decode(wire)
    return ours_encode(fields[0], fields[3], fields[4], fields[5])


# --- ours: credit_control (parse_request / answer) -----------------------------------------------


def credit_control() -> Any:
    """The module, or None while it does not exist yet (another engineer writes it)."""
    try:
        from protocols.diameter import credit_control as module
    except ImportError:
        return None
    return module


def cc_decode_request(wire: bytes) -> tuple[Message, Any, Fields]:
    cc = credit_control()
    message = decode(wire)
    request = cc.parse_request(message)
    subscription = request.subscription_id[0]
    mscc = request.multiple_services_credit_control[0]
    usu = mscc.used_service_unit[0]
    fields: Fields = (
        request.session_id,
        int(subscription.subscription_id_type),
        subscription.subscription_id_data,
        int(request.cc_request_type),
        request.cc_request_number,
        mscc.rating_group,
        usu.cc_total_octets,
        int(usu.reporting_reason),
    )
    return message, request, fields


def cc_encode(message: Message, rating_group: int) -> bytes:
    """The CCA through ``encode_answer``, what the gateway's server sends (the octets of
    ``encode(answer(...))`` from cached octets; ``cross_check`` compares the two). The answer MSCC is
    built each time, as python-diameter's row builds its own."""
    cc = credit_control()
    service = cc.MultipleServicesCreditControl(
        rating_group=rating_group,
        result_code=SUCCESS,
        granted_service_unit=cc.GrantedServiceUnit(cc_total_octets=GRANTED_OCTETS),
    )
    octets: bytes = cc.encode_answer(
        message,
        SUCCESS,
        origin_host=OUR_HOST,
        origin_realm=OUR_REALM,
        multiple_services_credit_control=[service],
    )
    return octets


def cc_encode_message(message: Message, rating_group: int) -> bytes:
    """The same CCA through ``answer`` (a ``Message``) and ``codec.encode``."""
    cc = credit_control()
    service = cc.MultipleServicesCreditControl(
        rating_group=rating_group,
        result_code=SUCCESS,
        granted_service_unit=cc.GrantedServiceUnit(cc_total_octets=GRANTED_OCTETS),
    )
    answer = cc.answer(
        message,
        SUCCESS,
        origin_host=OUR_HOST,
        origin_realm=OUR_REALM,
        multiple_services_credit_control=[service],
    )
    return encode(answer)


# --- python-diameter ------------------------------------------------------------------------------


def pd_ccr() -> bytes:
    from diameter.message.avp.grouped import MultipleServicesCreditControl, SubscriptionId, UsedServiceUnit
    from diameter.message.commands import CreditControlRequest

    ccr = CreditControlRequest()
    ccr.header.hop_by_hop_identifier = HOP_BY_HOP
    ccr.header.end_to_end_identifier = END_TO_END
    ccr.session_id = SESSION_ID
    ccr.origin_host = PEER_HOST.encode()
    ccr.origin_realm = PEER_REALM.encode()
    ccr.destination_realm = OUR_REALM.encode()
    ccr.auth_application_id = GY
    ccr.service_context_id = "32251@3gpp.org"
    ccr.cc_request_type = UPDATE_REQUEST
    ccr.cc_request_number = REQUEST_NUMBER
    ccr.subscription_id = [SubscriptionId(subscription_id_type=E164, subscription_id_data=MSISDN)]
    ccr.multiple_services_credit_control = [
        MultipleServicesCreditControl(
            used_service_unit=[
                UsedServiceUnit(cc_total_octets=USED_OCTETS, reporting_reason=QUOTA_EXHAUSTED)
            ],
            rating_group=RATING_GROUP,
        )
    ]
    wire: bytes = ccr.as_bytes()
    return wire


def pd_decode(wire: bytes, from_bytes: Any = None) -> Fields:
    if from_bytes is None:
        from diameter.message import Message as PdMessage

        from_bytes = PdMessage.from_bytes
    message = from_bytes(wire)
    subscription = message.subscription_id[0]
    mscc = message.multiple_services_credit_control[0]
    usu = mscc.used_service_unit[0]
    return (
        message.session_id,
        subscription.subscription_id_type,
        subscription.subscription_id_data,
        message.cc_request_type,
        message.cc_request_number,
        mscc.rating_group,
        usu.cc_total_octets,
        usu.reporting_reason,
    )


def pd_encode(session_id: str, request_type: int, request_number: int, rating_group: int) -> bytes:
    from diameter.message.avp.grouped import GrantedServiceUnit, MultipleServicesCreditControl
    from diameter.message.commands import CreditControlAnswer

    cca = CreditControlAnswer()  # sets the P bit, clears R
    cca.header.hop_by_hop_identifier = HOP_BY_HOP
    cca.header.end_to_end_identifier = END_TO_END
    cca.session_id = session_id
    cca.result_code = SUCCESS
    cca.origin_host = OUR_HOST.encode()
    cca.origin_realm = OUR_REALM.encode()
    cca.auth_application_id = GY
    cca.cc_request_type = request_type
    cca.cc_request_number = request_number
    cca.multiple_services_credit_control = [
        MultipleServicesCreditControl(
            granted_service_unit=GrantedServiceUnit(cc_total_octets=GRANTED_OCTETS),
            rating_group=rating_group,
            result_code=SUCCESS,
        )
    ]
    wire: bytes = cca.as_bytes()
    return wire


# --- the cross-check ------------------------------------------------------------------------------

CcaFields = tuple[str, int, str, str, int, int, int, int, int, int, int, int, int, int]
CCA_EXPECTED: CcaFields = (
    SESSION_ID,
    SUCCESS,
    OUR_HOST,
    OUR_REALM,
    GY,
    UPDATE_REQUEST,
    REQUEST_NUMBER,
    GRANTED_OCTETS,
    RATING_GROUP,
    SUCCESS,
    0x40,  # command flags: P
    272,
    HOP_BY_HOP,
    END_TO_END,
)


def ours_read_cca(wire: bytes) -> CcaFields:
    message = decode(wire)
    mscc = _get(message, "Multiple-Services-Credit-Control")
    return (
        _get(message, "Session-Id"),
        _get(message, "Result-Code"),
        _get(message, "Origin-Host"),
        _get(message, "Origin-Realm"),
        _get(message, "Auth-Application-Id"),
        _get(message, "CC-Request-Type"),
        _get(message, "CC-Request-Number"),
        _get(_get(mscc, "Granted-Service-Unit"), "CC-Total-Octets"),
        _get(mscc, "Rating-Group"),
        _get(mscc, "Result-Code"),
        message.command_flags,
        message.command_code,
        message.hop_by_hop,
        message.end_to_end,
    )


def pd_read_cca(wire: bytes) -> CcaFields:
    from diameter.message import Message as PdMessage

    message = PdMessage.from_bytes(wire)
    mscc = message.multiple_services_credit_control[0]
    return (
        message.session_id,
        message.result_code,
        message.origin_host.decode(),
        message.origin_realm.decode(),
        message.auth_application_id,
        message.cc_request_type,
        message.cc_request_number,
        mscc.granted_service_unit.cc_total_octets,
        mscc.rating_group,
        mscc.result_code,
        message.header.command_flags,
        message.header.command_code,
        message.header.hop_by_hop_identifier,
        message.header.end_to_end_identifier,
    )


def _differing_avps(ours: bytes, theirs: bytes) -> list[str]:
    """Top-level AVPs whose octets differ (same AVP codes in the same order expected)."""
    a, b = decode(ours).avps, decode(theirs).avps
    if [x.code for x in a] != [y.code for y in b]:
        return ["AVP order differs"]
    return [
        f"AVP {x.code}: flags {x.flags:#04x} vs {y.flags:#04x}" for x, y in zip(a, b, strict=True) if x != y
    ]


def cross_check(wire: bytes, have_pd: bool, have_cc: bool) -> dict[str, str]:
    """Both libraries decode both CCRs to the same fields, and each decodes the other's CCA."""
    notes: dict[str, str] = {}
    assert ours_decode(wire) == EXPECTED, ours_decode(wire)
    our_cca = ours_round(wire)
    assert ours_read_cca(our_cca) == CCA_EXPECTED, ours_read_cca(our_cca)
    if have_cc:
        message, _, fields = cc_decode_request(wire)
        assert fields == EXPECTED, fields
        cc_cca = cc_encode(message, fields[5])
        assert cc_cca == our_cca, "credit_control.encode_answer and the hand-built CCA differ"
        assert cc_encode_message(message, fields[5]) == cc_cca, "encode(answer()) and encode_answer differ"
        notes["credit_control"] = (
            "same CCR fields, CCA byte-identical to ours (encode_answer = encode(answer))"
        )
    if have_pd:
        assert pd_decode(wire) == EXPECTED, pd_decode(wire)
        their_ccr = pd_ccr()
        assert ours_decode(their_ccr) == EXPECTED and pd_decode(their_ccr) == EXPECTED
        their_cca = pd_encode(*_answer_args(pd_decode(wire)))
        assert ours_read_cca(their_cca) == CCA_EXPECTED, ours_read_cca(their_cca)
        assert pd_read_cca(our_cca) == CCA_EXPECTED, pd_read_cca(our_cca)
        assert pd_read_cca(their_cca) == CCA_EXPECTED
        diff = _differing_avps(our_cca, their_cca) + [
            f"CCR {d}"
            for d in _differing_avps(wire, their_ccr)
            if d not in _differing_avps(our_cca, their_cca)
        ]
        notes["python-diameter"] = "same fields both ways" + (
            f"; octets differ only in: {', '.join(diff)}" if diff else "; byte-identical"
        )
        if len(their_cca) != len(our_cca):
            notes["python-diameter"] += f" (CCA {len(their_cca)} vs {len(our_cca)} octets)"
    return notes


def _answer_args(fields: Fields) -> tuple[str, int, int, int]:
    return fields[0], fields[3], fields[4], fields[5]


# --- timing ---------------------------------------------------------------------------------------


def loops(wire: bytes, have_pd: bool, have_cc: bool) -> dict[str, Loop]:
    """name -> run(n): n iterations of one operation."""
    out: dict[str, Loop] = {}
    args = _answer_args(EXPECTED)

    def ours_dec(n: int, dec: Any = ours_decode) -> None:
        for _ in range(n):
            dec(wire)

    def ours_enc(n: int, enc: Any = ours_encode) -> None:
        for _ in range(n):
            enc(*args)

    def ours_rt(n: int, dec: Any = ours_decode, enc: Any = ours_encode) -> None:
        for _ in range(n):
            f = dec(wire)
            enc(f[0], f[3], f[4], f[5])

    out["ours decode"] = ours_dec
    out["ours encode"] = ours_enc
    out["ours"] = ours_rt

    if have_cc:
        request_message = decode(wire)

        def cc_dec(n: int, dec: Any = cc_decode_request) -> None:
            for _ in range(n):
                dec(wire)

        def cc_enc(n: int, enc: Any = cc_encode, m: Message = request_message) -> None:
            for _ in range(n):
                enc(m, RATING_GROUP)

        def cc_rt(n: int, dec: Any = cc_decode_request, enc: Any = cc_encode) -> None:
            for _ in range(n):
                m, _request, f = dec(wire)
                enc(m, f[5])

        out["cc decode"] = cc_dec
        out["cc encode"] = cc_enc
        out["cc"] = cc_rt

    if have_pd:
        from diameter.message import Message as PdMessage

        from_bytes = PdMessage.from_bytes

        def pd_dec(n: int, dec: Any = pd_decode) -> None:
            for _ in range(n):
                dec(wire, from_bytes)

        def pd_enc(n: int, enc: Any = pd_encode) -> None:
            for _ in range(n):
                enc(*args)

        def pd_rt(n: int, dec: Any = pd_decode, enc: Any = pd_encode) -> None:
            for _ in range(n):
                f = dec(wire, from_bytes)
                enc(f[0], f[3], f[4], f[5])

        out["pd decode"] = pd_dec
        out["pd encode"] = pd_enc
        out["pd"] = pd_rt
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


def pd_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("python-diameter")
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="duration of one round per row")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per row; the median is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)

    version = pd_version()
    have_pd = version is not None
    have_cc = credit_control() is not None
    wire = ours_ccr()
    notes = cross_check(wire, have_pd, have_cc)
    rates = measure(loops(wire, have_pd, have_cc), args.seconds, args.rounds)
    med = {name: statistics.median(r) for name, r in rates.items()}
    ratios: dict[str, float] = {}
    if have_pd:
        for ours in ("ours", "cc"):
            for op in ("", " decode", " encode"):
                if ours + op in med:
                    ratios[ours + op] = med[ours + op] / med["pd" + op]
    goal_rows = [key for key in ("ours", "cc") if key in ratios]
    goal_met = bool(goal_rows) and all(ratios[key] >= GOAL_RATIO for key in goal_rows)
    result: dict[str, Any] = {
        "ccr_octets": len(wire),
        "cca_octets": len(ours_round(wire)),
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "versions": {"python": platform.python_version(), "python-diameter": version or "absent"},
        "cross_check": notes,
        "median_per_s": {k: round(v) for k, v in med.items()},
        "runs_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
        "ratio_to_python_diameter": {k: round(v, 3) for k, v in ratios.items()},
        "goal": f"ours >= {GOAL_RATIO:g}x python-diameter on decode + encode (codec and credit_control rows)",
        "goal_met": goal_met,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print(
        f"Gy CCR-U decode ({len(wire)} octets) + CCA encode ({result['cca_octets']} octets) per second, "
        f"one core; median of {args.rounds} x {args.seconds:g} s; Python {platform.python_version()}"
    )
    for peer, note in notes.items():
        print(f"cross-check, {peer}: {note}")
    print()
    labels = {
        "ours": "ours (codec + dictionary)",
        "cc": "ours (credit_control)",
        "pd": f"python-diameter {version}",
    }
    print(
        f"{'library':<30} {'decode+encode/s':>16} {'decode/s':>11} {'encode/s':>11} {'x python-diameter':>20}"
    )
    for key, label in labels.items():
        if key not in med:
            why = "not installed" if key == "pd" else "credit_control.py absent"
            print(f"{label:<30} {why:>16}")
            continue
        ratio = ""
        if key in ratios:
            ratio = f"{ratios[key]:.2f}x ({ratios[key + ' decode']:.1f} / {ratios[key + ' encode']:.1f})"
        print(
            f"{label:<30} {med[key]:>16,.0f} {med[key + ' decode']:>11,.0f} {med[key + ' encode']:>11,.0f} {ratio:>20}"
        )
    print()
    print(
        "runs, decode+encode (k/s): "
        + "; ".join(
            f"{labels[k]}: {' '.join(f'{x / 1000:.1f}' for x in rates[k])}" for k in labels if k in rates
        )
    )
    if have_pd:
        status = "MET" if goal_met else "NOT MET"
        achieved = ", ".join(f"{labels[key]} {ratios[key]:.2f}x" for key in goal_rows)
        print(f"goal: ours >= {GOAL_RATIO:g}x python-diameter on decode+encode -> {achieved}: {status}")
    else:
        print(
            "python-diameter not installed (pip install python-diameter==0.9.0): no ratio, goal not checked"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

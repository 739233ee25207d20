"""The ``tgw`` console script: the gateway commands of ``gateway.cli`` plus the simulators.

``tgw sim smsc`` runs the SMSC simulator until interrupted; with ``--control HOST:PORT`` it also serves
the HTTP control channel of ``simulators.smsc_control`` (handsets for testers; port 0 picks a free
one, printed on the second line). ``--ussd-profile`` (standard, 6d, mica) and ``--ussd-timeout`` set up
its USSD relay (USSD over SMPP 3.4, PROTOCOLS.md 1.1). ``--mo-validity`` (default an hour; 0: off) has it
store an MO that arrives while no gateway is bound and forward it on the next bind. ``tgw demo`` runs the richest end-to-end flow
there is so far (see ``simulators.demo``).

``tgw sim billing --listen HOST:PORT [--config configs/simulators/billing.yaml] [--subscribers N]``
serves the billing / OCS simulator's HTTP API (``simulators.billing.BillingServer``) on wall-clock
time: N subscribers from ``--first-msisdn`` (and each ``--msisdn``), with one recent top-up so credit
scoring lends them something; point the gateway's ``billing.url`` at it.

``tgw sim network`` plays the PCEF / OCS / DPI: it meters ``--subscribers`` packages until each is
used up (a threshold report at 90 %, then exhaustion; ``--renew`` renews them after) and reports
every notification over the gateway's intakes: ``--diameter HOST:PORT`` (``--dialect`` gy, gx or sy),
``--mqtt HOST:PORT``, ``--http URL``.

``tgw handset dial --sim HOST:PORT --msisdn N CODE [REPLY ...]`` dials CODE on that control channel,
prints each screen as ``--- screen 1 (continue) ---`` and its text, answers each screen that asks for
input with the next REPLY (echoed as ``> REPLY``), and stops at the final screen.
``tgw handset listen --sim HOST:PORT --msisdn N [REPLY ...]`` waits for a session the gateway opens to
N (a network-initiated USSR menu or USSN notification) and runs it the same way. Exit status: 0 the
dialog ended with a final screen and every reply was used; 1 the control channel cannot be reached;
3 no gateway bound, or the gateway refused the dial or a reply; 4 nothing came within ``--timeout``
(the handset then cancels the session); 5 the dialog ended abnormally (released by the gateway, or
timed out by the network); 6 the dialog did not follow the script (a screen asks for input and no
replies are left, so the handset cancels, or it ended with replies unused); 64 a usage error (a
string that is no USSD code). Each failure prints one line on stderr.

``tgw sim smsc --control ... [--handsets N,...] [--sim-keys FILE]`` switches tester handsets on (those
named, and one per subscriber of the SIM key file, whose card gets that subscriber's keys; any other
MSISDN at first use) and serves the web handset at ``/`` on the control port (third line).
``tgw handset sms --sim HOST:PORT --msisdn N`` prints N's SMS inbox; with ``--to SHORTCODE --text T`` it
sends T as an MO SMS instead. ``tgw handset inbox`` prints the inbox (``--wait S``: only the next SMS,
within S seconds). ``tgw handset stk --sim HOST:PORT --msisdn N`` prints the open SIM toolkit dialog
(``--wait S``: the next one) and answers it with ``--ok``, ``--cancel``, ``--item N`` or ``--input
TEXT``. Their exit statuses: 0 done; 1, 3, 64 as above; 4 no SMS or dialog (within ``--wait``), or the
dialog closed before the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from gateway.cli import build_parser, parse_host_port, run
from gateway.ingest.diameter import DiameterClient, DiameterSettings
from gateway.trace import PcapWriter, TrafficTap
from protocols.errors import ConfigError, TransportError
from simulators.billing import (
    Billing,
    BillingServer,
    FaultConfig,
    Subscriber,
    load_billing_config,
)
from simulators.billing import TopUp as BillingTopUp
from simulators.demo import run_demo
from simulators.network import (
    DiameterDialect,
    DiameterEmitter,
    HttpEmitter,
    MqttEmitter,
    Workload,
    run_workload,
)
from simulators.simulate import handset_address, simulate_command
from simulators.smsc import SmscSimulator, parse_account, parse_personality
from simulators.smsc_control import ControlClient, ControlError, SmscControl

__all__ = ["main"]


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no number") from None
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


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
        ussd_profile=args.ussd_profile,
        ussd_timeout=args.ussd_timeout,
        mo_validity=args.mo_validity or None,
        mo_store_limit=args.mo_store_limit,
    )
    host, port = args.listen
    # signal handlers first: whoever reads the "listening" line may signal us at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tap: TrafficTap | None = None
    if args.pcap is not None:  # SMPP both ways, and the SIM cards' APDUs as GSMTAP
        tap = TrafficTap(PcapWriter(args.pcap), time.time, outbound=True)
        tap.install(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await sim.start(host, port)
    except OSError as exc:  # port taken, address not local: one line, not a traceback
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"SMSC simulator listening on {bound[0]}:{bound[1]} personality={sim.personality.name}", flush=True)
    control: SmscControl | None = None
    try:
        if args.control is not None:
            control = SmscControl(
                sim, handsets=args.handsets, sim_keys=args.sim_keys, allowed_hosts=args.allow_host
            )
            if tap is not None:
                capture = tap
                control.hub.trace_apdus(lambda msisdn, apdu: capture.sim_apdu(handset_address(msisdn), apdu))
            chost, cport = args.control
            try:
                caddr = await control.start(chost, cport)
            except OSError as exc:
                raise TransportError(
                    f"cannot listen on {chost}:{cport} for control: {exc.strerror or exc}"
                ) from None
            print(f"SMSC control channel on http://{caddr[0]}:{caddr[1]}", flush=True)
            print(f"web handset on http://{caddr[0]}:{caddr[1]}/", flush=True)
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
        await sim.stop()
        if tap is not None:
            tap.close()
        print(f"stopped: {sim.stats}", flush=True)
    return 0


# --- billing -----------------------------------------------------------------------------------------

_DAY = 86_400.0


def _billing_subscribers(args: argparse.Namespace, now: float) -> list[Subscriber]:
    """``--subscribers N`` consecutive MSISDNs from ``--first-msisdn`` (as ``tgw sim network`` meters
    them) and each ``--msisdn``: long-standing customers with one recent top-up, so credit scoring
    lends them something (configs/simulators/billing.yaml explains the rules)."""
    msisdns = [str(args.first_msisdn + i) for i in range(args.subscribers)] + list(args.msisdn)
    topups = (BillingTopUp(now - 7 * _DAY, args.topup),) if args.topup > 0 else ()
    return [
        Subscriber(msisdn, balance=args.balance, tenure_days=args.tenure_days, topups=topups)
        for msisdn in dict.fromkeys(msisdns)  # one account per MSISDN, in order
    ]


def _money_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"{text!r} is no amount") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an amount of 0 or more")
    return value


async def _run_billing(args: argparse.Namespace) -> int:
    config = load_billing_config(args.config)  # ConfigError: file, line, reason
    billing = Billing(config)
    now = time.time()
    for subscriber in _billing_subscribers(args, now):
        billing.add_subscriber(subscriber, now)
    faults = FaultConfig() if args.no_faults else None  # None: the config's faults
    host, port = args.listen
    server = BillingServer(billing, time.time, faults=faults, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await server.start()
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(
        f"billing simulator listening on http://{bound[0]}:{bound[1]} ({len(billing)} subscribers, "
        f"{len(billing.catalogue)} packages, faults {'off' if args.no_faults else 'as configured'})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop()
        print(f"stopped: {server.stats}", flush=True)
    return 0


# --- handsets ----------------------------------------------------------------------------------------

_EXIT_OF_HTTP = {400: 64, 502: 3, 503: 3, 504: 4}


def _fail(reason: str, status: int) -> int:
    print(f"tgw: {reason}", file=sys.stderr, flush=True)
    return status


async def _run_dialog(client: ControlClient, session: str, replies: list[str], timeout: float) -> int:
    """Print each screen of ``session`` and answer the ones that ask for input; the exit status."""
    left = deque(replies)
    number = 0
    while True:
        try:
            screen: dict[str, Any] = await client.screen(session, timeout)
        except ControlError as exc:
            if exc.status != 504:
                raise
            with contextlib.suppress(ControlError):
                await client.release(session)
            return _fail(f"no screen within {timeout:g} s; the handset cancelled the session", 4)
        number += 1
        print(f"--- screen {number} ({screen.get('label', screen.get('kind'))}) ---", flush=True)
        print(screen.get("text", ""), flush=True)
        kind = screen.get("kind")
        if screen.get("final"):
            if kind in ("released", "timeout"):
                what = "released by the gateway" if kind == "released" else "timed out by the network"
                return _fail(f"the dialog ended abnormally: {what}", 5)
            if left:
                return _fail(f"the dialog ended with {len(left)} reply(ies) unused: {' '.join(left)}", 6)
            return 0
        if kind != "continue":
            continue  # a notification: the handset confirmed it, the gateway goes on
        if not left:
            with contextlib.suppress(ControlError):
                await client.release(session)
            return _fail(f"screen {number} asks for input and no replies are left; cancelled the session", 6)
        text = left.popleft()
        print(f"> {text}", flush=True)
        await client.reply(session, text, timeout)


def _print_sms(messages: list[dict[str, Any]]) -> None:
    for message in messages:
        print(f"--- SMS {message['id']} from {message['from']} at {message['at']} ---", flush=True)
        print(message["text"], flush=True)


async def _handset_sms(client: ControlClient, args: argparse.Namespace) -> int:
    """``sms``: send with --to and --text, else print the inbox; ``inbox``: print it (--wait: the next SMS)."""
    to, text = getattr(args, "to", None), getattr(args, "text", None)
    if to is not None or text is not None:
        if to is None or text is None:
            return _fail("give both --to and --text to send an SMS", 64)
        sent = await client.send_sms(args.msisdn, to, text, args.timeout)
        print(f"sent to {sent['to']} ({sent['parts']} part(s)): {sent['text']}", flush=True)
        return 0
    box = await client.sms(args.msisdn)
    if args.wait:
        last = max((message["id"] for message in box["inbox"] + box["sent"]), default=0)
        try:
            box = await client.sms(args.msisdn, after=last, timeout=args.wait)
        except ControlError as exc:
            if exc.status != 504:
                raise
            return _fail(f"no SMS to {args.msisdn} within {args.wait:g} s", 4)
    _print_sms(box["inbox"])
    if not box["inbox"] and not args.wait:
        print(f"(no SMS received by {args.msisdn})", flush=True)
    return 0


def _print_stk(dialog: dict[str, Any]) -> None:
    kind = dialog["kind"]
    what = {"yes_no": " (yes/no)", "key": " (one key)"}.get(kind, "")
    print(
        f"--- SIM toolkit dialog {dialog['id']}: {dialog['command']}{what}, "
        f"{dialog['expires_in']:.0f} s left ---",
        flush=True,
    )
    if dialog["text"]:
        print(dialog["text"], flush=True)
    for item in dialog["items"]:
        print(f"  {item['id']}. {item['text']}", flush=True)
    if kind == "select":
        hint = "--item N or --cancel (Back)"
    elif kind == "yes_no":
        hint = "--ok (Yes) or --cancel (No)"
    elif kind in ("input", "key"):
        bounds = dialog["input"]
        span = f"{bounds['min']}" if bounds["min"] == bounds["max"] else f"{bounds['min']}-{bounds['max']}"
        chars = "digits" if bounds["digits_only"] else "characters"
        hint = f"--input TEXT ({span} {chars}) or --cancel"
    else:
        hint = "--ok or --cancel"
    print(f"[answer with {hint}]", flush=True)


async def _handset_stk(client: ControlClient, args: argparse.Namespace) -> int:
    """Show the open SIM toolkit dialog (--wait: the next one) and answer it when told how."""
    try:
        dialog = await client.stk(args.msisdn, timeout=args.wait or None)
    except ControlError as exc:
        if exc.status != 504:
            raise
        return _fail(f"no SIM toolkit dialog on {args.msisdn} within {args.wait:g} s", 4)
    if dialog is None:
        return _fail(f"no SIM toolkit dialog is open on {args.msisdn}", 4)
    _print_stk(dialog)
    if args.ok:
        action, shown = "ok", "OK"
    elif args.cancel:
        action, shown = "cancel", "Cancel"
    elif args.item is not None:
        action, shown = "item", f"item {args.item}"
    elif args.input is not None:
        action, shown = "input", args.input
    else:
        return 0
    try:
        await client.answer_stk(args.msisdn, action, item=args.item, text=args.input, dialog=dialog["id"])
    except ControlError as exc:
        if exc.status != 409:
            raise
        return _fail(str(exc), 4)  # it closed meanwhile (timed out, or answered elsewhere)
    print(f"> {shown}", flush=True)
    return 0


async def _handset(args: argparse.Namespace) -> int:
    host, port = args.sim
    try:
        async with ControlClient(host, port) as client:
            if args.handset_command in ("sms", "inbox"):
                return await _handset_sms(client, args)
            if args.handset_command == "stk":
                return await _handset_stk(client, args)
            if args.handset_command == "dial":
                opened = await client.dial(args.msisdn, args.code, args.timeout)
            else:
                opened = await client.listen(args.msisdn, args.timeout)
            return await _run_dialog(client, str(opened["session"]), args.replies, args.timeout)
    except ControlError as exc:
        return _fail(str(exc), _EXIT_OF_HTTP.get(exc.status, 1))


async def _network(args: argparse.Namespace) -> int:
    if not (args.diameter or args.mqtt or args.http):
        raise ConfigError("tgw sim network: give at least one of --diameter, --mqtt, --http")
    workload = Workload(
        subscribers=args.subscribers,
        quota_bytes=args.quota_mb << 20,
        steps=args.steps,
        renew=args.renew,
        seed=args.seed,
        first_msisdn=args.first_msisdn,
    )
    notifications = run_workload(workload)
    print(f"network: {args.subscribers} subscribers, {len(notifications)} notifications", flush=True)
    if args.http:
        async with HttpEmitter(args.http, token=args.token) as http:
            await http.emit(notifications)
        print(f"http: {http.accepted} accepted, {http.rejected} rejected", flush=True)
    if args.mqtt:
        async with MqttEmitter(*args.mqtt, prefix=args.topic_prefix) as mqtt:
            await mqtt.emit(notifications)
        print(f"mqtt: {mqtt.published} published", flush=True)
    if args.diameter:
        settings = DiameterSettings(origin_host=args.origin_host, origin_realm=args.realm)
        client = DiameterClient(settings, *args.diameter)
        await client.start()
        try:
            emitter = DiameterEmitter(
                client,
                DiameterDialect(args.dialect),
                origin_host=args.origin_host,
                origin_realm=args.realm,
                destination_realm=args.realm,
                destination_host=args.destination_host,
            )
            await emitter.emit(notifications)
        finally:
            await client.stop()
        print(f"diameter ({args.dialect}): {emitter.answered} requests answered 2001", flush=True)
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
    smsc.add_argument(
        "--control",
        type=parse_host_port,
        default=None,
        metavar="HOST:PORT",
        help="also serve the HTTP control channel for `tgw handset` (port 0: any free port)",
    )
    smsc.add_argument(
        "--handsets",
        type=lambda spec: [m for m in spec.split(",") if m],
        default=[],
        metavar="MSISDN,...",
        help="tester handsets on the control channel (others are switched on at first use)",
    )
    smsc.add_argument(
        "--sim-keys", type=Path, default=None, metavar="FILE", help="SIM key file: its subscribers' cards"
    )
    smsc.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name testers open the control channel by (IP addresses and localhost always work)",
    )
    smsc.add_argument(
        "--pcap",
        type=Path,
        default=None,
        metavar="FILE",
        help="capture SMPP and the SIM cards' APDUs (GSMTAP)",
    )
    smsc.add_argument("--ussd-profile", default="standard", help="USSD over SMPP profile: standard, 6d, mica")
    smsc.add_argument(
        "--ussd-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="the network ends a USSD session silent for this long",
    )
    smsc.add_argument(
        "--mo-validity",
        type=_non_negative,
        default=3600.0,
        metavar="SECONDS",
        help="store an MO that arrives while no gateway is bound and forward it on the next bind, "
        "for up to this long (0: refuse it at once)",
    )
    smsc.add_argument(
        "--mo-store-limit", type=_positive_int, default=10_000, metavar="N", help="MO messages stored at most"
    )
    smsc.set_defaults(func=lambda a: asyncio.run(_run_smsc(a)))
    billing = sim_sub.add_parser("billing", help="billing / OCS simulator: credit scoring and activations")
    billing.add_argument(
        "--listen",
        type=parse_host_port,
        default=("127.0.0.1", 8090),
        metavar="HOST:PORT",
        help="where to serve the billing API (configs/gateway.yaml's billing.url points here)",
    )
    billing.add_argument(
        "--config",
        type=Path,
        default=Path("configs/simulators/billing.yaml"),
        metavar="FILE",
        help="scoring rules, credit fee, catalogue and injected faults",
    )
    billing.add_argument(
        "--subscribers", type=int, default=100, metavar="N", help="consecutive MSISDNs from --first-msisdn"
    )
    billing.add_argument("--first-msisdn", type=int, default=254_700_000_000)
    billing.add_argument(
        "--msisdn", action="append", default=[], metavar="MSISDN", help="one more subscriber (repeatable)"
    )
    billing.add_argument("--balance", type=_money_arg, default=Decimal(0), help="each subscriber's airtime")
    billing.add_argument("--tenure-days", type=int, default=400, help="days each subscriber has been with us")
    billing.add_argument(
        "--topup",
        type=_money_arg,
        default=Decimal(300),
        metavar="AMOUNT",
        help="one top-up a week ago (what credit scoring lends on; 0: none, so no credit)",
    )
    billing.add_argument("--no-faults", action="store_true", help="inject none of the config's faults")
    billing.set_defaults(func=lambda a: asyncio.run(_run_billing(a)))
    handset = sub.add_parser("handset", help="a handset on a running `tgw sim smsc --control ...`")
    handset_sub = handset.add_subparsers(dest="handset_command", required=True)
    dial = handset_sub.add_parser(
        "dial", help="dial a USSD code, answer each screen with the next REPLY and print every screen"
    )
    listen = handset_sub.add_parser(
        "listen", help="wait for a USSD session the gateway opens, answer it with the REPLYs, print it"
    )
    for command in (dial, listen):
        command.add_argument(
            "--timeout", type=float, default=30.0, metavar="SECONDS", help="the wait for each screen"
        )
    dial.add_argument("code", metavar="CODE", help="the USSD string, e.g. '*123#' or '*123*500#'")
    for command in (dial, listen):
        command.add_argument("replies", nargs="*", metavar="REPLY")
        command.set_defaults(func=lambda a: asyncio.run(_handset(a)))
    sms = handset_sub.add_parser("sms", help="print the handset's SMS inbox, or send an SMS (--to, --text)")
    inbox = handset_sub.add_parser("inbox", help="print the handset's SMS inbox (--wait: the next SMS)")
    stk = handset_sub.add_parser(
        "stk", help="show the open SIM toolkit dialog; --ok, --cancel, --item N or --input TEXT answers it"
    )
    sms.add_argument("--to", metavar="SHORTCODE", help="send an SMS to this short code")
    sms.add_argument("--text", help="the text to send")
    stk_answer = stk.add_mutually_exclusive_group()
    stk_answer.add_argument("--ok", action="store_true", help="press OK (Yes)")
    stk_answer.add_argument("--cancel", action="store_true", help="press Cancel (No, Back)")
    stk_answer.add_argument("--item", type=int, metavar="N", help="choose item N (its number as shown)")
    stk_answer.add_argument("--input", metavar="TEXT", help="type TEXT and press OK")
    for command in (dial, listen, sms, inbox, stk):
        command.add_argument(
            "--sim",
            type=parse_host_port,
            default=("127.0.0.1", 2776),
            metavar="HOST:PORT",
            help="the simulator's control channel (tgw sim smsc --control)",
        )
        command.add_argument("--msisdn", required=True)
    for command, waits_for in ((sms, "the next SMS"), (inbox, "the next SMS"), (stk, "a dialog")):
        command.add_argument(
            "--wait", type=float, default=0.0, metavar="SECONDS", help=f"wait this long for {waits_for}"
        )
        command.add_argument(
            "--timeout", type=float, default=30.0, metavar="SECONDS", help="the wait for the gateway's answer"
        )
        command.set_defaults(func=lambda a: asyncio.run(_handset(a)))
    network = sim_sub.add_parser(
        "network", help="PCEF/OCS/DPI: meter subscribers' data use and report it over Diameter, MQTT or HTTP"
    )
    network.add_argument("--subscribers", type=int, default=100)
    network.add_argument("--quota-mb", type=int, default=1024, help="package size")
    network.add_argument("--steps", type=int, default=10, help="metering steps until each package is used up")
    network.add_argument("--renew", action="store_true", help="renew every package at the end")
    network.add_argument("--seed", type=int, default=1)
    network.add_argument("--first-msisdn", type=int, default=254_700_000_000)
    network.add_argument(
        "--diameter", type=parse_host_port, metavar="HOST:PORT", help="the gateway's Diameter peer"
    )
    network.add_argument("--dialect", choices=[d.value for d in DiameterDialect], default="gy")
    network.add_argument("--origin-host", default="pcef.localdomain")
    network.add_argument("--realm", default="localdomain", help="Origin-Realm and Destination-Realm")
    network.add_argument("--destination-host", default="gw.localdomain")
    network.add_argument("--mqtt", type=parse_host_port, metavar="HOST:PORT", help="an MQTT broker")
    network.add_argument("--topic-prefix", default="usage")
    network.add_argument("--http", metavar="URL", help="the gateway's POST /v1/events URL")
    network.add_argument("--token", default=None, help="bearer token for --http")
    network.set_defaults(func=lambda a: asyncio.run(_network(a)))
    demo = sub.add_parser(
        "demo", help="SMSC simulator, handsets and gateway: SMS with receipts, SIM toolkit offers"
    )
    demo.add_argument("--burst", type=int, default=20_000, help="messages in the throughput burst")
    demo.set_defaults(func=lambda a: asyncio.run(run_demo(lambda line: print(line, flush=True), a.burst)))
    simulate = sub.add_parser(
        "simulate",
        help="the whole network around the gateway on a simulated clock; writes a KPI report",
    )
    simulate.add_argument("--scenario", type=Path, required=True, help="a scenario file (configs/scenarios)")
    simulate.add_argument("--out", type=Path, default=None, help="report directory (var/simulate/<name>)")
    simulate.add_argument("--subscribers", type=int, default=None, help="override the scenario's count")
    simulate.add_argument("--days", type=int, default=None, help="override the scenario's days")
    simulate.add_argument(
        "--billing",
        type=Path,
        default=Path("configs/simulators/billing.yaml"),
        help="the billing simulator's config: scoring rules, fee, injected faults",
    )
    simulate.add_argument("--real-time", action="store_true", help="run at wall-clock speed")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.add_argument("--no-pcap", action="store_true", help="do not write traffic.pcap")
    simulate.set_defaults(func=_simulate)
    return run(argv, parser)


def _simulate(args: argparse.Namespace) -> int:
    out = args.out or Path("var") / "simulate" / args.scenario.stem
    bar = None if args.quiet else ProgressBar(sys.stderr)
    result, files = simulate_command(
        args.scenario,
        out,
        real_time=args.real_time,
        subscribers=args.subscribers,
        days=args.days,
        billing=args.billing,
        pcap=not args.no_pcap,
        progress=None if bar is None else bar.update,
    )
    if bar is not None:
        bar.close()
    print(files.text.read_text(encoding="utf-8"))
    failed = [name for name, (passed, _) in result.checks.items() if not passed]
    print(
        f"{result.subscribers:,} subscribers, {result.simulated_days} simulated days in "
        f"{result.wall_seconds:.1f} s ({result.subscribers * result.simulated_days / result.wall_seconds:,.0f} "
        "subscriber-days/s)"
    )
    print(f"report: {files.html}")
    if result.pcap_packets:
        note = " (truncated at its size limit)" if result.pcap_truncated else ""
        print(f"traffic: {files.html.parent / 'traffic.pcap'}, {result.pcap_packets:,} packets{note}")
    if failed:
        print("FAILED consistency checks: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


class ProgressBar:
    """A one-line progress bar on a terminal (plain lines when it is not one)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._last = -1

    def update(self, fraction: float, status: str) -> None:
        filled = int(self.width * min(max(fraction, 0.0), 1.0))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} {status}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
        elif int(fraction * 10) != self._last:  # a log: one line per tenth
            self._last = int(fraction * 10)
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

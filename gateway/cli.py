"""The ``tgw`` command line: gateway commands.

``tgw ingest --config FILE`` runs the usage intake of the config's ``ingest:`` section (Diameter peer,
MQTT subscriber, HTTP intake, journal, trigger detection) and prints each trigger as a JSON line
until SIGINT or SIGTERM, which stop it gracefully (DPR to the Diameter peers, journal checkpoint).

``tgw send-sms`` binds to an SMSC, sends one text (GSM 7-bit or UCS-2 as the text needs, split into
parts when long), prints the message id of each part and, with ``--dlr``, waits for each part's
delivery receipt and prints its final state. Exit status: 0 success, 1 connection failure (also an
SMSC that stops answering, or goes away, while the text is submitted: the whole submission is bounded
by ``--timeout`` x (``submit_attempts`` + 1) per part), 2 bind refused, 3 submit rejected, 4 no
receipt in time, 5 the receipt reports a failure, 64 bad arguments (an address or text no submit_sm
can carry, told before connecting).

``tgw run --config FILE`` runs the whole gateway (``gateway.run``); a listen address that cannot be
taken (the port in use by another process) is one line ``tgw: cannot listen: ...`` and exit status 1,
after what had started (the SMPP bind, the stores) is stopped as on SIGTERM. ``tgw ingest`` does the
same.

``tgw validate DIR [--ussd-menus FILE] [--sim-keys FILE] [--reply-to ADDR]`` checks a directory of
campaign files (``gateway.campaigns``): the schema of each file, the rules across files, and the
channels (each offered package's USSD code routed to the purchase handler by the menus, default
``configs/ussd/menus.yaml``; each SMS within its parts; each DSTK dialog within one SMS). It prints
``DIR: N campaigns, M experiments OK`` and exits 0, or prints every mistake as ``file:line: reason``
on stderr and exits 1.

``tgw explain MSISDN --store FILE`` prints a subscriber's decision trail from the campaign store;
``tgw replay EVENTS.jsonl --campaigns DIR`` runs a recorded event log through a campaign directory and
prints the decisions and KPIs without contacting anyone (``gateway.campaigns.cli``).

The simulator commands (``tgw sim ...``, ``tgw demo``) are added by ``simulators.cli``, which owns
the console script, because the gateway package must not import the simulators.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from campaign_core.usage import Trigger
from gateway.campaigns import DEFAULT_REPLY_TO, DEFAULT_USSD_MENUS, CampaignDirError, load_campaign_dir
from gateway.campaigns.cli import register as register_campaign_commands
from gateway.config import LoadedConfig, load_gateway_config
from gateway.ingest.config import load_ingest_config
from gateway.ingest.service import IngestService
from gateway.logs import configure_logging
from gateway.run import GatewayService
from gateway.runtime import HugeHeap, settle_heap, use_huge_pages
from gateway.smpp.client import BindError, ClientConfig, SmppClient, SubmitError
from protocols.errors import ConfigError, GatewayError, LocalProtocolError, TransportError
from protocols.gsm.split import build_submits
from protocols.smpp.pdu import encode_pdu

__all__ = ["build_parser", "main", "parse_host_port", "run"]

Command = Callable[[argparse.Namespace], int]

log = logging.getLogger(__name__)

# what asyncio's create_server (the aiohttp sites, the Diameter server) raises for an address it
# cannot bind: the text names the address
_LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL})


def start_error(exc: OSError) -> str:
    """One line for an ``OSError`` raised while starting listeners and connections."""
    text = exc.strerror or str(exc)
    if exc.errno in _LISTEN_ERRNOS or text.startswith("error while attempting to bind"):
        return f"cannot listen: {text}"
    return f"cannot start: {exc}"


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host, int(port)


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="tgw", description="Telecom campaign gateway")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    send = sub.add_parser("send-sms", help="submit one SMS over SMPP and print its message id")
    send.add_argument("--smsc", required=True, type=parse_host_port, metavar="HOST:PORT")
    send.add_argument("--system-id", required=True)
    send.add_argument("--password", required=True)
    send.add_argument("--system-type", default="")
    send.add_argument("--from", dest="source", required=True, metavar="ADDR")
    send.add_argument("--to", dest="destination", required=True, metavar="ADDR")
    send.add_argument("--text", required=True)
    send.add_argument(
        "--dlr", action="store_true", help="wait for the delivery receipts and print their states"
    )
    send.add_argument(
        "--split",
        choices=("udh", "sar", "payload"),
        default="udh",
        help="how a long text travels: concatenation UDH, SAR TLVs, or one message_payload",
    )
    send.add_argument("--dlr-timeout", type=float, default=60.0, metavar="SECONDS")
    send.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="connect and bind timeout"
    )
    send.set_defaults(func=_send_sms)

    ingest = sub.add_parser(
        "ingest", help="take usage notifications (Diameter, MQTT, HTTP) and print the triggers as JSON lines"
    )
    ingest.add_argument("--config", required=True, metavar="FILE", help="YAML with an `ingest:` section")
    ingest.set_defaults(func=_ingest)

    validate = sub.add_parser(
        "validate", help="check a directory of campaign files (file:line: reason for each mistake)"
    )
    validate.add_argument("directory", metavar="DIR", help="e.g. configs/campaigns")
    validate.add_argument(
        "--ussd-menus",
        default=str(DEFAULT_USSD_MENUS),
        metavar="FILE",
        help=f"the USSD menus that must route each offered package's code (default {DEFAULT_USSD_MENUS})",
    )
    validate.add_argument(
        "--sim-keys",
        default=None,
        metavar="FILE",
        help="size DSTK dialogs for each card of this SIM key file (default: the strongest default "
        "security level, AES, on every kind of handset)",
    )
    validate.add_argument(
        "--reply-to",
        default=DEFAULT_REPLY_TO,
        metavar="ADDR",
        help=f"the short code carried in every DSTK offer (default {DEFAULT_REPLY_TO})",
    )
    validate.set_defaults(func=_validate)
    register_campaign_commands(sub)  # explain, replay

    run_cmd = sub.add_parser(
        "run", help="run the gateway against the network elements of a config file (SIGHUP reloads)"
    )
    run_cmd.add_argument("--config", required=True, metavar="FILE", help="e.g. configs/gateway.yaml")
    run_cmd.add_argument("--pcap", default=None, metavar="FILE", help="capture every TCP exchange here")
    run_cmd.add_argument(
        "--check", action="store_true", help="validate the config and every file it names, then exit"
    )
    run_cmd.set_defaults(func=_run_gateway)
    return parser, sub


def _run_gateway(args: argparse.Namespace) -> int:
    loaded = load_gateway_config(args.config)  # file, line, reason: before anything starts
    if args.check:
        print(f"{args.config}: OK ({len(loaded.campaigns.campaigns)} campaigns)")
        return 0
    root = logging.getLogger()
    for handler in list(root.handlers):  # the config's format replaces the command line's default
        root.removeHandler(handler)
    configure_logging(loaded.config.logging.format, loaded.config.logging.level)
    _log_heap(use_huge_pages())  # before recovery builds the engine's state
    return asyncio.run(_serve(loaded, None if args.pcap is None else Path(args.pcap)))


def _log_heap(heap: HugeHeap) -> None:
    log = logging.getLogger("tgw.runtime")
    if heap.installed:
        log.info(
            "object heap on transparent huge pages: %d MiB reserved (kernel mode %s)",
            heap.reserved >> 20,
            heap.mode,
        )
    else:
        log.info("object heap on the default pages: %s", heap.reason)


async def _serve(loaded: LoadedConfig, pcap: Path | None) -> int:
    service = GatewayService(loaded, pcap=pcap)
    service.install_signals()
    try:
        await service.start()
    except Exception as exc:
        # what did start (the SMPP bind, the stores, the first listeners) stops as on SIGTERM, so the
        # SMSC sees an unbind and the stores are closed cleanly
        try:
            await service.stop()
        except Exception:
            log.exception("stopping after a failed start")
        if isinstance(exc, OSError):
            print(f"tgw: {start_error(exc)}", file=sys.stderr)
            return 1
        raise
    steward = asyncio.create_task(settle_heap().watch(), name="heap steward")
    logging.getLogger("tgw").info("gateway running: %s", loaded.path)
    try:
        await service.wait_stopped()
    finally:
        steward.cancel()
        await service.stop()
    return 0


async def _ingest_async(args: argparse.Namespace) -> int:
    config = load_ingest_config(args.config)  # every mistake reported before anything starts

    def emit(trigger: Trigger) -> None:
        print(json.dumps(asdict(trigger), separators=(",", ":")), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: exit at once, the journal replays what is unfinished
            print("tgw ingest: second signal, exiting now", file=sys.stderr, flush=True)
            os._exit(1)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    service = IngestService(config, emit)
    try:
        await service.start()  # stops what it started when it fails
    except OSError as exc:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        print(f"tgw: {start_error(exc)}", file=sys.stderr)
        return 1
    # after recovery: the recovered detector state is frozen out of every collection
    steward = asyncio.create_task(settle_heap().watch(), name="heap steward")
    addresses = []
    if service.diameter_address is not None:
        addresses.append(f"diameter={service.diameter_address[0]}:{service.diameter_address[1]}")
    if service.http is not None:
        addresses.append(f"http={service.http.url}")
    if service.mqtt is not None:
        addresses.append(f"mqtt={service.mqtt.host}:{service.mqtt.port}")
    print(f"tgw ingest: ready {' '.join(addresses)}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        steward.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await service.stop()
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        campaigns = load_campaign_dir(
            args.directory, ussd_menus=args.ussd_menus, sim_keys=args.sim_keys, reply_to=args.reply_to
        )
    except CampaignDirError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    print(
        f"{args.directory}: {len(campaigns.campaigns)} campaigns, {len(campaigns.experiments)} experiments OK"
    )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    _log_heap(use_huge_pages())  # before recovery builds the detector's state
    return asyncio.run(_ingest_async(args))


def _address_ton_npi(addr: str) -> tuple[int, int]:
    if addr.isdigit() and len(addr) > 8:
        return 1, 1  # international, E.164
    if addr.isdigit():
        return 0, 1
    return 5, 0  # alphanumeric sender


def _argument_error(exc: LocalProtocolError) -> str:
    """``exc`` (from building a submit_sm) said in terms of the command line's options."""
    text = str(exc)
    for field, option in (("source_addr", "--from"), ("destination_addr", "--to")):
        if text.startswith(field):
            return f"{option}: {text}"
    return f"--text: {text}"


def _connect_error(host: str, port: int, exc: BaseException) -> str:
    # the client's own TransportError already names the address; OSError and a timeout do not
    text = str(exc) or "timed out"
    return text if text.startswith("cannot connect") else f"cannot connect to {host}:{port}: {text}"


async def _send_sms_async(args: argparse.Namespace) -> int:
    host, port = args.smsc
    src_ton, src_npi = _address_ton_npi(args.source)
    dst_ton, dst_npi = _address_ton_npi(args.destination)
    submit_fields: dict[str, Any] = {
        "registered_delivery": 1 if args.dlr else 0,
        "source_addr_ton": src_ton,
        "source_addr_npi": src_npi,
        "dest_addr_ton": dst_ton,
        "dest_addr_npi": dst_npi,
    }
    try:
        # every part built and encoded before connecting: an address or a text that no submit_sm can
        # carry is a mistake in the arguments, not a connection failure (the client would find it only
        # when sending, after the bind). The reference is the client's to choose; any one checks the size
        submits = build_submits(
            args.text, args.source, args.destination, method=args.split, reference=0, **submit_fields
        )
        for pdu in submits:
            encode_pdu(pdu, 1)
    except LocalProtocolError as exc:
        print(f"tgw: {_argument_error(exc)}", file=sys.stderr)
        return 64  # EX_USAGE
    parts = len(submits)
    config = ClientConfig(
        host,
        port,
        args.system_id,
        args.password,
        system_type=args.system_type,
        window=10,
        connect_timeout=args.timeout,
        response_timeout=args.timeout,
    )
    client = SmppClient(config)
    try:
        await asyncio.wait_for(client.start(), args.timeout)
    except BindError as exc:
        print(f"tgw: {exc}", file=sys.stderr)
        return 2
    except (TransportError, OSError, TimeoutError) as exc:
        print(f"tgw: {_connect_error(host, port, exc)}", file=sys.stderr)
        return 1
    # The client retries a part until the SMSC answers it: response timeouts up to submit_attempts
    # times, a lost connection by reconnecting for as long as it takes. A command must end, so the
    # whole submission gets that many response timeouts per part, and one more for a reconnect
    bound = config.response_timeout * (config.submit_attempts + 1) * parts
    try:
        try:
            # the coding (GSM 7-bit or UCS-2) and the split into parts follow the text
            results = await asyncio.wait_for(
                client.send_text(
                    args.source, args.destination, args.text, method=args.split, **submit_fields
                ),
                bound,
            )
        except SubmitError as exc:
            print(f"tgw: {exc}", file=sys.stderr)
            return 3
        except TimeoutError:
            print(f"tgw: no answer from the SMSC at {host}:{port} within {bound:g} s", file=sys.stderr)
            return 1
        for result in results:
            print(result.message_id)
        if not args.dlr:
            return 0
        worst = 0
        for result in results:  # one receipt per part
            try:
                receipt = await client.wait_receipt(result.message_id, args.dlr_timeout)
            except TimeoutError:
                print(
                    f"tgw: no delivery receipt for {result.message_id} within {args.dlr_timeout:g} s",
                    file=sys.stderr,
                )
                return 4
            print(receipt.stat)
            if receipt.stat != "DELIVRD":
                worst = 5
        return worst
    finally:
        await client.close(drain_timeout=2.0)


def _send_sms(args: argparse.Namespace) -> int:
    return asyncio.run(_send_sms_async(args))


def run(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> int:
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func: Command = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"tgw: {exc}", file=sys.stderr)
        return 64  # EX_USAGE
    except GatewayError as exc:
        print(f"tgw: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Gateway-only entry point (the ``tgw`` script adds the simulators, see simulators.cli)."""
    parser, _ = build_parser()
    return run(argv, parser)

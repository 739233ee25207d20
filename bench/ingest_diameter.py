"""Diameter ingest benchmark: Gy CCR-U -> CCA per second through the gateway's Diameter server on one
core, from the wire into trigger decisions, against python-diameter's ``Node`` under the same load.

How to run (from the repository root)::

    .venv/bin/python bench/ingest_diameter.py            # full run, about 4 minutes
    .venv/bin/python bench/ingest_diameter.py --quick    # smoke run, about 15 s
    .venv/bin/python bench/ingest_diameter.py --json     # one JSON document instead of the table

    options: --runs R (5; quick 3)  --count N (CCRs per run: 30000; quick 6000)  --window W (200)
             --pd-count N (python-diameter's CCRs per run: 6000; quick 1500)
             --no-python-diameter  --no-uvloop  --no-client-row  --profile PREFIX (cProfile our servers)
             --baseline DIR (also run the server of another checkout, e.g. the commit before a change:
                             mkdir DIR && git archive HEAD | tar -x -C DIR; rows and ratios "baseline")

Servers, each a fresh process per run, pinned to one core with ``os.sched_setaffinity``:

* ``ours``: ``gateway.ingest.diameter.DiameterServer`` (the RFC 6733 peer engine,
  ``credit_control.parse_request``, the usage-event mapping, the CCA only after ``sink.take``), on the
  default asyncio loop (and, one extra row, on uvloop when it is installed), with one of three sinks:

  - ``pipeline``: the real ingest path, ``gateway.ingest.pipeline.IngestPipeline`` over an
    ``IngestJournal`` (SQLite in a temporary directory, group commit, synchronous=NORMAL) and
    ``campaign_core.triggers.TriggerDetector``: a CCA goes out only once its event is journaled and
    went through trigger detection. The headline: usage events per second from the wire into trigger
    decisions on one core. (Without gateway/ingest/pipeline.py the ``detector`` sink stands in, and
    the output says so.)
  - ``detector``: ``TriggerDetector.handle`` on each event, no journal: the same work the
    python-diameter server below does, so the like-for-like comparison;
  - ``null``: takes the events and does nothing (the server alone).

* ``python-diameter``: python-diameter's ``Node`` (threads and ``select``) with an ``Application``
  that answers in the node's thread (its fastest mode: ``ThreadingApplication`` starts a thread per
  request). The handler reads the same fields from its typed ``CreditControlRequest``, builds the
  same ``UsageEvent``, runs ``TriggerDetector.handle`` and answers the same CCA (Result-Code 2001,
  CC-Request-Type/-Number, MSCC {Granted-Service-Unit, Rating-Group, Result-Code}).

Load, from this process pinned to the other core: one TCP connection, CER/CEA, then Gy CCR-U
(RFC 4006 section 3.1) pipelined with ``--window`` requests outstanding, sent from pre-encoded bytes
over a raw non-blocking socket so that the client costs little. The realistic CCR-U (600 octets):
Session-Id, Origin-Host/-Realm, Destination-Realm, Auth-Application-Id 4, Service-Context-Id,
CC-Request-Type UPDATE, CC-Request-Number, Event-Timestamp, Subscription-Id E.164 and IMSI,
Multiple-Services-Credit-Control {Requested-Service-Unit, Used-Service-Unit {CC-Time,
CC-Total/-Input/-Output-Octets, Reporting-Reason}, Rating-Group}, User-Equipment-Info,
Service-Information {PS-Information {3GPP-Charging-Id, Called-Station-Id}}. The ``peers shape`` row
sends the smaller CCR-U that PEERS.md 3.3's baseline was measured with (Session-Id, Origin-Host/-Realm,
Destination-Realm, Auth-Application-Id, Service-Context-Id, CC-Request-Type/-Number, Subscription-Id,
MSCC {Used-Service-Unit {CC-Total-Octets, Reporting-Reason}, Rating-Group}).

Subscribers: ``count / 5`` distinct MSISDNs, five reports each, interleaved (subscriber ``i % S``,
report ``i // S``) with Reporting-Reason QHT, VALIDITY_TIME, QHT (usage), THRESHOLD (the 90 % trigger),
QUOTA_EXHAUSTED (the exhaustion trigger). 1,000 CCRs from other subscribers warm the server up first.
The clock runs from the first CCR sent to the last CCA read; afterwards, outside the timed span, every
answer is checked: one per request (by Hop-by-Hop id), command 272, E bit clear, Result-Code 2001.

The ``our DiameterClient`` row sends the same traffic with ``gateway.ingest.diameter.DiameterClient``
(``--window`` tasks awaiting ``request()``), to show what our own client costs.

Reported per row: the median CCR/s of ``--runs`` runs (rows interleaved run by run), the server's CPU
time over the timed span per second of wall time (about 100 % when the server's core is the
bottleneck) and per CCR, and the ratios ours / python-diameter measured in the same run. The PEERS.md
3.3 baseline (a ~150-line asyncio server, 13.6k CCR/s median, freeDiameter as the client) was measured
another day on another load: it is quoted for the ``peers shape`` row, not re-measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import platform
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _code_root(argv: list[str]) -> Path:
    """Where the code under test comes from: this checkout, or ``--code-root DIR`` (a server process
    started for a ``--baseline`` row), read before the imports below."""
    if "--code-root" in argv[:-1]:
        return Path(argv[argv.index("--code-root") + 1]).resolve()
    return ROOT


sys.path.insert(0, str(_code_root(sys.argv)))

from campaign_core.triggers import TriggerDetector  # noqa: E402
from campaign_core.usage import UsageEvent, UsageKind  # noqa: E402
from protocols.diameter import codec  # noqa: E402
from protocols.diameter.codec import Avp, Message  # noqa: E402
from protocols.diameter.credit_control import (  # noqa: E402
    CcRequestType,
    CreditControlRequest,
    MultipleServicesCreditControl,
    RequestedServiceUnit,
    SubscriptionId,
    SubscriptionIdType,
    UsedServiceUnit,
    build_gy_ccr,
    parse_request,
    result_code,
)
from protocols.diameter.dictionary import VENDOR_3GPP, avp  # noqa: E402

GW_HOST = "gw.bench.localdomain"
LOADGEN_HOST = "loadgen.bench.localdomain"
REALM = "bench.localdomain"
PGW = "pgw1.epc.mnc001.mcc001.3gppnetwork.org"
RATING_GROUP = 100
GRANT_OCTETS = 1 << 30
REPORTS_PER_SUBSCRIBER = 5
# Reporting-Reason (TS 32.299 7.2.175) of a subscriber's reports: QHT, VALIDITY_TIME, QHT, THRESHOLD, EXHAUSTED
REASONS = (1, 4, 1, 0, 3)
WARMUP = 1000
WARMUP_BASE = 9_000_000  # subscriber numbers of the warm-up traffic (disjoint from the timed ones)
PEERS_BASELINE = 13_600  # PEERS.md 3.3: a ~150-line asyncio server, median CCR/s (another day)
PYTHON = sys.executable

# placeholders in the template, patched per CCR (unique byte strings, same lengths)
_SESSION = "S" * 10
_MSISDN = "M" * 11
_IMSI = "I" * 15
_NUMBER = 0xA1B2C3D4
_TIME = 0x0CD1E2F3
_TOTAL = 0x7A6B5C4D3E2F1A0B
_INPUT = 0x1B2C3D4E5F6A7B8C
_OUTPUT = 0x0E1F2A3B4C5D6E7F
_REASON = 0x05EA5015


# --- traffic -------------------------------------------------------------------------------------------


class Traffic:
    """Gy CCR-U octets: one template built with our builder, the per-message fields patched in place.

    Patching keeps every length, so Message Length and AVP Lengths stay right; ``check`` decodes a
    sample with our parser and python-diameter's to prove the fields read back.
    """

    def __init__(self, subscribers: int, shape: str = "realistic") -> None:
        self.subscribers = subscribers
        self.shape = shape
        realistic = shape == "realistic"
        usu = UsedServiceUnit(
            cc_time=_TIME if realistic else None,
            cc_total_octets=_TOTAL,
            cc_input_octets=_INPUT if realistic else None,
            cc_output_octets=_OUTPUT if realistic else None,
            reporting_reason=_REASON,  # type: ignore[arg-type]  # a placeholder, patched per CCR
        )
        ids = [
            SubscriptionId(
                subscription_id_type=SubscriptionIdType.END_USER_E164, subscription_id_data=_MSISDN
            )
        ]
        if realistic:
            ids.append(
                SubscriptionId(
                    subscription_id_type=SubscriptionIdType.END_USER_IMSI, subscription_id_data=_IMSI
                )
            )
        message = build_gy_ccr(
            session_id=f"{PGW};1717000000;{_SESSION};gy",
            origin_host=PGW,
            origin_realm="epc.mnc001.mcc001.3gppnetwork.org",
            destination_realm=REALM,
            cc_request_type=CcRequestType.UPDATE_REQUEST,
            cc_request_number=_NUMBER,
            event_timestamp=datetime(2026, 1, 1, tzinfo=UTC) if realistic else None,
            subscription_id=ids,
            multiple_services_credit_control=[
                MultipleServicesCreditControl(
                    rating_group=RATING_GROUP,
                    requested_service_unit=RequestedServiceUnit() if realistic else None,
                    used_service_unit=(usu,),
                )
            ],
        )
        extra: tuple[Avp, ...] = ()
        if realistic:
            ps_information = Avp(  # PS-Information (TS 32.299 7.2.158): 3GPP-Charging-Id, Called-Station-Id
                874,
                0xC0,
                VENDOR_3GPP,
                codec.encode_avps(
                    (
                        Avp(2, 0xC0, VENDOR_3GPP, b"\x00\x01\xe2\x40"),
                        Avp(30, 0x40, None, b"internet.mnc001.mcc001.gprs"),
                    )
                ),
            )
            extra = (
                avp(
                    "User-Equipment-Info",
                    [
                        avp("User-Equipment-Info-Type", 0),
                        avp("User-Equipment-Info-Value", b"3569870412345601"),
                    ],
                ),
                avp("Service-Information", [ps_information]),
            )
        self.template = codec.encode(
            Message(
                command_flags=message.command_flags,
                command_code=message.command_code,
                application_id=message.application_id,
                hop_by_hop=0,
                end_to_end=0,
                avps=message.avps + extra,
            )
        )
        t = self.template
        self.at = {
            "session": _offset(t, _SESSION.encode()),
            "msisdn": _offset(t, _MSISDN.encode()),
            "number": _offset(t, struct.pack(">I", _NUMBER)),
            "total": _offset(t, struct.pack(">Q", _TOTAL)),
            "reason": _offset(t, struct.pack(">I", _REASON)),
        }
        if realistic:
            self.at["imsi"] = _offset(t, _IMSI.encode())
            self.at["time"] = _offset(t, struct.pack(">I", _TIME))
            self.at["input"] = _offset(t, struct.pack(">Q", _INPUT))
            self.at["output"] = _offset(t, struct.pack(">Q", _OUTPUT))

    def subscriber_of(self, index: int, base: int = 0) -> tuple[int, int]:
        """(subscriber number, report number) of CCR ``index``."""
        return base + index % self.subscribers, index // self.subscribers

    def ccr(self, index: int, hop_by_hop: int, base: int = 0) -> bytes:
        sub, report = self.subscriber_of(index, base)
        at = self.at
        m = bytearray(self.template)
        struct.pack_into(">II", m, 12, hop_by_hop & 0xFFFFFFFF, (0x5A000000 + index) & 0xFFFFFFFF)
        m[at["session"] : at["session"] + 10] = b"%010d" % sub
        m[at["msisdn"] : at["msisdn"] + 11] = b"3161%07d" % (sub % 10_000_000)
        struct.pack_into(">I", m, at["number"], report + 1)
        used = 250_000_000 * (report + 1)
        struct.pack_into(">Q", m, at["total"], used)
        struct.pack_into(">I", m, at["reason"], REASONS[report % REPORTS_PER_SUBSCRIBER])
        if "imsi" in at:
            m[at["imsi"] : at["imsi"] + 15] = b"00101%010d" % sub
            struct.pack_into(">I", m, at["time"], 60 * (report + 1))
            struct.pack_into(">Q", m, at["input"], used // 10)
            struct.pack_into(">Q", m, at["output"], used - used // 10)
        return bytes(m)

    def blob(self, count: int, base: int = 0, first_hop: int = 1) -> tuple[bytes, list[int]]:
        """``count`` CCRs back to back (Hop-by-Hop ids from ``first_hop``) and where each starts."""
        parts = [self.ccr(i, first_hop + i, base) for i in range(count)]
        offsets = [0]
        for part in parts:
            offsets.append(offsets[-1] + len(part))
        return b"".join(parts), offsets

    def check(self) -> None:
        """Decode a few CCRs with our parser and python-diameter's: the patched fields read back."""
        for index in (0, 1, self.subscribers * 3 + 7, self.subscribers * 4 + 2):
            sub, report = self.subscriber_of(index)
            wire = self.ccr(index, 77 + index)
            request = parse_request(codec.decode(wire))
            assert isinstance(request, CreditControlRequest)
            usu = request.multiple_services_credit_control[0].used_service_unit[0]
            fields = (request.msisdn, request.cc_request_number, usu.cc_total_octets, usu.reporting_reason)
            expected = (f"3161{sub:07d}", report + 1, 250_000_000 * (report + 1), REASONS[report % 5])
            assert fields == expected, (fields, expected)
            if pd_version() is not None:
                from diameter.message import Message as PdMessage

                theirs = PdMessage.from_bytes(wire)
                their_usu = theirs.multiple_services_credit_control[0].used_service_unit[0]
                their_fields = (
                    theirs.subscription_id[0].subscription_id_data,
                    theirs.cc_request_number,
                    their_usu.cc_total_octets,
                    their_usu.reporting_reason,
                )
                assert their_fields == expected, (their_fields, expected)


def _offset(data: bytes, needle: bytes) -> int:
    at = data.find(needle)
    if at < 0 or data.find(needle, at + 1) >= 0:  # overlapping occurrences count too
        raise RuntimeError(f"placeholder {needle!r} is not unique in the template")
    return at


def cer() -> bytes:
    return codec.encode(
        Message(
            command_flags=0x80,
            command_code=257,
            application_id=0,
            hop_by_hop=0x7E570001,
            end_to_end=0x7E570001,
            avps=(
                avp("Origin-Host", LOADGEN_HOST),
                avp("Origin-Realm", REALM),
                avp("Host-IP-Address", ipaddress.IPv4Address("127.0.0.1")),
                avp("Vendor-Id", 0),
                avp("Product-Name", "bench-loadgen"),
                avp("Origin-State-Id", 1),
                avp("Supported-Vendor-Id", VENDOR_3GPP),
                avp("Auth-Application-Id", 4),
            ),
        )
    )


def pd_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("python-diameter")
    except PackageNotFoundError:
        return None


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


# --- the server processes ------------------------------------------------------------------------------


class NullSink:
    async def take(self, events: Sequence[UsageEvent]) -> None:
        return None


class DetectorSink:
    """Trigger detection on each event as it is taken, no journal."""

    def __init__(self) -> None:
        self.detector = TriggerDetector()
        self.triggers = 0

    async def take(self, events: Sequence[UsageEvent]) -> None:
        handle = self.detector.handle
        now = time.time()
        for event in events:
            self.triggers += len(handle(event, now))


async def serve_ours(sink_kind: str, workdir: str) -> None:
    from gateway.ingest.diameter import DiameterServer, DiameterSettings

    triggers = Counter[str]()
    pipeline: Any = None
    journal: Any = None
    sink: Any
    if sink_kind == "pipeline":
        from gateway.ingest.journal import IngestJournal
        from gateway.ingest.pipeline import IngestPipeline

        journal = IngestJournal(Path(workdir) / "journal.sqlite")
        await journal.open()
        pipeline = IngestPipeline(
            journal, TriggerDetector(), lambda t: triggers.update((t.kind.value,)), clock=time.time
        )
        await pipeline.recover()
        sink = pipeline
    elif sink_kind == "detector":
        sink = DetectorSink()
    else:
        sink = NullSink()
    settings = DiameterSettings(
        origin_host=GW_HOST,
        origin_realm=REALM,
        port=0,
        allowed_peers=(("*", "*"),),
        origin_state_id=1,
        gy_grant_octets=GRANT_OCTETS,
        watchdog_interval=300.0,
    )
    server = DiameterServer(settings, sink)
    _host, port = await server.start()
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "cpu":
        print(json.dumps({"cpu": time.process_time()}), flush=True)
    stats: dict[str, Any] = {"answers": {f"{c}/{s}": n for (c, s), n in server.answers.items()}}
    await server.stop()
    if pipeline is not None:
        await pipeline.drain()
        counters = pipeline.counters
        stats.update(events=counters.events_taken, journal_commits=counters.journal_commits)
        stats["triggers"] = dict(triggers)
        await pipeline.close()
        await journal.close()
    elif isinstance(sink, DetectorSink):
        stats["triggers"] = sink.triggers
    print(json.dumps(stats), flush=True)


def serve_python_diameter(port: int) -> None:
    import logging

    from diameter.message.avp.grouped import GrantedServiceUnit as PdGsu
    from diameter.message.avp.grouped import MultipleServicesCreditControl as PdMscc
    from diameter.node import Node
    from diameter.node.application import Application

    logging.getLogger("diameter").setLevel(logging.CRITICAL)
    detector = TriggerDetector()
    counts = Counter[str]()

    class Gy(Application):  # type: ignore[misc]
        """The same work as our server with the detector sink: typed fields -> UsageEvent -> trigger
        detection -> CCA (the mapping of gateway.ingest.diameter for these reports)."""

        def handle_request(self, message: Any) -> None:
            now = time.time()
            msisdn = next(
                (s.subscription_id_data for s in message.subscription_id if s.subscription_id_type == 0), None
            )
            services = []
            for index, mscc in enumerate(message.multiple_services_credit_control):
                units = mscc.used_service_unit
                reasons = [
                    u.reporting_reason for u in units if getattr(u, "reporting_reason", None) is not None
                ]
                used = sum(
                    u.cc_total_octets for u in units if getattr(u, "cc_total_octets", None) is not None
                )
                kind, percent = UsageKind.USAGE, None
                if 3 in reasons:
                    kind = UsageKind.EXHAUSTED
                elif 0 in reasons:
                    kind, percent = UsageKind.THRESHOLD, 90.0
                if msisdn is not None:
                    stamp = getattr(message, "event_timestamp", None)
                    event = UsageEvent(
                        event_id=f"{message.session_id};{message.cc_request_number};{index}",
                        msisdn=msisdn,
                        kind=kind,
                        package_id=f"rg:{mscc.rating_group}",
                        event_time=now if stamp is None else stamp.timestamp(),
                        source="diameter:gy",
                        sequence=message.cc_request_number,
                        used_bytes=used,
                        percent=percent,
                    )
                    counts["triggers"] += len(detector.handle(event, now))
                services.append(
                    PdMscc(
                        granted_service_unit=PdGsu(cc_total_octets=GRANT_OCTETS),
                        rating_group=mscc.rating_group,
                        result_code=2001,
                    )
                )
            answer = self.generate_answer(message, 2001)
            answer.cc_request_type = message.cc_request_type
            answer.cc_request_number = message.cc_request_number
            answer.multiple_services_credit_control = services
            counts["answers"] += 1
            self.send_answer(answer)

    node = Node(GW_HOST, REALM, ip_addresses=["127.0.0.1"], tcp_port=port, vendor_ids=[VENDOR_3GPP])
    node.idle_timeout = 300
    peer = node.add_peer(f"aaa://{LOADGEN_HOST}", REALM)
    node.add_application(Gy(4, is_auth_application=True), [peer])
    node.start()
    print(f"READY {port}", flush=True)
    for line in sys.stdin:
        if line.strip() != "cpu":
            break
        print(json.dumps({"cpu": time.process_time()}), flush=True)
    print(json.dumps({"answers": counts["answers"], "triggers": counts["triggers"]}), flush=True)
    os._exit(0)  # Node.stop() waits out its threads' multi-second poll timeouts; nothing is left to do


def server_main(args: argparse.Namespace) -> int:
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})  # before any thread starts: they all inherit it
    if args.serve == "python-diameter":
        serve_python_diameter(_free_port())
        return 0
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
        if args.profile:
            import cProfile

            cProfile.runctx("asyncio.run(serve_ours(args.sink, workdir))", globals(), locals(), args.profile)
        else:
            asyncio.run(serve_ours(args.sink, workdir))
    return 0


def _free_port() -> int:
    """A port free on 127.0.0.1 now (python-diameter's Node cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """A server in its own process; a line protocol on stdin/stdout: READY <port>, cpu, stop."""

    def __init__(self, row: Row, core: int | None, profile: str | None) -> None:
        cmd = [PYTHON, str(Path(__file__).resolve()), "--serve", row.server, "--sink", row.sink]
        cmd += ["--loop", row.loop]
        if row.code_root:
            cmd += ["--code-root", row.code_root]
        if core is not None:
            cmd += ["--core", str(core)]
        if profile:
            cmd += ["--profile", profile]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._line()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"{row.server} server did not start: {line!r}")
        self.port = int(line.split()[1])

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def cpu(self) -> float:
        """The server process's CPU seconds so far (all its threads)."""
        self._send("cpu")
        return float(json.loads(self._line())["cpu"])

    def stop(self) -> dict[str, Any]:
        try:
            self._send("stop")
            line = self._line()
            stats: dict[str, Any] = json.loads(line) if line.startswith("{") else {"error": line}
        except (OSError, ValueError) as exc:
            stats = {"error": str(exc)}
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return stats


# --- load: pre-encoded CCRs over a raw socket ----------------------------------------------------------


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < int.from_bytes(data[1:4], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed during the capabilities exchange")
        data += chunk
    return data[: int.from_bytes(data[1:4], "big")]


class RawLoad:
    """One connection: CER/CEA and the warm-up when made, then ``timed``."""

    def __init__(self, port: int, warmup: tuple[bytes, list[int]], window: int) -> None:
        self.window = window
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(cer())
        cea = codec.decode(_read_frame(self.sock))
        if result_code(cea) != 2001:
            raise RuntimeError(f"CEA Result-Code {result_code(cea)}")
        self.sock.setblocking(False)
        _pipelined(self.sock, *warmup, window)

    def timed(self, blob: bytes, offsets: list[int]) -> tuple[float, bytes]:
        """Seconds from the first CCR sent to the last CCA read, and the answers' octets."""
        t0 = time.perf_counter()
        answers = _pipelined(self.sock, blob, offsets, self.window)
        return time.perf_counter() - t0, answers

    def close(self) -> None:
        self.sock.close()


def _pipelined(sock: socket.socket, blob: bytes, offsets: list[int], window: int) -> bytes:
    """Send the CCRs of ``blob`` keeping ``window`` unanswered, until every one is answered."""
    count = len(offsets) - 1
    out = memoryview(blob)
    sent = 0  # octets sent
    allowed = offsets[min(window, count)]  # octets we may have sent: ``window`` CCRs beyond the answers
    received = bytearray()
    pos = 0
    answered = 0
    while answered < count:
        readable, writable, _ = select.select([sock], [sock] if sent < allowed else [], [], 30)
        if not readable and not writable:
            raise RuntimeError(f"no progress for 30 s ({answered} of {count} answered)")
        if writable:
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(out[sent:allowed])
        if readable:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError(f"the server closed the connection ({answered} of {count} answered)")
            received += data
            end = len(received)
            while pos + 4 <= end:
                length = int.from_bytes(received[pos + 1 : pos + 4], "big")
                if length < 20 or pos + length > end:
                    break
                pos += length
                answered += 1
            allowed = offsets[min(count, answered + window)]
    return bytes(received)


def check_answers(answers: bytes, count: int, first_hop: int) -> str | None:
    """None when there is one CCA with Result-Code 2001 per request, else what is wrong."""
    seen: set[int] = set()
    statuses = Counter[int | None]()
    pos = 0
    while pos < len(answers):
        length = int.from_bytes(answers[pos + 1 : pos + 4], "big")
        message = codec.decode(answers[pos : pos + length])
        pos += length
        if message.command_code != 272 or message.is_request or message.is_error:
            return f"unexpected answer: command {message.command_code}, flags {message.command_flags:#x}"
        seen.add(message.hop_by_hop)
        statuses[result_code(message)] += 1
    if seen != set(range(first_hop, first_hop + count)):
        return f"{len(seen)} distinct answered Hop-by-Hop ids for {count} requests"
    if statuses != Counter({2001: count}):
        return f"Result-Codes {dict(statuses)}"
    return None


# --- load: our DiameterClient --------------------------------------------------------------------------


async def client_session(
    port: int, warmup: list[Message], timed: list[Message], window: int, server: ServerProcess
) -> tuple[float, float, str | None]:
    """(seconds, server CPU seconds, error) for ``timed`` sent by our DiameterClient."""
    from gateway.ingest.diameter import DiameterClient, DiameterSettings

    settings = DiameterSettings(
        origin_host=LOADGEN_HOST,
        origin_realm=REALM,
        allowed_peers=(("*", "*"),),
        origin_state_id=1,
        request_timeout=60.0,
        watchdog_interval=300.0,
    )
    client = DiameterClient(settings, "127.0.0.1", port)
    await client.start()
    await client.wait_open(10)
    statuses = Counter[int | None]()

    async def drive(messages: list[Message]) -> None:
        pending = iter(messages)

        async def worker() -> None:
            for message in pending:
                statuses[result_code(await client.request(message))] += 1

        await asyncio.gather(*(worker() for _ in range(window)))

    await drive(warmup)
    statuses.clear()
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    await drive(timed)
    elapsed = time.perf_counter() - t0
    cpu = server.cpu() - cpu0
    await client.stop()
    error = None if statuses == Counter({2001: len(timed)}) else f"Result-Codes {dict(statuses)}"
    return elapsed, cpu, error


# --- the run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    server: str  # ours | python-diameter
    sink: str  # pipeline | detector | null
    loop: str  # asyncio | uvloop | threads
    shape: str = "realistic"  # realistic | peers
    client: str = "raw"  # raw | ours
    code_root: str = ""  # another checkout's server (--baseline)

    @property
    def label(self) -> str:
        text = self.server if self.server != "ours" else f"ours ({self.sink}, {self.loop})"
        if self.code_root:
            text = f"baseline ({self.sink}, {self.loop})"
        if self.server != "ours":
            text += f" ({self.sink})"
        if self.shape != "realistic":
            text += ", PEERS.md 3.3 CCR shape"
        if self.client != "raw":
            text += ", our DiameterClient as client"
        return text


def rows(args: argparse.Namespace, have_pipeline: bool) -> list[Row]:
    sink = "pipeline" if have_pipeline else "detector"
    out = [Row("ours", sink, "asyncio")]
    if have_pipeline:
        out.append(Row("ours", "detector", "asyncio"))
    if not args.quick:
        out.append(Row("ours", "null", "asyncio"))
        out.append(Row("ours", sink, "asyncio", shape="peers"))
        if args.uvloop:
            out.append(Row("ours", sink, "uvloop"))
        if args.client_row:
            out.append(Row("ours", sink, "asyncio", client="ours"))
    if args.baseline:
        out.append(Row("ours", sink, "asyncio", code_root=args.baseline))
        out.append(Row("ours", "detector", "asyncio", code_root=args.baseline))
    if args.python_diameter:
        out.append(Row("python-diameter", "detector", "threads"))
    return out


@contextlib.contextmanager
def own_core(core: int | None) -> Iterator[None]:
    """This process (the load) on its core; the servers pin themselves to theirs."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_core, client_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    have_pipeline = (ROOT / "gateway" / "ingest" / "pipeline.py").exists()
    table = rows(args, have_pipeline)
    count = {row: args.pd_count if row.server == "python-diameter" else args.count for row in table}
    traffic = {
        (shape, n): Traffic(max(1, n // REPORTS_PER_SUBSCRIBER), shape)
        for shape, n in {(row.shape, count[row]) for row in table}
    }
    for t in traffic.values():
        t.check()
    blobs = {key: t.blob(key[1]) for key, t in traffic.items()}
    warmups = {
        shape: Traffic(WARMUP, shape).blob(WARMUP, WARMUP_BASE, 0x40000000)
        for shape in {r.shape for r in table}
    }
    client_messages: list[Message] = []
    client_warmup: list[Message] = []
    if any(row.client == "ours" for row in table):
        realistic = traffic["realistic", args.count]
        client_messages = [codec.decode(realistic.ccr(i, i)) for i in range(args.count)]
        client_warmup = [codec.decode(realistic.ccr(i, i, WARMUP_BASE)) for i in range(WARMUP)]

    results: dict[Row, dict[str, list[Any]]] = {
        row: {"rate": [], "cpu": [], "errors": [], "stats": []} for row in table
    }
    with own_core(client_core):
        for run_index in range(args.runs):
            for row in table:
                n = count[row]
                profile = None
                if args.profile and row.server == "ours":
                    profile = f"{args.profile}.{row.sink}.{row.loop}.{row.shape}.{row.client}.{run_index}"
                server = ServerProcess(row, server_core, profile)
                try:
                    if row.client == "raw":
                        load = RawLoad(server.port, warmups[row.shape], args.window)
                        cpu0 = server.cpu()
                        elapsed, answers = load.timed(*blobs[row.shape, n])
                        cpu = server.cpu() - cpu0
                        load.close()
                        error = check_answers(answers, n, 1)
                    else:
                        elapsed, cpu, error = asyncio.run(
                            client_session(server.port, client_warmup, client_messages, args.window, server)
                        )
                finally:
                    results[row]["stats"].append(server.stop())
                results[row]["rate"].append(n / elapsed)
                results[row]["cpu"].append(cpu)
                if error:
                    results[row]["errors"].append(f"run {run_index + 1}: {error}")
                if not args.json:
                    print(
                        f"  run {run_index + 1}/{args.runs}  {row.label}: {n / elapsed:,.0f} CCR/s"
                        + (f"  ERROR {error}" if error else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    out_rows: list[dict[str, Any]] = []
    for row in table:
        r = results[row]
        n = count[row]
        walls = [n / rate for rate in r["rate"]]
        out_rows.append(
            {
                "row": row.label,
                "server": row.server,
                "sink": row.sink,
                "loop": row.loop,
                "shape": row.shape,
                "client": row.client,
                "ccr_per_run": n,
                "median_ccr_per_s": round(statistics.median(r["rate"])),
                "runs_ccr_per_s": [round(x) for x in r["rate"]],
                "server_cpu_per_wall": round(
                    statistics.median(c / w for c, w in zip(r["cpu"], walls, strict=True)), 2
                ),
                "server_cpu_us_per_ccr": round(statistics.median(c / n * 1e6 for c in r["cpu"]), 1),
                "errors": r["errors"],
                "last_server_stats": r["stats"][-1],
            }
        )
    by = {row: out["median_ccr_per_s"] for row, out in zip(table, out_rows, strict=True)}
    headline_row = table[0]
    ratios: dict[str, float] = {}
    theirs = next((by[r] for r in table if r.server == "python-diameter"), None)
    if theirs:
        like = Row("ours", "detector", "asyncio")
        if like in by:
            ratios["ours (detector) / python-diameter (detector), same run"] = round(by[like] / theirs, 2)
        ratios[f"{headline_row.label} / python-diameter (detector), same run"] = round(
            by[headline_row] / theirs, 2
        )
    for row in table:
        if row.code_root:
            ours = Row("ours", row.sink, row.loop)
            ratios[f"ours ({row.sink}) / {row.label}, same run"] = round(by[ours] / by[row], 2)
    peers_row = next((r for r in table if r.shape == "peers"), None)
    if peers_row is not None:
        ratios[f"{peers_row.label} / PEERS.md 3.3 baseline 13.6k (another day)"] = round(
            by[peers_row] / PEERS_BASELINE, 2
        )
    return {
        "python": platform.python_version(),
        "python_diameter": pd_version() or "absent",
        "cores": {"server": server_core, "load": client_core},
        "machine_note": "other processes may share these cores: compare rows of the same run",
        "sink_note": (
            "pipeline = IngestPipeline (SQLite journal + TriggerDetector)"
            if have_pipeline
            else "gateway/ingest/pipeline.py absent: the detector sink stands in for the pipeline"
        ),
        "window": args.window,
        "runs": args.runs,
        "ccr_octets": {shape: len(t.template) for (shape, _n), t in traffic.items()},
        "rows": out_rows,
        "ratios": ratios,
        "headline": {"row": headline_row.label, "median_ccr_per_s": by[headline_row]},
    }


def print_table(result: dict[str, Any]) -> None:
    octets = ", ".join(f"{shape} {n} octets" for shape, n in sorted(result["ccr_octets"].items()))
    print(
        f"Gy CCR-U ({octets}) -> CCA per second; server on core {result['cores']['server']}, load on core "
        f"{result['cores']['load']}, window {result['window']}, median of {result['runs']} runs; "
        f"Python {result['python']}, python-diameter {result['python_diameter']}"
    )
    print(result["sink_note"])
    print()
    print(f"{'server (sink, loop)':<66} {'CCR/run':>8} {'CCR/s':>8} {'srv CPU':>8} {'us/CCR':>7}  runs (k/s)")
    for row in result["rows"]:
        runs = " ".join(f"{x / 1000:.1f}" for x in row["runs_ccr_per_s"])
        print(
            f"{row['row']:<66} {row['ccr_per_run']:>8,} {row['median_ccr_per_s']:>8,} "
            f"{row['server_cpu_per_wall'] * 100:>7.0f}% {row['server_cpu_us_per_ccr']:>7.1f}  {runs}"
        )
        for error in row["errors"]:
            print(f"    ERROR {error}")
    print()
    for name, value in result["ratios"].items():
        print(f"{name}: {value:.2f}x")
    print(f"({result['machine_note']}; us/CCR is the server's CPU time per CCR answered)")
    for row in result["rows"]:
        stats = row["last_server_stats"] or {}
        if "triggers" in stats:
            print(f"last run, {row['row']}: {json.dumps(stats, sort_keys=True)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer rows, CCRs and runs (about 15 s)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--count", type=int, default=None, help="CCRs per run (our server)")
    ap.add_argument("--pd-count", type=int, default=None, help="CCRs per run (python-diameter)")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--no-python-diameter", dest="python_diameter", action="store_false")
    ap.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    ap.add_argument("--no-client-row", dest="client_row", action="store_false")
    ap.add_argument("--profile", help="cProfile each of our servers into PROFILE.<row>.<run>")
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the server of the checkout at DIR (e.g. `git worktree add DIR HEAD~1`), interleaved",
    )
    ap.add_argument("--code-root", help=argparse.SUPPRESS)
    # the server process (internal)
    ap.add_argument("--serve", choices=("ours", "python-diameter"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--sink", choices=("pipeline", "detector", "null"), default="pipeline", help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--loop", choices=("asyncio", "uvloop", "threads"), default="asyncio", help=argparse.SUPPRESS
    )
    ap.add_argument("--core", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return server_main(args)
    args.runs = args.runs or (3 if args.quick else 5)
    args.count = args.count or (6_000 if args.quick else 30_000)
    args.pd_count = args.pd_count or (1_500 if args.quick else 6_000)
    args.uvloop = args.uvloop and uvloop_available()
    args.python_diameter = args.python_diameter and pd_version() is not None
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_table(result)
    if not args.python_diameter:
        print("python-diameter not run (absent or --no-python-diameter; pip install python-diameter==0.9.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

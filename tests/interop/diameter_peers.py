"""Independent Diameter peers for the interop tests (PEERS.md section 3) and what they share.

- freeDiameterd (Debian 1.2.1) as a client peer: ``build_ccr_send`` compiles the ``ccr_send`` extension
  (tests/interop/freediameter/ccr_send.c) with gcc, ``write_freediameter_config`` fills in
  freeDiameter.conf.in, ``FreeDiameterd`` runs the daemon and reads its log.
- node ``diameter`` 0.7.0 as a client: ``run_node_diameter`` runs tests/interop/node/diameter_client.js
  over a JSON scenario (sequential requests; see the script for the format).
- ``RecordingRelay``: a TCP relay between a peer and the server under test that records the bytes each
  way, so a test can see what crossed the wire (a DWR and its DWA, a DPR and its DPA) with no capture
  privilege, and ``write_pcap`` can turn a conversation into a pcap for tshark.
- ``parse_frame`` / ``avp_value``: read Diameter messages with scapy's dissector (code nobody here
  wrote), never with our own codec.
- ``start_server``: the gateway's ``DiameterServer`` on 127.0.0.1 port 0 with a ``RecordingSink``.

A missing peer is reported by ``find_freediameter`` / ``find_node`` with an install hint; the tests turn
that into a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import string
import struct
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.contrib.diameter import DiamG
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from campaign_core.usage import UsageEvent
from gateway.ingest.diameter import DiameterServer, DiameterSettings

HERE = Path(__file__).resolve().parent
FD_DIR = HERE / "freediameter"
CCR_SEND_C = FD_DIR / "ccr_send.c"
FD_CONF_TEMPLATE = FD_DIR / "freeDiameter.conf.in"
NODE_DIR = HERE / "node"
DIAMETER_CLIENT_JS = NODE_DIR / "diameter_client.js"

HOST = "127.0.0.1"
GW_HOST = "gw.localdomain"
REALM = "localdomain"

FREEDIAMETER_HINT = (
    "`apt-get install freediameter freediameter-extensions libfreediameter-dev gcc openssl` "
    "(.ci/run installs them)"
)
NODE_HINT = f"`node` on PATH and `npm ci` in {NODE_DIR} (.ci/run does both)"

# Diameter command codes and header flags (RFC 6733 section 3)
CER, DWR, DPR, CCR, SNR = 257, 280, 282, 272, 8388636
FLAG_REQUEST, FLAG_ERROR = 0x80, 0x20


# --- the server under test -------------------------------------------------------------------------


class RecordingSink:
    """An ``EventSink`` that keeps every event it is given, in order."""

    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    async def take(self, events: Sequence[UsageEvent]) -> None:
        self.events.extend(events)


@contextlib.asynccontextmanager
async def start_server(**settings: Any) -> AsyncIterator[tuple[DiameterServer, RecordingSink, int]]:
    """Our ``DiameterServer`` as gw.localdomain on 127.0.0.1, any free port, admitting every peer;
    ``settings`` override ``DiameterSettings`` fields. Stopped (DPR to every open peer) on exit."""
    options: dict[str, Any] = {
        "origin_host": GW_HOST,
        "origin_realm": REALM,
        "host": HOST,
        "port": 0,
        "allowed_peers": (("*", "*"),),
        **settings,
    }
    sink = RecordingSink()
    server = DiameterServer(DiameterSettings(**options), sink)
    _, port = await server.start()
    try:
        yield server, sink, port
    finally:
        await server.stop()


async def eventually(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``check`` until it returns something true; AssertionError naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# --- reading Diameter with scapy -------------------------------------------------------------------


def split_frames(stream: bytes) -> list[bytes]:
    """Diameter messages in a byte stream, split with nothing but the Message Length field."""
    frames: list[bytes] = []
    pos = 0
    while pos + 4 <= len(stream):
        length = int.from_bytes(stream[pos + 1 : pos + 4], "big")
        if length < 20 or pos + length > len(stream):
            break
        frames.append(stream[pos : pos + length])
        pos += length
    return frames


def parse_frame(frame: bytes) -> Packet:
    """A Diameter message dissected by scapy (``drFlags``, ``drCode``, ``drAppId``, ``avpList``...)."""
    packet = DiamG(frame)
    if bytes(packet) != frame:
        raise AssertionError(f"scapy does not re-encode this frame identically: {frame.hex()}")
    return packet


def avps_of(where: Packet | Sequence[Packet]) -> list[Packet]:
    """The AVPs of a message (its avpList) or the members of a Grouped AVP (its val)."""
    if isinstance(where, DiamG):
        return list(where.avpList)
    if isinstance(where, Packet):
        return list(where.val)
    return list(where)


def avp_all(where: Packet | Sequence[Packet], code: int, vendor: int = 0) -> list[Packet]:
    """Every AVP ``code`` of ``vendor`` directly in ``where`` (a message, a Grouped AVP or a list)."""
    return [a for a in avps_of(where) if a.avpCode == code and (getattr(a, "avpVnd", 0) or 0) == vendor]


def avp_value(where: Packet | Sequence[Packet], code: int, vendor: int = 0) -> Any:
    """The value scapy decoded for the first AVP ``code`` (None when absent)."""
    found = avp_all(where, code, vendor)
    return found[0].val if found else None


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed header of a Diameter message (RFC 6733 section 3), read with struct."""

    length: int
    flags: int
    code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int

    @property
    def is_request(self) -> bool:
        return bool(self.flags & FLAG_REQUEST)


def header(frame: bytes) -> Header:
    word0, word1, app, hbh, e2e = struct.unpack_from(">IIIII", frame)
    return Header(word0 & 0xFFFFFF, word1 >> 24, word1 & 0xFFFFFF, app, hbh, e2e)


# --- recording relay -------------------------------------------------------------------------------

CLIENT, SERVER = "client", "server"


@dataclass
class Conversation:
    """One relayed TCP connection: every chunk read, in the order it was read, tagged with its sender."""

    client_port: int
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    closed: bool = False

    def stream(self, sender: str) -> bytes:
        return b"".join(data for who, data in self.chunks if who == sender)

    def frames(self, sender: str) -> list[bytes]:
        return split_frames(self.stream(sender))

    def headers(self, sender: str) -> list[Header]:
        return [header(frame) for frame in self.frames(sender)]


class RecordingRelay:
    """Listens on 127.0.0.1 (any free port) and relays every connection to ``target``, recording both
    directions. EOF is passed on as a half-close, so either side's close reaches the other."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.conversations: list[Conversation] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> RecordingRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conversation = Conversation(client_writer.get_extra_info("peername")[1])
        self.conversations.append(conversation)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, conversation, CLIENT),
                self._pump(server_reader, client_writer, conversation, SERVER),
            )
        finally:
            conversation.closed = True
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conversation: Conversation, sender: str
    ) -> None:
        try:
            while data := await reader.read(65536):
                conversation.chunks.append((sender, data))
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


# --- pcap of a conversation (no capture privilege needed) ------------------------------------------


def write_pcap(path: Path, conversation: Conversation, server_port: int) -> None:
    """One TCP connection 127.0.0.1:client_port -> 127.0.0.1:server_port carrying the recorded chunks:
    handshake, each chunk as data segments acknowledged by the other side, FIN both ways. Sequence and
    acknowledgement numbers are consistent, so tshark's TCP analysis has nothing to warn about."""
    ports = {CLIENT: conversation.client_port, SERVER: server_port}
    other = {CLIENT: SERVER, SERVER: CLIENT}
    next_seq = {CLIENT: 1000, SERVER: 50000}
    packets: list[Packet] = []

    def segment(sender: str, flags: str, payload: bytes = b"") -> None:
        tcp = TCP(
            sport=ports[sender],
            dport=ports[other[sender]],
            flags=flags,
            seq=next_seq[sender],
            ack=next_seq[other[sender]] if "A" in flags else 0,
            window=65535,
        )
        packet = Ether() / IP(src=HOST, dst=HOST) / tcp
        if payload:
            packet = packet / Raw(payload)
        packet.time = 1_700_000_000 + len(packets) / 1000
        packets.append(packet)
        next_seq[sender] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    segment(CLIENT, "S")
    segment(SERVER, "SA")
    segment(CLIENT, "A")
    for sender, data in conversation.chunks:
        for offset in range(0, len(data), 32768):
            segment(sender, "PA", data[offset : offset + 32768])
            segment(other[sender], "A")
    segment(CLIENT, "FA")
    segment(SERVER, "FA")
    segment(CLIENT, "A")
    wrpcap(str(path), packets)


# --- freeDiameterd ---------------------------------------------------------------------------------


def _freediameter_extension_dir(daemon: str) -> Path | None:
    """Where the packaged dict_*.fdx live, found from the daemon's install prefix (or $FD_EXTENSION_DIR)."""
    override = os.environ.get("FD_EXTENSION_DIR")
    lib = Path(daemon).resolve().parent.parent / "lib"
    candidates = [Path(override)] if override else [lib / "freeDiameter", *sorted(lib.glob("*/freeDiameter"))]
    for candidate in candidates:
        if (candidate / "dict_dcca_3gpp.fdx").is_file():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class FreeDiameterTools:
    daemon: str
    gcc: str
    openssl: str
    extension_dir: Path


def find_freediameter() -> FreeDiameterTools | str:
    """The tools the freeDiameter tests need, or an install hint saying what is missing."""
    tools = {name: shutil.which(name) for name in ("freeDiameterd", "gcc", "openssl")}
    missing = [name for name, found in tools.items() if found is None]
    if missing:
        return f"freeDiameter peer missing ({', '.join(missing)} not on PATH): {FREEDIAMETER_HINT}"
    daemon, gcc, openssl = (str(tools[n]) for n in ("freeDiameterd", "gcc", "openssl"))
    extension_dir = _freediameter_extension_dir(daemon)
    if extension_dir is None:
        return f"freeDiameter dictionary extensions (dict_dcca_3gpp.fdx) not found: {FREEDIAMETER_HINT}"
    return FreeDiameterTools(daemon, gcc, openssl, extension_dir)


def build_ccr_send(tools: FreeDiameterTools, cache_dir: Path) -> Path:
    """Compile ccr_send.c into ``cache_dir``, named by a hash of the source, the compiler and the
    installed daemon (reused while none changes). The file appears atomically, so concurrent test
    runs may share the directory."""
    daemon = Path(tools.daemon).resolve().stat()
    identity = f"{tools.gcc}|{tools.daemon}|{daemon.st_size}|{daemon.st_mtime_ns}".encode()
    digest = hashlib.sha256(CCR_SEND_C.read_bytes() + identity).hexdigest()[:16]
    target = cache_dir / f"ccr_send-{digest}.fdx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{target.name}.{os.getpid()}"
    command = [
        tools.gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(partial), str(CCR_SEND_C),
        "-lfdcore", "-lfdproto", "-lpthread",
    ]  # fmt: skip
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if built.returncode != 0:
        raise RuntimeError(
            f"cannot build the freeDiameter extension ({FREEDIAMETER_HINT}):\n{built.stderr.strip()}"
        )
    os.replace(partial, target)
    return target


def make_tls_credentials(tools: FreeDiameterTools, directory: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed certificate and key: freeDiameter 1.2.1 requires TLS_Cred even with No_TLS peers."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        tools.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-out", str(cert), "-days", "30", "-subj", f"/CN={common_name}",
    ]  # fmt: skip
    made = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if made.returncode != 0:
        raise RuntimeError(f"openssl could not make a test certificate: {made.stderr.strip()}")
    return cert, key


@dataclass(frozen=True, slots=True)
class GyReport:
    """One Gy CCR-U of ccr_send: MSCC { Rating-Group, USU { CC-Total-Octets, Reporting-Reason } }."""

    session_id: str
    msisdn: str
    cc_request_number: int
    rating_group: int
    octets: int
    reporting_reason: int

    def line(self) -> str:
        return (
            f"gy {self.session_id} {self.msisdn} {self.cc_request_number} {self.rating_group} "
            f"{self.octets} {self.reporting_reason}"
        )


@dataclass(frozen=True, slots=True)
class GxReport:
    """One Gx CCR-U of ccr_send: Event-Trigger USAGE_REPORT, UMI { Monitoring-Key, USU }."""

    session_id: str
    msisdn: str
    cc_request_number: int
    monitoring_key: str
    octets: int

    def line(self) -> str:
        return (
            f"gx {self.session_id} {self.msisdn} {self.cc_request_number} {self.monitoring_key} {self.octets}"
        )


@dataclass(frozen=True, slots=True)
class SyReport:
    """One Sy SNR of ccr_send: Policy-Counter-Status-Report and a Subscription-Id."""

    session_id: str
    msisdn: str
    policy_counter_identifier: str
    policy_counter_status: str

    def line(self) -> str:
        return f"sy {self.session_id} {self.msisdn} {self.policy_counter_identifier} {self.policy_counter_status}"


Report = GyReport | GxReport | SyReport


def write_ccr_send_config(
    path: Path, reports: Sequence[Report], peer: str = GW_HOST, realm: str = REALM
) -> Path:
    lines = [f"peer {peer} {realm}", "open_timeout 15000", *(report.line() for report in reports)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_freediameter_config(
    directory: Path,
    tools: FreeDiameterTools,
    *,
    peer_port: int,
    cert: Path,
    key: Path,
    identity: str = "pcef.localdomain",
    extension: Path | None = None,
    extension_config: Path | None = None,
    tw_timer: int = 6,
    tc_timer: int = 30,
) -> Path:
    """freeDiameter.conf for a client-only peer connecting to gw.localdomain at 127.0.0.1:``peer_port``."""
    extra = ""
    if extension is not None:
        extra = f'LoadExtension = "{extension}"'
        if extension_config is not None:
            extra += f' : "{extension_config}"'
        extra += ";"
    text = string.Template(FD_CONF_TEMPLATE.read_text(encoding="utf-8")).substitute(
        identity=identity,
        realm=REALM,
        cert=cert,
        key=key,
        tc_timer=tc_timer,
        tw_timer=tw_timer,
        extension_dir=tools.extension_dir,
        extra_extensions=extra,
        peer_identity=GW_HOST,
        peer_address=HOST,
        peer_port=peer_port,
    )
    path = directory / "freeDiameter.conf"
    path.write_text(text, encoding="utf-8")
    return path


ANSWER_LINE = re.compile(
    r"ccr_send: answer cmd=(?P<cmd>\d+) app=(?P<app>\d+) session=(?P<session>\S+) result=(?P<result>\d+)"
)


class FreeDiameterd:
    """A running freeDiameterd whose log (stdout and stderr) is collected line by line."""

    def __init__(self, tools: FreeDiameterTools, config: Path) -> None:
        self.tools = tools
        self.config = config
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> FreeDiameterd:
        self.proc = await asyncio.create_subprocess_exec(
            self.tools.daemon, "-c", str(self.config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=self.config.parent,
        )  # fmt: skip
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", errors="replace").rstrip())

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first log line matching ``pattern`` (a regex), waiting for it if need be."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match := regex.search(line):
                    return match
            seen = len(self.lines)
            if self.proc is not None and self.proc.returncode is not None and self._reader_done():
                raise AssertionError(
                    f"freeDiameterd exited {self.proc.returncode} before logging {pattern!r}:\n{self.log}"
                )
            if loop.time() > deadline:
                raise AssertionError(f"freeDiameterd did not log {pattern!r} within {timeout} s:\n{self.log}")
            await asyncio.sleep(0.02)

    def _reader_done(self) -> bool:
        return self._reader is not None and self._reader.done()

    def answers(self) -> list[dict[str, str]]:
        """Every ``ccr_send: answer`` line as {cmd, app, session, result}."""
        return [m.groupdict() for line in self.lines if (m := ANSWER_LINE.search(line))]

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (freeDiameterd then sends DPR to its peers) and wait for the exit; its return code."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"freeDiameterd ignored SIGTERM for {timeout} s:\n{self.log}") from None
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return self.proc.returncode if self.proc.returncode is not None else 0

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


# --- node `diameter` -------------------------------------------------------------------------------


def find_node() -> str | None:
    """The node binary, when node is on PATH and `npm ci` installed the `diameter` package; else None
    (``NODE_MISSING`` says how to install them)."""
    node = shutil.which(os.environ.get("NODE", "node"))
    if node is None or not (NODE_DIR / "node_modules" / "diameter" / "package.json").is_file():
        return None
    return node


NODE_MISSING = f"node `diameter` peer missing: need {NODE_HINT}"


@dataclass(frozen=True, slots=True)
class NodeRun:
    """What diameter_client.js printed: one JSON object per line, its exit code and stderr."""

    exit_code: int | None
    lines: list[dict[str, Any]]
    stderr: str

    def answers(self) -> dict[str, dict[str, Any]]:
        """Answer lines by step name."""
        return {line["step"]: line for line in self.lines if "step" in line}

    def errors(self) -> list[str]:
        return [str(line["error"]) for line in self.lines if "error" in line]


async def run_node_diameter(
    node: str, port: int, scenario: dict[str, Any], directory: Path, timeout: float = 30.0
) -> NodeRun:
    """Run diameter_client.js against 127.0.0.1:``port`` with ``scenario`` (written to ``directory``)."""
    scenario_path = directory / "scenario.json"
    scenario_path.write_text(json.dumps(scenario), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        node, str(DIAMETER_CLIENT_JS), "--host", HOST, "--port", str(port), "--scenario", str(scenario_path),
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"diameter_client.js hung for {timeout} s: {out!r} {err!r}") from None
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return NodeRun(proc.returncode, lines, err.decode(errors="replace"))


# --- the usage scenario both node tests run --------------------------------------------------------

VENDOR_3GPP = 10415
GY_APP, GX_APP, SY_APP = 4, 16777238, 16777302
MSISDN = "31612345678"
NODE_HOST = "node.localdomain"
GY_SESSION = f"{NODE_HOST};1700000000;gy"
GX_SESSION = f"{NODE_HOST};1700000000;gx"
SY_SESSION = f"{NODE_HOST};1700000000;sy"
GY_QUOTA = 5_000_000_000  # rating group 100's package: 4.5 GB used is the 90 % threshold
GY_THRESHOLD_OCTETS = 4_500_000_000
GY_EXHAUSTED_OCTETS = 1_048_576
GY_FINAL_OCTETS = 500_000_000
GY_GRANT = 1_000_000
GX_MONITORING_KEY = "pkg-5GB"
GX_GRANTED = 5_368_709_120
GX_USED = 4_831_838_208
SY_COUNTER = "DATA_PKG_5GB"
SY_STATUS = "exhausted"

# [code, vendor] pairs for the AVPs whose names are ambiguous in node-diameter's dictionary
REPORTING_REASON = [872, VENDOR_3GPP]
EVENT_TRIGGER = [1006, VENDOR_3GPP]
USAGE_MONITORING_INFORMATION = [1067, VENDOR_3GPP]
MONITORING_KEY = [1066, VENDOR_3GPP]
POLICY_COUNTER_STATUS_REPORT = [2903, VENDOR_3GPP]
POLICY_COUNTER_IDENTIFIER = [2901, VENDOR_3GPP]
POLICY_COUNTER_STATUS = [2902, VENDOR_3GPP]


def _subscription() -> list[Any]:
    return ["Subscription-Id", [["Subscription-Id-Type", 0], ["Subscription-Id-Data", MSISDN]]]


def _gy(name: str, request_type: int, number: int, services: list[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "application": GY_APP,
        "command": "Credit-Control",
        "session_id": GY_SESSION,
        "avps": [
            ["Origin-Host", NODE_HOST],
            ["Origin-Realm", REALM],
            ["Destination-Realm", REALM],
            ["Auth-Application-Id", GY_APP],
            ["Service-Context-Id", "32251@3gpp.org"],
            ["CC-Request-Type", request_type],
            ["CC-Request-Number", number],
            _subscription(),
            *services,
        ],
    }


def _mscc(rating_group: int, *members: list[Any]) -> list[Any]:
    return ["Multiple-Services-Credit-Control", [*members, ["Rating-Group", rating_group]]]


def _usu(octets: int, *reason: int) -> list[Any]:
    return ["Used-Service-Unit", [["CC-Total-Octets", octets], *([REPORTING_REASON, r] for r in reason)]]


def node_usage_scenario() -> dict[str, Any]:
    """CER; Gy CCR-I, CCR-U (THRESHOLD in a USU, QUOTA_EXHAUSTED at MSCC level), CCR-T (FINAL);
    Gx CCR-U (USAGE_REPORT, UMI with GSU and USU); Sy SNR; DPR."""
    return {
        "origin_host": NODE_HOST,
        "origin_realm": REALM,
        "timeout_ms": 5000,
        "cer": [
            ["Host-IP-Address", HOST],
            ["Vendor-Id", 0],
            ["Product-Name", "node-diameter"],
            ["Auth-Application-Id", GY_APP],
            ["Vendor-Specific-Application-Id", [["Vendor-Id", VENDOR_3GPP], ["Auth-Application-Id", GX_APP]]],
            ["Vendor-Specific-Application-Id", [["Vendor-Id", VENDOR_3GPP], ["Auth-Application-Id", SY_APP]]],
        ],
        "steps": [
            # an empty Requested-Service-Unit is legal, but tshark warns "Data is empty": ask for octets
            _gy("gy-ccr-i", 1, 0, [_mscc(100, ["Requested-Service-Unit", [["CC-Total-Octets", GY_GRANT]]])]),
            _gy(
                "gy-ccr-u",
                2,
                1,
                [
                    _mscc(100, _usu(GY_THRESHOLD_OCTETS, 0)),
                    _mscc(200, _usu(GY_EXHAUSTED_OCTETS), [REPORTING_REASON, 3]),
                ],
            ),
            _gy("gy-ccr-t", 3, 2, [_mscc(100, _usu(GY_FINAL_OCTETS, 2))]),
            {
                "name": "gx-ccr-u",
                "application": GX_APP,
                "command": "Credit-Control",
                "session_id": GX_SESSION,
                "avps": [
                    ["Origin-Host", NODE_HOST],
                    ["Origin-Realm", REALM],
                    ["Destination-Realm", REALM],
                    ["Auth-Application-Id", GX_APP],
                    ["CC-Request-Type", 2],
                    ["CC-Request-Number", 1],
                    _subscription(),
                    [EVENT_TRIGGER, 33],
                    [
                        USAGE_MONITORING_INFORMATION,
                        [
                            [MONITORING_KEY, GX_MONITORING_KEY],
                            ["Granted-Service-Unit", [["CC-Total-Octets", GX_GRANTED]]],
                            ["Used-Service-Unit", [["CC-Total-Octets", GX_USED]]],
                        ],
                    ],
                ],
            },
            {
                "name": "sy-snr",
                "application": SY_APP,
                "command": "Spending-Status-Notification",
                "session_id": SY_SESSION,
                "avps": [
                    ["Origin-Host", NODE_HOST],
                    ["Origin-Realm", REALM],
                    ["Destination-Realm", REALM],
                    ["Destination-Host", GW_HOST],
                    ["Auth-Application-Id", SY_APP],
                    [
                        POLICY_COUNTER_STATUS_REPORT,
                        [[POLICY_COUNTER_IDENTIFIER, SY_COUNTER], [POLICY_COUNTER_STATUS, SY_STATUS]],
                    ],
                    _subscription(),
                ],
            },
        ],
        "disconnect": True,
    }


NODE_SERVER_SETTINGS: dict[str, Any] = {
    "gy_quota_bytes": {100: GY_QUOTA},
    "gy_grant_octets": GY_GRANT,
}
"""The ``DiameterSettings`` overrides the node scenario's expectations assume."""

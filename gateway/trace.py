"""Traffic capture to a pcap file (libpcap format, LINKTYPE_IPV4 = 228) that Wireshark and tshark open.

``TrafficTap`` hooks an asyncio selector event loop: every TCP transport the loop makes (clients and
accepted connections) gets its protocol wrapped, so every byte a socket of this process *receives*
is written as the payload of an IPv4/TCP segment from the peer, with a three-way handshake at the
start of each connection, sequence and acknowledgement numbers that follow the bytes (so Wireshark
reassembles PDUs split over reads), and FIN segments at the end. Timestamps come from ``clock``
(epoch seconds: the simulated clock in a simulation).

Both ends of a loopback connection living in the same process (the simulation) means each direction
is received by one of our sockets, so inbound capture records everything once. When the peers are
other processes (``tgw run --pcap``), ``outbound=True`` also records what our sockets write (the
transport's ``write``/``writelines``), so both directions are in the file.

``name_server(port, ip, wire_port, client_ip)`` relabels a listener: its connections appear between
``client_ip`` and ``ip:wire_port``, so each simulated node gets its own address and each protocol its
registered port (SMPP 2775, Diameter 3868, HTTP 80/8080), which is what Wireshark's dissectors key on.
The IP and TCP checksums are computed (RFC 791, RFC 793), so no frame shows as malformed.

SIM card APDUs (ENVELOPE, FETCH, TERMINAL RESPONSE, GET RESPONSE; ETSI TS 102 221 section 10) of the
simulated handsets go in as GSMTAP (type 4, SIM) UDP datagrams to port 4729 (``sim_apdu``), which
Wireshark hands to its GSM SIM dissector.

``max_bytes`` bounds the file: after it, capture stops and ``truncated`` says so.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["PcapWriter", "TrafficTap"]

LINKTYPE_IPV4 = 228
GSMTAP_PORT = 4729  # IANA: GSMTAP
GSMTAP_TYPE_SIM = 0x04
GSMTAP_SINK = "10.0.0.250"  # where a SIMtrace would send its GSMTAP frames
_MSS = 16_000  # payload per synthesized segment (Wireshark reassembles what spans several)
_SYN, _FIN, _PSH, _ACK = 0x02, 0x01, 0x08, 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


class PcapWriter:
    """Writes IPv4/TCP segments into a pcap file (the classic format, microsecond timestamps)."""

    def __init__(self, path: str | Path, *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.packets = 0
        self.bytes = 0
        self.truncated = False
        self._file: BinaryIO | None = self.path.open("wb")
        # magic, version 2.4, zone 0, sigfigs 0, snaplen, link type
        self._write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, LINKTYPE_IPV4))
        self._ident = 0

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self.bytes += len(data)

    def segment(
        self,
        at: float,
        src: tuple[str, int],
        dst: tuple[str, int],
        *,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
    ) -> None:
        if self._file is None:
            return
        if self.max_bytes is not None and self.bytes + len(payload) + 80 > self.max_bytes:
            self.truncated = True
            self.close()
            return
        src_ip, dst_ip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
        tcp = struct.pack(
            "!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0
        )
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp) + len(payload))
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:]
        self._ident = (self._ident + 1) & 0xFFFF
        total = 20 + len(tcp) + len(payload)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, self._ident, 0x4000, 64, socket.IPPROTO_TCP, 0, src_ip, dst_ip
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        seconds = int(at)
        micros = min(999_999, round((at - seconds) * 1_000_000))
        self._write(struct.pack("<IIII", seconds, micros, total, total))
        self._write(ip + tcp + payload)
        self.packets += 1

    def datagram(self, at: float, src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> None:
        """One IPv4/UDP datagram (RFC 768, with its checksum)."""
        if self._file is None:
            return
        if self.max_bytes is not None and self.bytes + len(payload) + 60 > self.max_bytes:
            self.truncated = True
            self.close()
            return
        src_ip, dst_ip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
        length = 8 + len(payload)
        udp = struct.pack("!HHHH", src[1], dst[1], length, 0)
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
        checksum = _checksum(pseudo + udp + payload) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", checksum)
        self._ident = (self._ident + 1) & 0xFFFF
        total = 20 + length
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, self._ident, 0x4000, 64, socket.IPPROTO_UDP, 0, src_ip, dst_ip
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        seconds = int(at)
        micros = min(999_999, round((at - seconds) * 1_000_000))
        self._write(struct.pack("<IIII", seconds, micros, total, total))
        self._write(ip + udp + payload)
        self.packets += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(slots=True)
class _Flow:
    """One TCP connection as written: ``client`` and ``server`` addresses and their next sequence numbers."""

    client: tuple[str, int]
    server: tuple[str, int]
    client_seq: int = 1
    server_seq: int = 1
    closed: bool = False


class TrafficTap:
    """Captures what the loop's TCP sockets receive into ``writer`` (see the module docstring)."""

    def __init__(self, writer: PcapWriter, clock: Callable[[], float], *, outbound: bool = False) -> None:
        self.writer = writer
        self.clock = clock
        self.outbound = outbound
        self._names: dict[int, tuple[str, int, str]] = {}
        self._flows: dict[tuple[tuple[str, int], tuple[str, int]], _Flow] = {}

    def name_server(self, port: int, ip: str, wire_port: int, client_ip: str) -> None:
        """Show the listener on local ``port`` as ``ip:wire_port`` and its clients as ``client_ip``."""
        self._names[port] = (ip, wire_port, client_ip)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap every socket transport ``loop`` makes from now on (a selector event loop)."""
        make = loop._make_socket_transport  # type: ignore[attr-defined]

        def tapped(sock: socket.socket, protocol: asyncio.BaseProtocol, *args: Any, **kwargs: Any) -> Any:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                return make(sock, protocol, *args, **kwargs)
            protocol = self._wrap(sock, protocol)
            transport = make(sock, protocol, *args, **kwargs)
            if self.outbound and isinstance(protocol, _Tapped | _TappedBuffered):
                self._tap_writes(transport, protocol._local, protocol._peer)
            return transport

        loop._make_socket_transport = tapped  # type: ignore[attr-defined]

    def sim_apdu(self, handset_ip: str, apdu: bytes) -> None:
        """An APDU between a handset and its SIM card as GSMTAP (type 4, SIM) over UDP to port 4729,
        the way osmocom's SIMtrace reports them: command header, data and status word in one frame."""
        header = struct.pack("!BBBBHbbIBBBB", 2, 4, GSMTAP_TYPE_SIM, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        self.writer.datagram(
            self.clock(), (handset_ip, GSMTAP_PORT), (GSMTAP_SINK, GSMTAP_PORT), header + apdu
        )

    def close(self) -> None:
        for flow in self._flows.values():
            self._fin(flow)
        self.writer.close()

    # --- flows ---

    def _flow(self, local: tuple[str, int], peer: tuple[str, int]) -> tuple[_Flow, bool]:
        """The flow of a socket and whether this socket is its server side."""
        if local[1] in self._names:
            key, server_side = (peer, local), True
        elif peer[1] in self._names:
            key, server_side = (local, peer), False
        else:  # an unnamed listener: the lower port is the server's
            server_side = local[1] < peer[1]
            key = (peer, local) if server_side else (local, peer)
        flow = self._flows.get(key)
        if flow is None:
            client, server = key
            name = self._names.get(server[1])
            if name is not None:
                server = (name[0], name[1])
                client = (name[2], client[1])
            flow = self._flows[key] = _Flow(client, server)
            self._handshake(flow)
        return flow, server_side

    def _handshake(self, flow: _Flow) -> None:
        at = self.clock()
        write = self.writer.segment
        write(at, flow.client, flow.server, seq=0, ack=0, flags=_SYN)
        write(at, flow.server, flow.client, seq=0, ack=1, flags=_SYN | _ACK)
        write(at, flow.client, flow.server, seq=1, ack=1, flags=_ACK)

    def received(self, local: tuple[str, int], peer: tuple[str, int], data: bytes) -> None:
        """Bytes this socket read: they came from its peer."""
        flow, server_side = self._flow(local, peer)
        self._payload(flow, from_client=server_side, data=data)

    def sent(self, local: tuple[str, int], peer: tuple[str, int], data: bytes) -> None:
        """Bytes this socket wrote (``outbound`` taps: the peer is another process)."""
        flow, server_side = self._flow(local, peer)
        self._payload(flow, from_client=not server_side, data=data)

    def _payload(self, flow: _Flow, *, from_client: bool, data: bytes) -> None:
        at = self.clock()
        for start in range(0, len(data), _MSS):
            chunk = data[start : start + _MSS]
            if from_client:
                src, dst, seq, ack = flow.client, flow.server, flow.client_seq, flow.server_seq
                flow.client_seq += len(chunk)
            else:
                src, dst, seq, ack = flow.server, flow.client, flow.server_seq, flow.client_seq
                flow.server_seq += len(chunk)
            self.writer.segment(at, src, dst, seq=seq, ack=ack, flags=_PSH | _ACK, payload=chunk)

    def _tap_writes(self, transport: Any, local: tuple[str, int], peer: tuple[str, int]) -> None:
        write = transport.write
        writelines = transport.writelines

        def tapped_write(data: bytes | bytearray | memoryview) -> None:
            if data:
                self.sent(local, peer, bytes(data))
            write(data)

        def tapped_writelines(lines: Any) -> None:
            lines = [bytes(line) for line in lines]
            if lines:
                self.sent(local, peer, b"".join(lines))
            writelines(lines)

        transport.write = tapped_write
        transport.writelines = tapped_writelines

    def lost(self, local: tuple[str, int], peer: tuple[str, int]) -> None:
        flow, _ = self._flow(local, peer)
        self._fin(flow)

    def _fin(self, flow: _Flow) -> None:
        if flow.closed:
            return
        flow.closed = True
        at = self.clock()
        write = self.writer.segment
        write(at, flow.client, flow.server, seq=flow.client_seq, ack=flow.server_seq, flags=_FIN | _ACK)
        write(at, flow.server, flow.client, seq=flow.server_seq, ack=flow.client_seq + 1, flags=_FIN | _ACK)
        write(at, flow.client, flow.server, seq=flow.client_seq + 1, ack=flow.server_seq + 1, flags=_ACK)

    def _wrap(self, sock: socket.socket, protocol: asyncio.BaseProtocol) -> asyncio.BaseProtocol:
        try:
            local = sock.getsockname()[:2]
            peer = sock.getpeername()[:2]
        except OSError:
            return protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            return _TappedBuffered(self, protocol, local, peer)
        if isinstance(protocol, asyncio.Protocol):
            return _Tapped(self, protocol, local, peer)
        return protocol


class _Passing:
    """What both tapped protocols pass on unchanged, and the end of the connection."""

    _tap: TrafficTap
    _inner: asyncio.BaseProtocol
    _local: tuple[str, int]
    _peer: tuple[str, int]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def eof_received(self) -> bool | None:
        inner = self._inner
        assert isinstance(inner, asyncio.Protocol | asyncio.BufferedProtocol)
        return inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tap.lost(self._local, self._peer)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Tapped(_Passing, asyncio.Protocol):
    """A protocol that tells the tap what arrives, then hands it on."""

    def __init__(
        self, tap: TrafficTap, inner: asyncio.Protocol, local: tuple[str, int], peer: tuple[str, int]
    ) -> None:
        self._tap, self._inner, self._local, self._peer = tap, inner, local, peer
        self._data_received = inner.data_received

    def data_received(self, data: bytes) -> None:
        self._tap.received(self._local, self._peer, data)
        self._data_received(data)


class _TappedBuffered(_Passing, asyncio.BufferedProtocol):
    def __init__(
        self, tap: TrafficTap, inner: asyncio.BufferedProtocol, local: tuple[str, int], peer: tuple[str, int]
    ) -> None:
        self._tap, self._inner, self._local, self._peer = tap, inner, local, peer
        self._buffered = inner
        self._buffer: memoryview | None = None

    def get_buffer(self, sizehint: int) -> Any:
        buffer = self._buffered.get_buffer(sizehint)
        self._buffer = memoryview(buffer)
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._buffer is not None:
            self._tap.received(self._local, self._peer, bytes(self._buffer[:nbytes]))
        self._buffered.buffer_updated(nbytes)

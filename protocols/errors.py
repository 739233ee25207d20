"""The one error hierarchy of the gateway (DESIGN.md, "Errors").

``GatewayError`` is the root. ``ProtocolError`` carries the status to answer on the wire (an SMPP
command_status, a Diameter Result-Code). ``LocalProtocolError`` is our own misuse of an engine;
``RemoteProtocolError`` is the peer breaking the protocol, and ``DecodeError`` is the special case of
bytes that cannot be parsed. ``ConfigError`` names the file, line and reason; ``TransportError``
covers sockets and connections.

It lives in ``protocols`` because that is the lowest layer: every other package may import it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "GatewayError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "TransportError",
]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ProtocolError(GatewayError):
    """A protocol rule was broken.

    ``status`` is the wire status that answers the violation (SMPP command_status, Diameter
    Result-Code); 0 when the protocol has nothing to answer with.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow (a bug or misuse on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class DecodeError(RemoteProtocolError):
    """Bytes from the peer could not be decoded.

    For SMPP, ``command_id`` and ``sequence_number`` are filled when the header could be read, so
    the engine can answer the right request with ``status``.
    """

    def __init__(
        self,
        message: str,
        status: int = 0,
        *,
        command_id: int | None = None,
        sequence_number: int | None = None,
    ) -> None:
        super().__init__(message, status)
        self.command_id = command_id
        self.sequence_number = sequence_number


class ConfigError(GatewayError):
    """A configuration file is wrong: which file, which line, and what is wrong."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None) -> None:
        where = file or "<config>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")
        self.reason = reason
        self.file = file
        self.line = line


class TransportError(GatewayError):
    """A connection could not be made, broke, or was closed under us."""

"""Raw Diameter over a loopback socket for the ingest tests (RFC 6733 section 3, the message header):
read one whole message off the stream, and a message readdressed with other end-to-end and hop-by-hop
identifiers (a request sent again on one connection needs its own), the rest as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses

from protocols.diameter.codec import Message, decode


async def read_message(reader: asyncio.StreamReader, timeout: float = 5.0) -> Message:
    """The next message on the stream: the 4-byte version and length, then the rest of it."""
    head = await asyncio.wait_for(reader.readexactly(4), timeout)
    length = int.from_bytes(head[1:4], "big")
    rest = await asyncio.wait_for(reader.readexactly(length - 4), timeout)
    return decode(head + rest)


def with_hop(message: Message, hop: int, **changes: object) -> Message:
    """``message`` with hop-by-hop and end-to-end identifiers ``hop``, and any other header fields or
    AVPs given (``application_id=...``, ``avps=...``)."""
    return dataclasses.replace(message, hop_by_hop=hop, end_to_end=hop, **changes)  # type: ignore[arg-type]

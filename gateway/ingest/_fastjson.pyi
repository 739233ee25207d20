"""Types of the optional C fast path ``gateway.ingest._fastjson`` (source: ``_fastjson.c``).

``parse_lines`` walks the lines of a JSON-lines body, takes the plainly valid DPI event lines and
stops at the first other one;
gateway/ingest/schema.py then hands that line to its pydantic-core validators, which are the
reference and say what is wrong.
"""

from campaign_core.usage import UsageEvent, UsageKind

FIELDS: tuple[str, ...]
"""UsageEvent's field names in the order the C code sets them (``dataclasses.fields`` order)."""

def parse_lines(
    body: bytes,
    start: int,
    events: list[UsageEvent],
    cls: type[UsageEvent],
    kinds: dict[bytes, UsageKind],
    source: str,
    /,
) -> int:
    """Append the events of the lines of ``body[start:]`` (``start`` where a line starts) to
    ``events``, skipping blank lines, up to the first line not plainly valid; return the offset
    where that line starts (``len(body)`` when every line was taken). A ``body`` not ``bytes`` or a
    ``source`` not exactly a ``str``: nothing is taken."""

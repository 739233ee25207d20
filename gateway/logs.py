"""Structured logs (issue #9, "Structured JSON logs, one line per event, with the subscriber, campaign
and offer ids where they apply").

``configure_logging("json" | "text", level)`` installs one handler on the root logger, writing to
standard error (or the ``stream`` given), and sets the root level. Calling it again replaces the handler
it installed before; handlers that others installed (a test runner's capture) are left alone.

``JsonFormatter``: one JSON object per record (RFC 8259), on one line, UTF-8 text as is:

``time``
    when the record was made, UTC, ISO 8601 to the millisecond: ``2026-06-01T14:00:00.123Z``;
``level``, ``logger``, ``message``
    the level name, the logger's name, the message with its arguments applied;
``msisdn``, ``campaign_id``, ``offer_id``
    present when the record carries them (``log.info(..., extra={"msisdn": ..., "campaign_id": ...})``,
    or ``extra=log_ids(...)``) and they are not None;
``exception``
    the formatted traceback of ``exc_info`` as one string field (its newlines escaped by JSON, so the
    record stays one line); ``stack`` likewise for ``stack_info``.

``TextFormatter``: the same facts for a terminal, ``<time> <LEVEL> <logger>: <message>`` followed by
``msisdn=... campaign_id=... offer_id=...`` when present, and the traceback on the lines after.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Final, Literal

__all__ = ["ID_FIELDS", "JsonFormatter", "LogFormat", "TextFormatter", "configure_logging", "log_ids"]

LogFormat = Literal["json", "text"]

ID_FIELDS: Final = ("msisdn", "campaign_id", "offer_id")
"""The ``extra`` attributes a record may carry that the formatters write out."""

_HANDLER_MARK = "_tgw_configured"


def log_ids(
    msisdn: str | None = None, campaign_id: str | None = None, offer_id: str | None = None
) -> dict[str, str]:
    """The ``extra`` of a log call about a subscriber / campaign / offer (the None ones left out)."""
    found = {"msisdn": msisdn, "campaign_id": campaign_id, "offer_id": offer_id}
    return {key: value for key, value in found.items() if value is not None}


def _utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ids(record: logging.LogRecord) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in ID_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found.append((name, value))
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _ids(record):
            data[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> [msisdn=.. campaign_id=.. offer_id=..]``, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        ids = _ids(record)
        if ids:
            line += "  " + " ".join(f"{name}={value}" for name, value in ids)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def configure_logging(
    format: LogFormat = "json",
    level: int | str = "INFO",
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Log every record at ``level`` or above to ``stream`` (standard error) in ``format``; returns the
    handler. ``ValueError`` for an unknown format or level."""
    if format == "json":
        formatter: logging.Formatter = JsonFormatter()
    elif format == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"log format must be 'json' or 'text', not {format!r}")
    if isinstance(level, str):
        named = logging.getLevelNamesMapping().get(level.upper())
        if named is None:
            raise ValueError(f"unknown log level {level!r}")
        level = named
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler

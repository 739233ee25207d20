"""Serving an aiohttp application on a TCP address: the one way the gateway's HTTP listeners (the DPI
intake, the admin API) and the HTTP simulators start.

A request aiohttp cannot parse (RFC 9112 section 2.2, 5: a NUL in a header, a bad request line) is
answered 400 by aiohttp, which also logs it at ERROR with a traceback. That is the client's mistake, and
anyone who reaches the port, without a token, could fill the log with tracebacks: ``serve`` keeps such a
record at INFO, on one line (``_QuietBadRequests``, on the ``aiohttp.server`` logger).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

__all__ = ["serve"]


class _QuietBadRequests(logging.Filter):
    """An unparsable request's record, at INFO and without its traceback (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            reason = " ".join(str(error.message).split())  # one line: the message spans several
            record.msg, record.args = "refused an HTTP request it cannot parse (400): %s", (reason,)
            record.exc_info, record.exc_text = None, None
        return True


_QUIET = _QuietBadRequests()


async def serve(
    app: web.Application, host: str, port: int, **runner_options: Any
) -> tuple[web.AppRunner, tuple[str, int]]:
    """Set ``app`` up and listen on ``host:port``; returns the runner (``cleanup()`` stops it) and the
    bound address (port 0: the port the system chose). When listening fails the runner is cleaned up
    and the ``OSError`` raised."""
    logging.getLogger("aiohttp.server").addFilter(_QUIET)  # once: a filter is added only once
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    address = runner.addresses[0]
    return runner, (str(address[0]), int(address[1]))

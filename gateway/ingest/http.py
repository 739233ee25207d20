"""DPI events over HTTP: ``POST /v1/events`` (RFC 9110 semantics, aiohttp server).

Request bodies (the schema is ``gateway.ingest.schema``):

- ``Content-Type: application/json``: one event object, or an array of them (RFC 8259);
- ``application/x-ndjson``, ``application/jsonl``, ``application/jsonlines``,
  ``application/x-jsonlines``: JSON lines, one event object per line.

Answers, always JSON ``{"accepted": n, "rejected": m, "errors": [{"line", "event_id"?, "error"}]}``
(``line`` as in ``schema.EventError``; at most ``MAX_ERRORS`` listed, ``errors_truncated`` says when
more were cut; ``rejected`` counts the refused events, a body that cannot be split into events, such
as broken JSON, or that holds none (an empty body, ``[]``), counting as one):

- 202 Accepted: at least one event was valid and all valid events are durably taken (journaled);
  bad events are listed and never stop the rest of the batch;
- 400 Bad Request: no valid event (the same body says why);
- 401 Unauthorized (``WWW-Authenticate: Bearer``, RFC 6750 section 3) when a token is configured
  and the request does not carry ``Authorization: Bearer <token>``;
- 413 Content Too Large: the body exceeds ``max_body_bytes`` (checked on Content-Length first, and
  while reading a chunked body);
- 415 Unsupported Media Type: another Content-Type;
- 503 Service Unavailable (``Retry-After: 1``): the sink could not take the events (the journal
  failed); nothing was accepted, the client should retry the whole batch.

The body is parsed in the event loop: validating an event straight into its ``UsageEvent`` costs
about 4 us on the 2-core development box, so a 10k-event batch holds the loop some 40 ms. Prefer
several batches of a few thousand to one huge one. A JSON-lines body is journaled as the lines that
were valid (``ParsedBatch.to_take``), not re-encoded event by event.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.http_site import serve
from gateway.ingest import EventSink
from gateway.ingest.pipeline import BadEventCounter
from gateway.ingest.schema import NO_EVENTS, EventError, ParsedBatch, parse_json, parse_json_lines
from protocols.errors import LocalProtocolError

__all__ = [
    "DEFAULT_MAX_BODY",
    "JSON_LINES_TYPES",
    "JSON_TYPES",
    "MAX_ERRORS",
    "SOURCE",
    "HttpIngest",
    "HttpIngestCounters",
    "build_app",
    "counters_of",
]

log = logging.getLogger(__name__)

SOURCE = "dpi:http"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_ERRORS = 1000
JSON_TYPES = frozenset({"application/json"})
JSON_LINES_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines"}
)

_COUNTERS: web.AppKey[HttpIngestCounters] = web.AppKey("counters")


class HttpIngestCounters:
    """Requests and events seen by the endpoint."""

    __slots__ = ("accepted", "rejected", "requests", "unavailable")

    def __init__(self) -> None:
        self.requests = 0
        self.accepted = 0
        self.rejected = 0
        self.unavailable = 0


def build_app(
    sink: EventSink,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    source: str = SOURCE,
) -> web.Application:
    """The aiohttp application serving ``POST /v1/events`` into ``sink``."""
    if max_body_bytes <= 0:
        raise LocalProtocolError("http ingest: max_body_bytes must be positive")
    counters = HttpIngestCounters()
    expected = f"Bearer {token}".encode() if token else None
    note_bad: Callable[[int], None] | None = sink.note_bad if isinstance(sink, BadEventCounter) else None

    async def post_events(request: web.Request) -> web.Response:
        counters.requests += 1
        if expected is not None and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), expected
        ):
            return _answer(
                401,
                0,
                0,
                [EventError(0, "missing or wrong bearer token")],
                {"WWW-Authenticate": 'Bearer realm="events"'},
            )
        content_type = request.content_type
        if content_type in JSON_TYPES:
            parse: Callable[[bytes, str], ParsedBatch] = parse_json
        elif content_type in JSON_LINES_TYPES:
            parse = parse_json_lines
        else:
            allowed = ", ".join(sorted(JSON_TYPES | JSON_LINES_TYPES))
            return _answer(
                415, 0, 0, [EventError(0, f"Content-Type {content_type!r} is not one of {allowed}")]
            )
        too_large = [EventError(0, f"body larger than {max_body_bytes} octets")]
        if request.content_length is not None and request.content_length > max_body_bytes:
            return _answer(413, 0, 0, too_large)
        try:
            body = await request.read()  # the app's client_max_size stops a longer chunked body
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, 0, 0, too_large)
        parsed = parse(body, source)
        if not parsed.events and not parsed.errors:  # "[]": refused, and the answer says why
            parsed = ParsedBatch([], [NO_EVENTS])
        rejected = len(parsed.errors)
        counters.rejected += rejected
        if rejected and note_bad is not None:
            note_bad(rejected)
        if not parsed.events:
            return _answer(400, 0, rejected, parsed.errors)
        try:
            await sink.take(parsed.to_take())
        except Exception as exc:  # any failure to take: nothing is ours, the client must retry
            counters.unavailable += 1
            log.error("http ingest: sink refused %d events: %s", len(parsed.events), exc)
            errors = [EventError(0, f"events not taken, retry later: {exc}"), *parsed.errors]
            return _answer(503, 0, len(parsed.events) + rejected, errors, {"Retry-After": "1"})
        counters.accepted += len(parsed.events)
        return _answer(202, len(parsed.events), rejected, parsed.errors)

    app = web.Application(client_max_size=max_body_bytes)
    app[_COUNTERS] = counters
    app.router.add_post("/v1/events", post_events)
    return app


def counters_of(app: web.Application) -> HttpIngestCounters:
    """The counters of an app ``build_app`` made."""
    return app[_COUNTERS]


def _answer(
    status: int, accepted: int, rejected: int, errors: list[EventError], headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "accepted": accepted,
        "rejected": rejected,
        "errors": [error.to_json() for error in errors[:MAX_ERRORS]],
    }
    if len(errors) > MAX_ERRORS:
        body["errors_truncated"] = True
    return web.json_response(body, status=status, headers=headers)


class HttpIngest:
    """``build_app`` served on ``host:port`` (port 0: a free one, see ``port`` after ``start``)."""

    def __init__(
        self,
        sink: EventSink,
        host: str = "127.0.0.1",
        port: int = 8081,
        *,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        source: str = SOURCE,
    ) -> None:
        self.host = host
        self.port = port
        self.app = build_app(sink, token=token, max_body_bytes=max_body_bytes, source=source)
        self._runner: web.AppRunner | None = None

    @property
    def counters(self) -> HttpIngestCounters:
        return counters_of(self.app)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1/events"

    async def start(self) -> None:
        self._runner, (_, self.port) = await serve(self.app, self.host, self.port, access_log=None)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HttpIngest:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

"""The admin HTTP API of a running gateway (issue #9, "Admin HTTP API"), on aiohttp.

``AdminServer(gateway, host=..., port=..., token=..., reload=...)``; ``await start()`` listens and
returns the bound ``(host, port)``; ``await stop()``. Every route, and every path that is no route,
needs ``Authorization: Bearer <token>`` (RFC 6750 section 2.1): without it, with another token, or with
two ``Authorization`` headers (a singleton field, RFC 9110 section 5.3), the answer is 401 with
``WWW-Authenticate: Bearer`` and the same fixed body whatever was asked, before any routing (so a 401
does not even tell whether the path exists). The token is compared in constant
time (``hmac.compare_digest`` of SHA-256 digests, so not even its length shows in the timing).

Bodies are JSON (RFC 8259); an error is ``{"error": "<one line>"}``. The routes (``OPENAPI``, served at
``GET /openapi.json``, describes each with its answers):

``GET /health/live``
    200 ``{"status": "alive"}`` while the process serves requests.
``GET /health/ready``
    200 ``{"status": "ready", ...}`` or 503 ``{"status": "not ready", "reasons": [...], ...}``, with one
    entry per check in ``checks``: ``smpp`` (the bind is up), ``diameter`` when the gateway runs a
    Diameter peer (the listener is up and every outgoing peer of ``connect_to`` has finished its
    capabilities exchange; peers that connect to us are counted, not required: the network decides
    when they come), ``store`` (the campaign store is writable).
    The store probe: a second SQLite connection opens the store's file read-write, takes the write lock
    (``BEGIN IMMEDIATE``, waiting at most ``store_probe_timeout`` for another writer), rewrites the
    schema-version row with its own value and rolls back. It proves the file can be opened for writing
    and locked (not read-only, not deleted, no process holding the lock) without changing a byte; it
    runs in a worker thread so the event loop never waits on the disk. It cannot see a full disk
    (nothing reaches the disk): the store's own writes report that.
``GET /v1/campaigns``
    ``{"campaigns": [...]}``: each campaign of the directory with ``status`` running / paused / disabled.
``GET /v1/campaigns/{campaign_id}``
    The campaign's status and its configuration (``config``); 404 for an unknown id.
``POST /v1/campaigns/{campaign_id}/pause`` and ``.../resume``
    ``Gateway.pause`` / ``resume`` (kept across restarts; offers in progress run to their end); the
    campaign's status; 404 for an unknown id.
``POST /v1/campaigns/reload``
    Calls ``reload`` when the server was given one (``tgw run``'s configuration reload), else
    ``Gateway.reload()``; 200 ``{"status": "reloaded", ...}`` with the fields of what the reload
    reported, or 422 with the reason (file, line, what is wrong) when the configuration is wrong (the
    reload raised ``ConfigError`` or reported an ``error``), and then nothing changed. One reload at a
    time. ``set_token`` changes the token (a reloaded configuration's).
``GET /v1/subscribers/{msisdn}/explain``
    The decision trail of ``tgw explain``: ``records`` (one JSON object per record, as ``tgw explain
    --json`` writes them), ``pending`` (the subscriber's commands still in the outbox) and ``text``
    (what ``tgw explain`` prints); 404 when the store holds nothing about the MSISDN.
``GET /v1/kpis``
    ``{"kpis": [KpiRow.to_json(), ...], "table": "<the tgw replay table>"}`` over the whole decision
    trail, read in a worker thread through a read-only connection (WAL readers never block the
    gateway's writes, and the loop keeps serving the network meanwhile).
``POST /v1/messages/test``
    ``{"to": "<MSISDN>", "text": "..."}``: one SMS (split when long, at most ``MAX_TEST_PARTS`` parts)
    from the gateway's short code over its SMPP bind with a delivery receipt requested;
    ``{"message_ids": [...]}`` one per part. 400 for a bad body, 503 when SMPP is not bound, 502 when
    the SMSC refuses, 504 when it does not answer within ``send_timeout``.
``GET /metrics``
    The Prometheus text format (``gateway.metrics.GatewayMetrics``).
``GET /openapi.json``
    The OpenAPI 3.1 document of this API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import io
import json
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from campaign_core.codec import command_from_json
from campaign_core.kpis import KpiRow, compute_kpis, render_kpi_table
from campaign_core.model import Record
from gateway.app import CampaignStatus, Gateway
from gateway.campaigns.cli import attribution_windows, explain
from gateway.http_site import serve
from gateway.logs import log_ids
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.smpp.client import SubmitError
from gateway.storage.sqlite_base import sqlite_uri
from protocols.errors import ConfigError, DecodeError, GatewayError, LocalProtocolError, TransportError
from protocols.gsm.alphabet import parts_needed

__all__ = ["MAX_TEST_PARTS", "OPENAPI", "AdminServer", "Reload"]

log = logging.getLogger(__name__)

Reload = Callable[[], Awaitable[object]]
"""A reload that reports what it did (``_outcome_json``): a dataclass (the gateway's ``ReloadResult``,
``tgw run``'s configuration reload outcome) or a mapping, of JSON-able fields. It refuses a bad
configuration by raising ``ConfigError`` or by reporting a non-empty ``error`` field."""

MAX_TEST_PARTS: Final = 10
"""The most SMS parts a test message may take."""

_MAX_BODY = 64 * 1024
_MSISDN = re.compile(r"\+?[0-9]{1,20}\Z")
_UNAUTHORIZED_BODY = {"error": "unauthorized"}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": _one_line(message)}, status=status, headers=headers)


def _status_json(status: CampaignStatus) -> dict[str, object]:
    state = "paused" if status.paused else "running" if status.enabled else "disabled"
    return {
        "id": status.campaign_id,
        "name": status.name,
        "status": state,
        "enabled": status.enabled,
        "paused": status.paused,
        "trigger": status.trigger,
        "source": status.source,
    }


def _outcome_json(outcome: object) -> dict[str, object]:
    """The fields of a reload's outcome (a dataclass or a mapping; anything else as ``outcome``)."""
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return dataclasses.asdict(outcome)
    if isinstance(outcome, Mapping):
        return {str(key): value for key, value in outcome.items()}
    return {} if outcome is None else {"outcome": str(outcome)}


def _dumps(data: object) -> str:
    """JSON of a reload outcome: tuples as arrays, anything else JSON does not know as its string."""
    return json.dumps(data, default=str)


def _probe_store(path: str, timeout: float) -> str | None:
    """None when the SQLite file at ``path`` takes a write transaction, else why not (see the module
    docstring: nothing is changed)."""
    if path == ":memory:":
        return None
    try:
        db = sqlite3.connect(sqlite_uri(path, "rw"), uri=True, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        return f"campaign store {path} cannot be opened for writing: {exc}"
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE schema_version SET version = version")
        finally:
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"campaign store {path} is not writable: {exc}"
    finally:
        db.close()
    return None


def _read_kpis(path: str, windows: Mapping[str, float]) -> list[KpiRow]:
    """The KPI rows of every record of the campaign store at ``path``, through a read-only connection
    (the ``records`` table's JSON ``body``, as ``gateway.campaigns.store`` writes it)."""
    db = sqlite3.connect(sqlite_uri(path, "ro"), uri=True, timeout=5.0)
    try:

        def records() -> Iterator[Record]:
            for row_id, body in db.execute("SELECT id, body FROM records ORDER BY id"):
                try:
                    record = command_from_json(json.loads(body))
                except (ValueError, DecodeError) as exc:
                    raise GatewayError(f"campaign store {path}: record {row_id} is corrupt: {exc}") from None
                if isinstance(record, Record):
                    yield record

        return compute_kpis(records(), windows=windows)
    finally:
        db.close()


class AdminServer:
    """The admin API of ``gateway`` on ``host``:``port`` (0: any free port); see the module docstring.

    ``metrics``: the ``GatewayMetrics`` to serve (a new one, observing ``gateway``, when None).
    ``send_timeout``: how long ``POST /v1/messages/test`` waits for the SMSC."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        host: str = "127.0.0.1",
        port: int = 8088,
        token: str,
        reload: Reload | None = None,
        metrics: GatewayMetrics | None = None,
        send_timeout: float = 30.0,
        store_probe_timeout: float = 1.0,
    ) -> None:
        if not token:
            raise ValueError("the admin API needs a token")
        self.gateway = gateway
        self.host = host
        self.port = port
        self.metrics = metrics if metrics is not None else GatewayMetrics(gateway)
        self.send_timeout = send_timeout
        self.store_probe_timeout = store_probe_timeout
        self._token_digest = hashlib.sha256(token.encode()).digest()
        self._reload = reload
        self._reload_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound address."""
        # stop waits this long for the requests in progress
        self._runner, (self.host, self.port) = await serve(
            self.app, self.host, self.port, access_log=None, shutdown_timeout=5.0
        )
        log.info("admin API listening on %s:%d", self.host, self.port)
        return self.host, self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AdminServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self) -> set[tuple[str, str]]:
        """``(METHOD, path template)`` of every route served (what ``OPENAPI`` must describe)."""
        found: set[tuple[str, str]] = set()
        for route in self.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter")
            if isinstance(path, str):
                found.add((route.method, path))
        return found

    # --- the application -------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=_MAX_BODY)
        router = app.router
        router.add_get("/health/live", self._live, allow_head=False)
        router.add_get("/health/ready", self._ready, allow_head=False)
        router.add_get("/v1/campaigns", self._campaigns, allow_head=False)
        router.add_post("/v1/campaigns/reload", self._reload_campaigns)
        router.add_get("/v1/campaigns/{campaign_id}", self._campaign, allow_head=False)
        router.add_post("/v1/campaigns/{campaign_id}/pause", self._pause)
        router.add_post("/v1/campaigns/{campaign_id}/resume", self._resume)
        router.add_get("/v1/subscribers/{msisdn}/explain", self._explain, allow_head=False)
        router.add_get("/v1/kpis", self._kpis, allow_head=False)
        router.add_post("/v1/messages/test", self._test_message)
        router.add_get("/metrics", self._metrics, allow_head=False)
        router.add_get("/openapi.json", self._openapi, allow_head=False)
        return app

    def _authorized(self, headers: Sequence[str]) -> bool:
        scheme, _, credentials = (headers[0] if headers else "").partition(" ")
        # aiohttp decodes header bytes that are not UTF-8 as surrogate escapes: back to those bytes
        given = hashlib.sha256(credentials.strip().encode("utf-8", "surrogateescape")).digest()
        # compare whatever came, so a missing header costs the same as a wrong token
        same = hmac.compare_digest(given, self._token_digest)
        # Authorization is a singleton field (RFC 9110 section 5.3): with two, which one counts depends
        # on the hop (a proxy may check the last, we would read the first), so neither is taken
        return same and scheme.lower() == "bearer" and len(headers) == 1

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not self._authorized(request.headers.getall("Authorization", [])):
            return web.json_response(_UNAUTHORIZED_BODY, status=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own answers: 404, 405, 413 ...
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return _error(exc.status, exc.reason, headers)
        except Exception:
            log.exception("admin API: %s %s failed", request.method, request.path)
            return _error(500, "internal error (see the gateway's log)")

    # --- health ----------------------------------------------------------------------------------------

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _ready(self, request: web.Request) -> web.Response:
        gateway = self.gateway
        checks: dict[str, dict[str, object]] = {}
        smpp = gateway.smpp
        where = f"{smpp.config.host}:{smpp.config.port}"
        checks["smpp"] = {
            "ok": smpp.is_bound,
            "detail": f"SMPP bound to {where}" if smpp.is_bound else f"SMPP not bound to {where}",
        }
        ingest = gateway.ingest
        if ingest.diameter is not None:
            problems: list[str] = []
            if ingest.diameter_address is None:
                problems.append("the Diameter listener is not up")
            problems += [
                f"Diameter peer {client.peer_host}:{client.peer_port} not open"
                for client in ingest.diameter_clients
                if not client.is_open
            ]
            peers = len(ingest.diameter.open_peers) + sum(
                len(client.open_peers) for client in ingest.diameter_clients
            )
            checks["diameter"] = {
                "ok": not problems,
                "detail": "; ".join(problems) if problems else f"Diameter up, {peers} open peer(s)",
                "open_peers": peers,
            }
        problem = await asyncio.to_thread(_probe_store, gateway.store.path, self.store_probe_timeout)
        checks["store"] = {"ok": problem is None, "detail": problem or "campaign store writable"}
        reasons = [str(check["detail"]) for check in checks.values() if not check["ok"]]
        if reasons:
            return web.json_response(
                {"status": "not ready", "reasons": reasons, "checks": checks}, status=503
            )
        return web.json_response({"status": "ready", "reasons": [], "checks": checks})

    # --- campaigns -------------------------------------------------------------------------------------

    def _status_of(self, campaign_id: str) -> CampaignStatus | None:
        return next((s for s in self.gateway.campaign_status() if s.campaign_id == campaign_id), None)

    async def _campaigns(self, request: web.Request) -> web.Response:
        return web.json_response({"campaigns": [_status_json(s) for s in self.gateway.campaign_status()]})

    async def _campaign(self, request: web.Request) -> web.Response:
        campaign_id = request.match_info["campaign_id"]
        status = self._status_of(campaign_id)
        config = self.gateway.loaded.campaign(campaign_id)
        if status is None or config is None:
            return _error(404, f"no campaign {campaign_id!r}")
        return web.json_response({**_status_json(status), "config": config.model_dump(mode="json")})

    async def _pause(self, request: web.Request) -> web.Response:
        return self._pause_or_resume(request, pause=True)

    async def _resume(self, request: web.Request) -> web.Response:
        return self._pause_or_resume(request, pause=False)

    def _pause_or_resume(self, request: web.Request, *, pause: bool) -> web.Response:
        campaign_id = request.match_info["campaign_id"]
        try:
            if pause:
                self.gateway.pause(campaign_id)
            else:
                self.gateway.resume(campaign_id)
        except KeyError:
            return _error(404, f"no campaign {campaign_id!r}")
        log.info(
            "admin API: campaign %s", "paused" if pause else "resumed", extra=log_ids(campaign_id=campaign_id)
        )
        status = self._status_of(campaign_id)
        assert status is not None  # pause() raised KeyError otherwise
        return web.json_response(_status_json(status))

    async def _reload_campaigns(self, request: web.Request) -> web.Response:
        fields: dict[str, object] = {}
        async with self._reload_lock:
            try:
                outcome = await self._reload() if self._reload is not None else self.gateway.reload()
            except ConfigError as exc:
                refused: object = str(exc)
            else:
                fields = _outcome_json(outcome)
                refused = fields.pop("error", None)
        if refused:
            log.warning("admin API: reload refused: %s", refused)
            return _error(422, str(refused))
        log.info("admin API: reloaded")
        return web.json_response({"status": "reloaded", **fields}, dumps=_dumps)

    def set_token(self, token: str) -> None:
        """Require ``token`` from now on (a configuration reload changed it)."""
        if not token:
            raise ValueError("the admin API needs a token")
        self._token_digest = hashlib.sha256(token.encode()).digest()

    # --- subscribers and KPIs --------------------------------------------------------------------------

    async def _explain(self, request: web.Request) -> web.Response:
        msisdn = request.match_info["msisdn"]
        if not _MSISDN.match(msisdn):
            return _error(400, "the MSISDN must be 1 to 20 digits, optionally after a +")
        msisdn = msisdn.removeprefix("+")
        store = self.gateway.store
        as_json = io.StringIO()
        found = explain(store, msisdn, as_json, as_json=True)
        lines = [json.loads(line) for line in as_json.getvalue().splitlines() if line]
        if not lines:
            return _error(404, f"nothing recorded about {msisdn}")
        text = io.StringIO()
        explain(store, msisdn, text)
        records = lines[:found]
        pending = [{key: value for key, value in line.items() if key != "pending"} for line in lines[found:]]
        return web.json_response(
            {"msisdn": msisdn, "records": records, "pending": pending, "text": text.getvalue()}
        )

    async def _kpis(self, request: web.Request) -> web.Response:
        gateway = self.gateway
        windows = attribution_windows(gateway.campaigns)
        path = gateway.store.path
        if path == ":memory:":
            rows = compute_kpis(gateway.store.records(), windows=windows)
        else:
            rows = await asyncio.to_thread(_read_kpis, path, windows)
        return web.json_response({"kpis": [row.to_json() for row in rows], "table": render_kpi_table(rows)})

    # --- test message ----------------------------------------------------------------------------------

    async def _test_message(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        except RecursionError:  # the decoder recurses per level of nesting; 64 KiB of "[" is enough
            return _error(400, "the body is not JSON that can be read: nested too deeply")
        checked = _test_message_fields(body)
        if isinstance(checked, str):
            return _error(400, checked)
        to, text = checked
        smpp = self.gateway.smpp
        if not smpp.is_bound:
            return _error(503, "SMPP is not bound: the message cannot be sent now")
        try:
            results = await asyncio.wait_for(
                smpp.send_text(self.gateway.settings.short_code, to, text, registered_delivery=1),
                self.send_timeout,
            )
        except SubmitError as exc:
            return _error(502, f"the SMSC refused the message: {exc}")
        except TransportError as exc:
            return _error(503, f"the message could not be sent: {exc}")
        except TimeoutError:
            return _error(504, f"the SMSC did not answer within {self.send_timeout:g} s")
        ids = [result.message_id for result in results]
        log.info("admin API: test message sent as %s", ", ".join(ids), extra=log_ids(msisdn=to))
        return web.json_response({"message_ids": ids})

    # --- metrics and the document ---------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)


def _test_message_fields(body: object) -> tuple[str, str] | str:
    """``(to, text)`` of a ``POST /v1/messages/test`` body, or what is wrong with it."""
    if not isinstance(body, dict):
        return 'the body must be an object {"to": "<MSISDN>", "text": "..."}'
    unknown = sorted(set(body) - {"to", "text"})
    if unknown:
        return f"unknown member {unknown[0]!r} (expected to and text)"
    to, text = body.get("to"), body.get("text")
    if not isinstance(to, str) or not _MSISDN.match(to):
        return "to: expected an MSISDN (1 to 20 digits, optionally after a +)"
    if not isinstance(text, str) or not text:
        return "text: expected a non-empty string"
    try:
        parts = parts_needed(text)
    except LocalProtocolError as exc:  # e.g. an unpaired surrogate (a JSON u+d800 escape): no coding has it
        return f"text: {exc}"
    if parts > MAX_TEST_PARTS:
        return f"text: needs {parts} SMS parts, at most {MAX_TEST_PARTS} are sent"
    return to.removeprefix("+"), text


# --- the OpenAPI document ---------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: Mapping[str, object], description: str) -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error_answer(description: str) -> dict[str, object]:
    return _content(_ref("Error"), description)


_UNAUTHORIZED: Final = {"$ref": "#/components/responses/Unauthorized"}


def _operation(
    operation_id: str,
    summary: str,
    responses: Mapping[str, object],
    *,
    parameters: Sequence[Mapping[str, object]] = (),
    body: Mapping[str, object] | None = None,
    tag: str,
) -> dict[str, object]:
    operation: dict[str, object] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, "401": _UNAUTHORIZED},
    }
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


_CAMPAIGN_ID: Final = {
    "name": "campaign_id",
    "in": "path",
    "required": True,
    "description": "The campaign's id (its file's `id`)",
    "schema": {"type": "string"},
}
_MSISDN_PARAMETER: Final = {
    "name": "msisdn",
    "in": "path",
    "required": True,
    "description": "The subscriber's MSISDN (E.164 digits, an optional leading +)",
    "schema": {"type": "string", "pattern": r"^\+?[0-9]{1,20}$"},
}
_NOT_FOUND: Final = _error_answer("No campaign with this id")

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Telecom campaign gateway: admin API",
        "version": "1",
        "description": (
            "Health, campaigns, subscribers' decision trails, KPIs, a test message and Prometheus metrics "
            "of a running gateway. Every path needs `Authorization: Bearer <token>` (the admin token of "
            "the gateway's configuration); without it or with another token every request, to any path, "
            'is answered 401 and nothing else. Errors are `{"error": "<one line>"}`.'
        ),
    },
    "security": [{"bearer": []}],
    "paths": {
        "/health/live": {
            "get": _operation(
                "live",
                "Liveness: the process serves requests",
                {"200": _content(_ref("Alive"), "Alive")},
                tag="health",
            )
        },
        "/health/ready": {
            "get": _operation(
                "ready",
                "Readiness: SMPP bound, Diameter peers open (when configured), campaign store writable",
                {
                    "200": _content(_ref("Readiness"), "Ready"),
                    "503": _content(_ref("Readiness"), "Not ready: `reasons` says why"),
                },
                tag="health",
            )
        },
        "/v1/campaigns": {
            "get": _operation(
                "listCampaigns",
                "Every campaign of the directory with its status",
                {
                    "200": _content(
                        {
                            "type": "object",
                            "required": ["campaigns"],
                            "properties": {"campaigns": {"type": "array", "items": _ref("CampaignStatus")}},
                        },
                        "The campaigns",
                    )
                },
                tag="campaigns",
            )
        },
        "/v1/campaigns/reload": {
            "post": _operation(
                "reloadCampaigns",
                "Read the configuration again and run it; a wrong one is refused and nothing changes",
                {
                    "200": _content(_ref("ReloadOutcome"), "Reloaded"),
                    "422": _error_answer("The configuration is wrong (file:line: reason); nothing changed"),
                },
                tag="campaigns",
            )
        },
        "/v1/campaigns/{campaign_id}": {
            "get": _operation(
                "getCampaign",
                "One campaign: its status and configuration",
                {
                    "200": _content(
                        {
                            "allOf": [
                                _ref("CampaignStatus"),
                                {
                                    "type": "object",
                                    "required": ["config"],
                                    "properties": {
                                        "config": {"type": "object", "description": "The campaign's file"}
                                    },
                                },
                            ]
                        },
                        "The campaign",
                    ),
                    "404": _NOT_FOUND,
                },
                parameters=[_CAMPAIGN_ID],
                tag="campaigns",
            )
        },
        "/v1/campaigns/{campaign_id}/pause": {
            "post": _operation(
                "pauseCampaign",
                "No new journeys of the campaign (offers in progress run to their end); kept across restarts",
                {"200": _content(_ref("CampaignStatus"), "Paused"), "404": _NOT_FOUND},
                parameters=[_CAMPAIGN_ID],
                tag="campaigns",
            )
        },
        "/v1/campaigns/{campaign_id}/resume": {
            "post": _operation(
                "resumeCampaign",
                "New journeys of the campaign again",
                {"200": _content(_ref("CampaignStatus"), "Resumed"), "404": _NOT_FOUND},
                parameters=[_CAMPAIGN_ID],
                tag="campaigns",
            )
        },
        "/v1/subscribers/{msisdn}/explain": {
            "get": _operation(
                "explainSubscriber",
                "The subscriber's decision trail (what `tgw explain` prints)",
                {
                    "200": _content(_ref("Explanation"), "The decision trail"),
                    "400": _error_answer("Not an MSISDN"),
                    "404": _error_answer("Nothing recorded about the MSISDN"),
                },
                parameters=[_MSISDN_PARAMETER],
                tag="subscribers",
            )
        },
        "/v1/kpis": {
            "get": _operation(
                "kpis",
                "Campaign KPIs per campaign and variant, over the whole decision trail",
                {
                    "200": _content(
                        {
                            "type": "object",
                            "required": ["kpis", "table"],
                            "properties": {
                                "kpis": {"type": "array", "items": _ref("KpiRow")},
                                "table": {"type": "string", "description": "The table `tgw replay` prints"},
                            },
                        },
                        "The KPI rows",
                    )
                },
                tag="kpis",
            )
        },
        "/v1/messages/test": {
            "post": _operation(
                "sendTestMessage",
                "Send one SMS from the gateway's short code over its SMPP bind (delivery receipt requested)",
                {
                    "200": _content(
                        {
                            "type": "object",
                            "required": ["message_ids"],
                            "properties": {
                                "message_ids": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "description": "The SMSC's message id of each part",
                                }
                            },
                        },
                        "Accepted by the SMSC",
                    ),
                    "400": _error_answer("A wrong body"),
                    "502": _error_answer("The SMSC refused the message"),
                    "503": _error_answer("SMPP is not bound"),
                    "504": _error_answer("The SMSC did not answer in time"),
                },
                body={
                    "type": "object",
                    "required": ["to", "text"],
                    "additionalProperties": False,
                    "properties": {
                        "to": {"type": "string", "pattern": r"^\+?[0-9]{1,20}$"},
                        "text": {
                            "type": "string",
                            "minLength": 1,
                            "description": f"At most {MAX_TEST_PARTS} SMS parts",
                        },
                    },
                },
                tag="messages",
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics (text exposition format)",
                {
                    "200": {
                        "description": "The metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                tag="metrics",
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document",
                {"200": _content({"type": "object"}, "The OpenAPI 3.1 document")},
                tag="meta",
            )
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Unauthorized": {
                "description": "No bearer token or another one; the same answer for every path",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
                "content": {"application/json": {"schema": _ref("Error")}},
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string", "description": "What went wrong, one line"}},
            },
            "Alive": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "alive"}},
            },
            "Readiness": {
                "type": "object",
                "required": ["status", "reasons", "checks"],
                "properties": {
                    "status": {"enum": ["ready", "not ready"]},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "checks": {
                        "type": "object",
                        "description": "smpp, store, and diameter when configured",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["ok", "detail"],
                            "properties": {
                                "ok": {"type": "boolean"},
                                "detail": {"type": "string"},
                                "open_peers": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "CampaignStatus": {
                "type": "object",
                "required": ["id", "name", "status", "enabled", "paused", "trigger", "source"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "status": {"enum": ["running", "paused", "disabled"]},
                    "enabled": {"type": "boolean", "description": "`enabled` in its file"},
                    "paused": {"type": "boolean", "description": "Paused through this API"},
                    "trigger": {"type": "string"},
                    "source": {"type": "string", "description": "Its file"},
                },
            },
            "ReloadOutcome": {
                "type": "object",
                "required": ["status"],
                "description": (
                    "What the reload reported: the campaign directory's reload gives campaigns, "
                    "dropped_offers and unknown_paused; the configuration reload of `tgw run` gives what "
                    "it applied and what needs a restart"
                ),
                "additionalProperties": True,
                "properties": {
                    "status": {"const": "reloaded"},
                    "campaigns": {"type": "array", "items": {"type": "string"}},
                    "applied": {"type": "array", "items": {"type": "string"}},
                    "restart_needed": {"type": "array", "items": {"type": "string"}},
                    "dropped_offers": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Open offers whose campaign is gone or changed beyond continuing",
                    },
                    "unknown_paused": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Paused ids the directory no longer has",
                    },
                },
            },
            "Explanation": {
                "type": "object",
                "required": ["msisdn", "records", "pending", "text"],
                "properties": {
                    "msisdn": {"type": "string"},
                    "records": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "The records in order (`tgw explain --json`)",
                    },
                    "pending": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "Commands for the subscriber still in the outbox",
                    },
                    "text": {"type": "string", "description": "What `tgw explain` prints"},
                },
            },
            "KpiRow": {
                "type": "object",
                "properties": {
                    "campaign_id": {"type": "string"},
                    "variant": {"type": ["string", "null"]},
                    "control": {"type": "boolean"},
                    "experiment": {"type": ["string", "null"]},
                    "triggers": {"type": "integer"},
                    "offers": {"type": "integer"},
                    "contacts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "responses": {"type": "integer"},
                    "declined": {"type": "integer"},
                    "activations": {"type": "integer"},
                    "revenue": {"type": "string", "description": "Decimal"},
                    "credit_volume": {"type": "string", "description": "Decimal"},
                    "conversion": {"type": ["number", "null"]},
                    "uplift": {"type": ["number", "null"]},
                    "latency_p50": {"type": ["number", "null"]},
                    "latency_p90": {"type": ["number", "null"]},
                    "latency_p99": {"type": ["number", "null"]},
                },
            },
        },
    },
}
"""The OpenAPI 3.1 document of the admin API (``GET /openapi.json``)."""

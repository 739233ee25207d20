"""The control channel of a running SMSC simulator: handsets over HTTP, for ``tgw handset``.

``tgw sim smsc --control HOST:PORT`` serves this next to the SMPP port, so a tester in another shell
can dial USSD codes through the simulator's relay (``SmscSimulator.dial``; USSD over SMPP 3.4 with
``ussd_service_op`` / ``its_session_info``, PROTOCOLS.md 1.1) and read the screens the bound gateway
sends back. HTTP/1.1 with JSON bodies (RFC 9110, RFC 8259); every error answer is
``{"error": "<one line>"}``.

==========================================  =========================================================
``GET  /health``                            ``{"bound": [system_id, ...], "ussd_sessions": n}``
``POST /ussd/dial``                         body ``{"msisdn", "code", "timeout"?}`` (timeout: for the
                                            gateway to take the PSSR indication, default 10 s) ->
                                            ``{"session": id, "msisdn", "session_id"}``
``GET  /ussd/sessions/{id}/screen``         ``?timeout=S`` (default 30) -> the next screen
                                            ``{"text", "kind", "label", "final", "sequence"}``
``POST /ussd/sessions/{id}/reply``          body ``{"text", "timeout"?}`` -> ``{}``: a USSR confirm
``POST /ussd/sessions/{id}/release``        the user presses Cancel (the gateway is told) -> ``{}``
``POST /ussd/sessions/{id}/abandon``        the user walks away (the gateway is not told) -> ``{}``
``POST /ussd/listen``                       body ``{"msisdn", "timeout"?}`` (default 30 s): the next
                                            session the gateway opens to ``msisdn`` (a network-
                                            initiated USSR / USSN) -> ``{"session": id, ...}``
==========================================  =========================================================

``kind`` is ``continue`` (answer it with ``reply``), ``final``, ``notification``, ``released`` (the
gateway aborted) or ``timeout`` (the network gave up); ``final`` is true on the last screen.

Statuses: 400 a malformed request or a text the screen cannot carry; 404 no such session; 409 the
session does not ask for input; 410 the session is over and every screen was read; 502 the gateway
refused; 503 no gateway bound; 504 nothing came within the timeout. The first ``listen`` for an msisdn
registers it as a handset for network-initiated sessions until the simulator stops; sessions that
arrive while nobody listens wait in a queue (the last 100).

``ControlClient`` is the asyncio client ``tgw handset`` uses; its errors are ``ControlError`` with the
HTTP status (0: the control port could not be reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict, deque
from typing import Any

import aiohttp
from aiohttp import web

from protocols.errors import LocalProtocolError, TransportError
from simulators.smsc import SmscSimulator, UssdError, UssdScreen, UssdSession

__all__ = ["ControlClient", "ControlError", "SmscControl"]

log = logging.getLogger(__name__)

_MAX_SESSIONS = 10_000  # sessions kept for the HTTP side; the oldest over are dropped
_MAX_QUEUED = 100  # network-initiated sessions kept per msisdn while nobody listens
_MAX_WAIT = 600.0  # the longest wait a request may ask for
_STATUS_OF_CAUSE = {"unbound": 503, "timeout": 504, "refused": 502, "busy": 503, "ended": 410}


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def screen_json(screen: UssdScreen) -> dict[str, Any]:
    return {
        "text": screen.text,
        "kind": screen.kind.value,
        "label": screen.label,
        "final": screen.final,
        "sequence": screen.sequence,
    }


class _BadRequest(Exception):
    pass


def _field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None or not isinstance(value, kind) or isinstance(value, bool):
        raise _BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


def _timeout(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise _BadRequest(f"timeout {value!r} is not a number of seconds") from None
    if not 0 < seconds <= _MAX_WAIT:
        raise _BadRequest(f"timeout must be within 0..{_MAX_WAIT:g} s")
    return seconds


class SmscControl:
    """The HTTP control channel of ``smsc`` (see the module docstring)."""

    def __init__(self, smsc: SmscSimulator) -> None:
        self.smsc = smsc
        self._sessions: OrderedDict[str, UssdSession] = OrderedDict()
        self._ids = itertools.count(1)
        self._incoming: dict[str, deque[UssdSession]] = {}
        self._listeners: dict[str, asyncio.Event] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False
        app = web.Application()
        app.add_routes(
            [
                web.get("/health", self._health),
                web.post("/ussd/dial", self._dial),
                web.get("/ussd/sessions/{id}/screen", self._screen),
                web.post("/ussd/sessions/{id}/reply", self._reply),
                web.post("/ussd/sessions/{id}/release", self._release),
                web.post("/ussd/sessions/{id}/abandon", self._abandon),
                web.post("/ussd/listen", self._listen),
            ]
        )
        self.app = app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        return str(address[0]), int(address[1])

    async def stop(self) -> None:
        self._closing = True
        for msisdn in self._incoming:
            self.smsc.unregister_ussd_handset(msisdn)
        for event in self._listeners.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- sessions ---

    def _keep(self, session: UssdSession) -> str:
        handle = f"s{next(self._ids)}"
        sessions = self._sessions
        sessions[handle] = session
        if len(sessions) > _MAX_SESSIONS:
            victim = next((h for h, s in sessions.items() if s.ended), next(iter(sessions)))
            del sessions[victim]
        return handle

    def _session(self, request: web.Request) -> UssdSession:
        session = self._sessions.get(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text='{"error": "no such session"}', content_type="application/json")
        return session

    def _described(self, handle: str, session: UssdSession) -> dict[str, Any]:
        return {
            "session": handle,
            "msisdn": session.msisdn,
            "session_id": session.session_id,
            "service_code": session.service_code,
            "network_initiated": session.network_initiated,
        }

    def _on_network_session(self, session: UssdSession) -> None:
        queue = self._incoming.setdefault(session.msisdn, deque(maxlen=_MAX_QUEUED))
        queue.append(session)
        event = self._listeners.get(session.msisdn)
        if event is not None:
            event.set()

    # --- handlers ---

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"bound": self.smsc.bound_system_ids, "ussd_sessions": len(self.smsc.ussd_sessions)}
        )

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _BadRequest("the body is not JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("the body must be a JSON object")
        return body

    async def _dial(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            msisdn = _field(body, "msisdn", str)
            code = _field(body, "code", str)
            timeout = _timeout(body.get("timeout"), 10.0)
        except _BadRequest as exc:
            return _error(400, str(exc))
        try:
            session = await self.smsc.dial(msisdn, code, timeout=timeout)
        except LocalProtocolError as exc:
            return _error(400, str(exc))
        except UssdError as exc:
            return _error(_STATUS_OF_CAUSE[exc.cause], str(exc))
        handle = self._keep(session)
        return web.json_response(self._described(handle, session))

    async def _screen(self, request: web.Request) -> web.Response:
        session = self._session(request)
        try:
            timeout = _timeout(request.query.get("timeout"), 30.0)
        except _BadRequest as exc:
            return _error(400, str(exc))
        try:
            screen = await session.next_screen(timeout)
        except TimeoutError:
            return _error(504, f"no screen within {timeout:g} s")
        except UssdError as exc:
            return _error(410, str(exc))
        return web.json_response(screen_json(screen))

    async def _reply(self, request: web.Request) -> web.Response:
        session = self._session(request)
        try:
            body = await self._body(request)
            text = _field(body, "text", str)
            timeout = _timeout(body.get("timeout"), 10.0)
        except _BadRequest as exc:
            return _error(400, str(exc))
        if not session.awaiting_input:
            reason = session.end_reason or "no screen asks for input"
            return _error(409, f"cannot reply: {reason}")
        try:
            await session.reply(text, timeout=timeout)
        except LocalProtocolError as exc:
            return _error(400, str(exc))
        except UssdError as exc:
            return _error(_STATUS_OF_CAUSE[exc.cause], str(exc))
        return web.json_response({})

    async def _release(self, request: web.Request) -> web.Response:
        await self._session(request).release()
        return web.json_response({})

    async def _abandon(self, request: web.Request) -> web.Response:
        self._session(request).abandon()
        return web.json_response({})

    async def _listen(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            msisdn = _field(body, "msisdn", str)
            timeout = _timeout(body.get("timeout"), 30.0)
        except _BadRequest as exc:
            return _error(400, str(exc))
        if msisdn not in self._incoming:
            self._incoming[msisdn] = deque(maxlen=_MAX_QUEUED)
            self.smsc.register_ussd_handset(msisdn, self._on_network_session)
        queue = self._incoming[msisdn]
        event = self._listeners.setdefault(msisdn, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not queue:
                    event.clear()
                    await event.wait()
                    if self._closing:
                        break
        if not queue:
            return _error(504, f"no session opened to {msisdn} within {timeout:g} s")
        session = queue.popleft()
        handle = self._keep(session)
        return web.json_response(self._described(handle, session))


class ControlError(TransportError):
    """A control request failed: ``status`` is the HTTP status (0: the port could not be reached)."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.status = status


class ControlClient:
    """The asyncio client of ``SmscControl`` at ``http://host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.base = f"http://{host}:{port}"
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ControlClient:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _call(
        self, method: str, path: str, wait: float, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        assert self._http is not None, "use ControlClient as an async context manager"
        try:
            async with self._http.request(
                method,
                self.base + path,
                json=body,
                timeout=aiohttp.ClientTimeout(total=wait + 10.0),
            ) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    raise ControlError(
                        f"{self.base}{path} answered {response.status} without a JSON object", response.status
                    )
                if response.status != 200:
                    raise ControlError(str(data.get("error", "unknown error")), response.status)
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ControlError(
                f"cannot reach the SMSC simulator's control channel at {self.base}: {exc}"
            ) from None

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health", 5.0)

    async def dial(self, msisdn: str, code: str, timeout: float = 10.0) -> dict[str, Any]:
        return await self._call(
            "POST", "/ussd/dial", timeout, {"msisdn": msisdn, "code": code, "timeout": timeout}
        )

    async def screen(self, session: str, timeout: float = 30.0) -> dict[str, Any]:
        return await self._call("GET", f"/ussd/sessions/{session}/screen?timeout={timeout:g}", timeout)

    async def reply(self, session: str, text: str, timeout: float = 10.0) -> None:
        await self._call(
            "POST", f"/ussd/sessions/{session}/reply", timeout, {"text": text, "timeout": timeout}
        )

    async def release(self, session: str) -> None:
        await self._call("POST", f"/ussd/sessions/{session}/release", 10.0, {})

    async def abandon(self, session: str) -> None:
        await self._call("POST", f"/ussd/sessions/{session}/abandon", 5.0, {})

    async def listen(self, msisdn: str, timeout: float = 30.0) -> dict[str, Any]:
        return await self._call("POST", "/ussd/listen", timeout, {"msisdn": msisdn, "timeout": timeout})

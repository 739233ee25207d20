"""The control channel of a running SMSC simulator: handsets for testers over HTTP, for ``tgw handset``
and the web handset.

``tgw sim smsc --control HOST:PORT`` serves this next to the SMPP port. Its handsets are the tester
handsets of ``simulators.handset_hub``: the ones named with ``--handsets``, one per
subscriber of ``--sim-keys`` (with a SIM card holding that subscriber's keys, so a DSTK push shows a real
dialog), and any other MSISDN on first use. A tester in another shell or a browser dials USSD codes
through the simulator's relay (``SmscSimulator.dial``; USSD over SMPP 3.4 with ``ussd_service_op`` /
``its_session_info``, PROTOCOLS.md 1.1) and reads the screens the bound gateway sends back, reads and
sends SMS (MO: ``SmscSimulator.inject_mo``), and answers SIM toolkit dialogs (ETSI TS 102 223 6.4)
that wait for the tester instead of a simulated user (the terminal's own timeout still runs).
HTTP/1.1 with JSON bodies (RFC 9110, RFC 8259); every error answer is ``{"error": "<one line>"}``.

==========================================  =========================================================
``GET  /``                                  the web handset: one HTML page (``simulators.web_handset``)
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
``GET  /handsets``                          ``{"handsets": [{"msisdn", "sim", "inbox", "dialog"}]}``:
                                            every handset (``sim``: it has our SIM applet; ``inbox``:
                                            texts received; ``dialog``: a SIM toolkit dialog is open)
``GET  /handsets/{msisdn}``                 the handset's state ``{"msisdn", "sim", "inbox", "sent",
                                            "dialog", "last_event"}``
``GET  /handsets/{msisdn}/sms``             ``?after=ID&timeout=S`` -> ``{"msisdn", "inbox": [{"id",
                                            "from", "text", "at"}], "sent": [{"id", "to", "text",
                                            "at", "parts", "status", "status_name"}]}``, newest last,
                                            only ids above ``after`` (default 0); with ``timeout``
                                            it waits that long for one (504 when none comes)
``POST /handsets/{msisdn}/sms``             body ``{"to", "text", "timeout"?}``: an MO text to the
                                            short code ``to`` (default 10 s for the gateway's
                                            answer) -> ``{"sent": {...}}``
``GET  /handsets/{msisdn}/stk``             ``?timeout=S`` -> ``{"dialog": {"id", "command", "kind",
                                            "text", "items": [{"id", "text"}], "input",
                                            "expires_in"} | null}``; with ``timeout`` it waits that
                                            long for a dialog (504 when none opens)
``POST /handsets/{msisdn}/stk/answer``      body ``{"action": "ok" | "cancel" | "item" | "input",
                                            "item"?, "text"?, "dialog"?}`` -> ``{"answered": {"id",
                                            "action", ...}}`` (``dialog``: the id the tester saw)
``GET  /handsets/{msisdn}/events``          ``text/event-stream`` (Server-Sent Events): first
                                            ``state`` (as ``GET /handsets/{msisdn}``), then ``sms``,
                                            ``ussd`` (``{"session", "code", "network_initiated",
                                            "screen"}``), ``stk-shown`` (the dialog), ``stk-closed``
                                            (``{"id", "by", "detail", "result"}``) and ``log``; a
                                            comment line every 15 s keeps it open
==========================================  =========================================================

``kind`` of a screen is ``continue`` (answer it with ``reply``), ``final``, ``notification``,
``released`` (the gateway aborted) or ``timeout`` (the network gave up); ``final`` is true on the last
screen. ``kind`` of a dialog is ``display`` (DISPLAY TEXT: ok / cancel), ``yes_no`` (GET INKEY yes/no:
ok is Yes, cancel is No), ``key`` (GET INKEY: one character), ``input`` (GET INPUT: ``input`` holds
``min``, ``max``, ``digits_only``, ``hidden``, ``default``) or ``select`` (SELECT ITEM: answer with
an item id or cancel, which is Back).

Statuses: 400 a malformed request, no MSISDN, a text the screen cannot carry or an answer the dialog
does not take; 403 a browser request from another origin (the ``Origin`` header names another
host: no web page elsewhere may drive the handsets), or a request naming a host this channel does not
serve (the ``Host`` header is not an IP address, ``localhost`` or one of ``allowed_hosts``: a page
whose DNS name was re-pointed at this machine, "DNS rebinding", is its own origin to the browser and
would pass the ``Origin`` check); 404 no such session; 409 the session does not
ask for input, or no (or another) dialog is open; 410 the session is over and every screen was read;
502 the gateway refused; 503 no gateway bound, or too many handsets; 504 nothing came within the
timeout. Sessions the gateway opens while nobody listens wait in a queue per handset (the last 100).

``ControlClient`` is the asyncio client ``tgw handset`` uses; its errors are ``ControlError`` with the
HTTP status (0: the control port could not be reached).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.stk.keystore import KeyStore
from protocols.errors import LocalProtocolError, TransportError
from simulators.handset import UssdDialog
from simulators.handset_hub import (
    DialogError,
    HandsetEvent,
    HandsetHub,
    HubFull,
    InteractiveHandset,
    screen_json,
)
from simulators.smsc import SmscSimulator, UssdError, UssdSession
from simulators.web_handset import page_response

__all__ = ["ControlClient", "ControlError", "SmscControl", "screen_json"]

log = logging.getLogger(__name__)

_MAX_SESSIONS = 10_000  # sessions kept for the HTTP side; the oldest over are dropped
_MAX_WAIT = 600.0  # the longest wait a request may ask for
_KEEPALIVE = 15.0  # seconds between SSE comment lines on an idle event stream
_STATUS_OF_CAUSE = {"unbound": 503, "timeout": 504, "refused": 502, "busy": 503, "ended": 410}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


class _BadRequest(Exception):
    pass


class _Refused(Exception):
    """Answer ``status`` with ``{"error": reason}`` (raised anywhere in a handler)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None or not isinstance(value, kind) or isinstance(value, bool):
        raise _BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    return None if body.get(name) is None else _field(body, name, kind)


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


def _wait(request: web.Request) -> float | None:
    """The optional ``?timeout=S`` of a request that may wait (None: answer at once)."""
    value = request.query.get("timeout")
    return None if value is None else _timeout(value, 0.0)


def _served_host(host: str, allowed: frozenset[str]) -> bool:
    """Whether ``host`` (a Host header: name or address, maybe a port) is one this channel serves: an
    IP address (no DNS name to re-point), ``localhost`` or a name under it (RFC 6761 section 6.3), or
    one of ``allowed`` (lower case)."""
    name = host.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name == "localhost" or name.endswith(".localhost") or name in allowed
    return True


def _guard_of(allowed_hosts: Iterable[str]) -> Middleware:
    """The channel's middleware: refuse a host it does not serve (DNS rebinding) and what a page of
    another origin makes a browser send (CSRF), and turn ``_Refused`` and ``_BadRequest`` into JSON
    errors."""
    allowed = frozenset(host.lower().rstrip(".") for host in allowed_hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _served_host(request.host, allowed):
            return _error(
                403, f"host {request.host!r} is not served here (allow it with --allow-host if it is yours)"
            )
        origin = request.headers.get("Origin")
        cross_site = origin is not None and origin != f"{request.scheme}://{request.host}"
        if cross_site and request.method not in ("GET", "HEAD", "OPTIONS"):
            return _error(403, f"requests from {origin} are not accepted")
        try:
            return await handler(request)
        except _Refused as exc:
            return _error(exc.status, str(exc))
        except _BadRequest as exc:
            return _error(400, str(exc))

    return guard


class SmscControl:
    """The HTTP control channel of ``smsc`` (see the module docstring).

    ``handsets``: MSISDNs switched on at once; ``sim_keys``: a SIM key file (or a loaded ``KeyStore``)
    whose subscribers get a handset with their card; ``dialog_timeout``: the terminal's timeout for a
    SIM toolkit dialog nobody answers; ``allowed_hosts``: DNS names besides ``localhost`` that testers
    reach this channel by (IP addresses are always served).
    """

    def __init__(
        self,
        smsc: SmscSimulator,
        *,
        handsets: Iterable[str] = (),
        sim_keys: KeyStore | str | Path | None = None,
        dialog_timeout: float = 120.0,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.smsc = smsc
        self._sessions: OrderedDict[str, UssdSession] = OrderedDict()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        keystore = KeyStore.load(sim_keys) if isinstance(sim_keys, str | Path) else sim_keys
        self.hub = HandsetHub(
            smsc,
            keystore=keystore,
            msisdns=handsets,
            dialog_timeout=dialog_timeout,
            keep_session=self._keep,
        )
        app = web.Application(middlewares=[_guard_of(allowed_hosts)])
        app.add_routes(
            [
                web.get("/", self._page),
                web.get("/health", self._health),
                web.post("/ussd/dial", self._dial),
                web.get("/ussd/sessions/{id}/screen", self._screen),
                web.post("/ussd/sessions/{id}/reply", self._reply),
                web.post("/ussd/sessions/{id}/release", self._release),
                web.post("/ussd/sessions/{id}/abandon", self._abandon),
                web.post("/ussd/listen", self._listen),
                web.get("/handsets", self._handsets),
                web.get("/handsets/{msisdn}", self._state),
                web.get("/handsets/{msisdn}/sms", self._inbox),
                web.post("/handsets/{msisdn}/sms", self._send_sms),
                web.get("/handsets/{msisdn}/stk", self._stk),
                web.post("/handsets/{msisdn}/stk/answer", self._stk_answer),
                web.get("/handsets/{msisdn}/events", self._events),
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
        await self.hub.close()  # ends every event stream and wakes every wait
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
            raise _Refused(404, "no such session")
        return session

    def _dialog(self, session: UssdSession) -> UssdDialog | None:
        """The handset's view of ``session`` (its log sees the answers), if a tester handset holds it."""
        handset = self.hub.find(session.msisdn)
        return None if handset is None else UssdDialog(handset, session)

    def _described(self, handle: str, session: UssdSession) -> dict[str, Any]:
        return {
            "session": handle,
            "msisdn": session.msisdn,
            "session_id": session.session_id,
            "service_code": session.service_code,
            "network_initiated": session.network_initiated,
        }

    def _handset(self, msisdn: str) -> InteractiveHandset:
        try:
            return self.hub.get(msisdn)
        except HubFull as exc:
            raise _Refused(503, str(exc)) from None
        except LocalProtocolError as exc:
            raise _Refused(400, str(exc)) from None

    def _handset_of(self, request: web.Request) -> InteractiveHandset:
        return self._handset(request.match_info["msisdn"])

    # --- handlers ---

    async def _page(self, request: web.Request) -> web.Response:
        return page_response()

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
        body = await self._body(request)
        msisdn = _field(body, "msisdn", str)
        code = _field(body, "code", str)
        timeout = _timeout(body.get("timeout"), 10.0)
        handset = self._handset(msisdn)
        try:
            handle, dialog = await handset.dial_tracked(code, self._keep, timeout=timeout)
        except LocalProtocolError as exc:
            return _error(400, str(exc))
        except UssdError as exc:
            return _error(_STATUS_OF_CAUSE[exc.cause], str(exc))
        return web.json_response(self._described(handle, dialog.session))

    async def _screen(self, request: web.Request) -> web.Response:
        session = self._session(request)
        timeout = _timeout(request.query.get("timeout"), 30.0)
        try:
            screen = await session.next_screen(timeout)
        except TimeoutError:
            return _error(504, f"no screen within {timeout:g} s")
        except UssdError as exc:
            return _error(410, str(exc))
        return web.json_response(screen_json(screen))

    async def _reply(self, request: web.Request) -> web.Response:
        session = self._session(request)
        body = await self._body(request)
        text = _field(body, "text", str)
        timeout = _timeout(body.get("timeout"), 10.0)
        if not session.awaiting_input:
            reason = session.end_reason or "no screen asks for input"
            return _error(409, f"cannot reply: {reason}")
        dialog = self._dialog(session)
        try:
            if dialog is None:
                await session.reply(text, timeout=timeout)
            else:
                await dialog.answer(text, timeout=timeout)
        except LocalProtocolError as exc:
            return _error(400, str(exc))
        except UssdError as exc:
            return _error(_STATUS_OF_CAUSE[exc.cause], str(exc))
        return web.json_response({})

    async def _release(self, request: web.Request) -> web.Response:
        session = self._session(request)
        dialog = self._dialog(session)
        await (session.release() if dialog is None else dialog.cancel())
        return web.json_response({})

    async def _abandon(self, request: web.Request) -> web.Response:
        session = self._session(request)
        dialog = self._dialog(session)
        if dialog is None:
            session.abandon()
        else:
            dialog.abandon()
        return web.json_response({})

    async def _listen(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        msisdn = _field(body, "msisdn", str)
        timeout = _timeout(body.get("timeout"), 30.0)
        handset = self._handset(msisdn)
        try:
            handle, session = await handset.next_network_session(timeout)
        except TimeoutError:
            return _error(504, f"no session opened to {msisdn} within {timeout:g} s")
        except LocalProtocolError as exc:  # switched off: the simulator stops
            return _error(503, str(exc))
        return web.json_response(self._described(handle, session))

    async def _handsets(self, request: web.Request) -> web.Response:
        return web.json_response({"handsets": [handset.summary() for handset in self.hub]})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self._handset_of(request).state())

    async def _inbox(self, request: web.Request) -> web.Response:
        handset = self._handset_of(request)
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise _BadRequest("after must be a message id (an integer)") from None
        wait = _wait(request)
        if wait is not None and not await handset.wait_for(lambda: handset.last_sms_id > after, wait):
            return _error(504, f"no SMS within {wait:g} s")
        return web.json_response(
            {
                "msisdn": handset.msisdn,
                "inbox": [m for m in handset.received if m["id"] > after],
                "sent": [m for m in handset.sent if m["id"] > after],
            }
        )

    async def _send_sms(self, request: web.Request) -> web.Response:
        handset = self._handset_of(request)
        body = await self._body(request)
        to = _field(body, "to", str)
        text = _field(body, "text", str)
        timeout = _timeout(body.get("timeout"), 10.0)
        try:
            sent = await handset.send_sms(to, text, timeout=timeout)
        except LocalProtocolError as exc:
            return _error(400, str(exc))
        except ConnectionError as exc:
            return _error(503, f"no gateway bound as receiver to take the SMS: {exc}")
        except TimeoutError:
            return _error(504, f"the gateway did not answer the SMS within {timeout:g} s")
        if sent["status"]:
            return _error(502, f"the gateway refused the SMS: {sent['status_name']} ({sent['status']:#010x})")
        return web.json_response({"sent": sent})

    async def _stk(self, request: web.Request) -> web.Response:
        handset = self._handset_of(request)
        wait = _wait(request)
        if wait is not None and not await handset.wait_for(lambda: handset.dialog() is not None, wait):
            return _error(504, f"no SIM toolkit dialog within {wait:g} s")
        return web.json_response({"dialog": handset.dialog()})

    async def _stk_answer(self, request: web.Request) -> web.Response:
        handset = self._handset_of(request)
        body = await self._body(request)
        action = _field(body, "action", str)
        item = _optional(body, "item", int)
        text = _optional(body, "text", str)
        dialog_id = _optional(body, "dialog", int)
        try:
            answered = handset.answer_dialog(action, item=item, text=text, dialog_id=dialog_id)
        except DialogError as exc:
            return _error(409 if exc.conflict else 400, str(exc))
        return web.json_response({"answered": answered})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        handset = self._handset_of(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        subscription = handset.subscribe()
        try:
            await response.write(b"retry: 1000\n\n")
            await response.write(HandsetEvent(handset.last_event_id, "state", handset.state()).sse())
            while True:
                try:
                    event = await subscription.get(_KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:
                    break
                await response.write(event.sse())
        except ConnectionResetError:
            log.debug("event stream of %s: the client went away", handset.msisdn)
        finally:
            subscription.close()
        return response


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

    # --- handsets ---

    @staticmethod
    def _handset_path(msisdn: str, tail: str = "") -> str:
        return f"/handsets/{quote(msisdn, safe='')}{tail}"

    async def handsets(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "/handsets", 5.0)
        return list(data.get("handsets", []))

    async def state(self, msisdn: str) -> dict[str, Any]:
        return await self._call("GET", self._handset_path(msisdn), 5.0)

    async def sms(self, msisdn: str, *, after: int = 0, timeout: float | None = None) -> dict[str, Any]:
        """The texts above id ``after``; with ``timeout``, waiting that long for one (504 when none)."""
        query = f"?after={after}" + ("" if timeout is None else f"&timeout={timeout:g}")
        return await self._call("GET", self._handset_path(msisdn, "/sms") + query, timeout or 5.0)

    async def send_sms(self, msisdn: str, to: str, text: str, timeout: float = 10.0) -> dict[str, Any]:
        data = await self._call(
            "POST", self._handset_path(msisdn, "/sms"), timeout, {"to": to, "text": text, "timeout": timeout}
        )
        return dict(data["sent"])

    async def stk(self, msisdn: str, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The open SIM toolkit dialog (None: none); with ``timeout``, waiting that long for one."""
        query = "" if timeout is None else f"?timeout={timeout:g}"
        data = await self._call("GET", self._handset_path(msisdn, "/stk") + query, timeout or 5.0)
        dialog = data.get("dialog")
        return dict(dialog) if isinstance(dialog, dict) else None

    async def answer_stk(
        self,
        msisdn: str,
        action: str,
        *,
        item: int | None = None,
        text: str | None = None,
        dialog: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action}
        for name, value in (("item", item), ("text", text), ("dialog", dialog)):
            if value is not None:
                body[name] = value
        data = await self._call("POST", self._handset_path(msisdn, "/stk/answer"), 5.0, body)
        return dict(data["answered"])

"""Interactive handsets for testers: handsets of the SMSC simulator whose user is a person, not a policy.

``InteractiveHandset`` is a ``simulators.handset.Handset`` (SMS inbox, log, SIM card with the DSTK applet,
USSD) driven by a tester at a terminal (``tgw handset``) or at the web handset
(``simulators.web_handset``), both through the SMSC simulator's control channel
(``simulators.smsc_control``):

- SIM toolkit dialogs (ETSI TS 102 223 section 6.4: DISPLAY TEXT 6.4.1, GET INKEY 6.4.2, GET INPUT
  6.4.3, SELECT ITEM 6.4.9) stay open until the tester answers (``answer_dialog``: OK, cancel, an
  item, typed input), instead of a ``UserPolicy`` deciding after a delay. The terminal's own timeout
  still applies: the command's Duration, else ``dialog_timeout``, answers '12' (no response from the
  user), as any ``Handset`` does; so does the card's own guard.
- MT text goes to the inbox with its sender and arrival time; ``send_sms`` is an MO text to a short
  code (``SmscSimulator.inject_mo``; a text over one SMS travels in parts with a concatenation UDH,
  TS 23.040 9.2.3.24.1).
- USSD (MAP USSD, 3GPP TS 24.090, relayed over SMPP by the SMSC simulator): ``dial_tracked`` dials and
  names the session with the control channel's handle, so every screen can be told to the tester;
  sessions the network opens get a handle as they arrive.

Everything that happens on a handset is published, in order, as a ``HandsetEvent`` to its
subscriptions (the control channel's Server-Sent Events stream): ``sms`` (a text received or sent),
``ussd`` (a USSD screen), ``stk-shown`` / ``stk-closed`` (a SIM toolkit dialog opened / answered or
timed out) and ``log`` (every ``HandsetLogEntry``).

``HandsetHub`` keeps the tester handsets of one SMSC simulator by MSISDN: the ones named up front, one
per subscriber of a SIM key file (``gateway.stk.keystore`` format: the card gets that subscriber's
keys, so a DSTK push from the gateway shows a real dialog) and any other MSISDN on first use (with a
card only when the key file has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway.stk.keystore import KeyStore, normalize_msisdn
from protocols.errors import ConfigError, DecodeError, LocalProtocolError
from protocols.gsm.split import split_udh
from protocols.smpp.constants import CommandStatus, MessageState
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInkeyQualifier,
    GetInput,
    GetInputQualifier,
    ProactiveCommand,
    SelectItem,
)
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature
from protocols.stk.tlv import TextString
from simulators.handset import DEFAULT_PROFILE, Handset, LogKind, UserAction, UserPolicy, UssdDialog
from simulators.sim_applet import SimCard
from simulators.smsc import MtMessage, SmscSimulator, UssdError, UssdScreen, UssdSession

if TYPE_CHECKING:
    from simulators.handset import _Dialog

__all__ = [
    "DialogError",
    "HandsetEvent",
    "HandsetHub",
    "HubFull",
    "InteractiveHandset",
    "Subscription",
    "describe_command",
    "screen_json",
]

MAX_HANDSETS = 10_000  # handsets one hub creates; the next MSISDN is refused (HubFull)
_MAX_MESSAGES = 1_000  # texts kept per handset, received and sent
_MAX_LOG = 2_000  # log entries kept per handset (a tester's handset lives as long as the simulator)
_MAX_QUEUED = 100  # network-initiated USSD sessions kept per handset while nobody listens
_MAX_PENDING = 1_000  # events queued for one subscription; a subscriber that far behind is dropped
_MSISDN = re.compile(r"\+?[0-9]{1,20}", re.ASCII)  # SMPP 3.4 addresses are at most 20 digits
_DIGITS = frozenset("0123456789*#+")  # what a digits-only GET INKEY / GET INPUT accepts (6.4.2)
_TESTER = UserPolicy(UserAction.IGNORE)  # between answers: nobody presses anything, the timers run
_SMS_TEXT_LIMIT = 2_000  # characters of one MO text (about 13 parts in UCS-2)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def screen_json(screen: UssdScreen) -> dict[str, Any]:
    """A USSD screen as the control channel shows it."""
    return {
        "text": screen.text,
        "kind": screen.kind.value,
        "label": screen.label,
        "final": screen.final,
        "sequence": screen.sequence,
    }


def _text(value: TextString | None) -> str:
    if value is None:
        return ""
    try:
        return value.text
    except DecodeError as exc:
        return f"<undecodable text: {exc}>"


def describe_command(command: ProactiveCommand) -> dict[str, Any]:
    """What a dialog shows, for the tester: ``command`` (its TS 102 223 name), ``kind`` (``display``,
    ``yes_no``, ``key``, ``input`` or ``select``), ``text``, ``items`` (SELECT ITEM: id and text) and
    ``input`` (GET INKEY / GET INPUT: min and max length, digits only, hidden, default text)."""
    out: dict[str, Any] = {"items": [], "input": None}
    if isinstance(command, SelectItem):
        items = []
        for item in command.items:
            if item.identifier is None:
                continue
            try:
                label = item.text
            except DecodeError as exc:
                label = f"<undecodable text: {exc}>"
            items.append({"id": item.identifier, "text": label})
        title = ""
        if command.alpha_identifier is not None:
            try:
                title = command.alpha_identifier.text
            except DecodeError as exc:
                title = f"<undecodable text: {exc}>"
        out.update(command="SELECT ITEM", kind="select", text=title, items=items)
    elif isinstance(command, GetInkey):
        qualifier = command.command_qualifier
        out.update(command="GET INKEY", text=_text(command.text_string))
        if qualifier & GetInkeyQualifier.YES_NO:
            out["kind"] = "yes_no"
        else:
            digits = not qualifier & GetInkeyQualifier.ALPHABET
            out.update(kind="key", input={"min": 1, "max": 1, "digits_only": digits, "hidden": False})
    elif isinstance(command, GetInput):
        input_qualifier = command.command_qualifier
        out.update(
            command="GET INPUT",
            kind="input",
            text=_text(command.text_string),
            input={
                "min": command.response_length.minimum_length,
                "max": command.response_length.maximum_length,
                "digits_only": not input_qualifier & GetInputQualifier.ALPHABET,
                "hidden": bool(input_qualifier & GetInputQualifier.HIDDEN),
                "default": _text(command.default_text),
            },
        )
    else:
        name = "DISPLAY TEXT" if isinstance(command, DisplayText) else type(command).__name__
        out.update(command=name, kind="display", text=_text(getattr(command, "text_string", None)))
    return out


class DialogError(LocalProtocolError):
    """A dialog answer that cannot be given: ``conflict`` when no dialog (or another one) is open,
    else the answer does not fit the dialog (an item it does not list, input it does not take)."""

    def __init__(self, reason: str, *, conflict: bool = False) -> None:
        super().__init__(reason)
        self.conflict = conflict


class HubFull(LocalProtocolError):
    """The hub holds ``MAX_HANDSETS`` handsets already."""


@dataclass(frozen=True, slots=True)
class HandsetEvent:
    """One thing that happened on a handset: ``id`` counts up per handset, ``kind`` is the SSE event
    name, ``data`` its JSON object."""

    id: int
    kind: str
    data: dict[str, Any]

    def sse(self) -> bytes:
        """The event as a Server-Sent Events block (HTML Living Standard 9.2): JSON has no raw newline."""
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.kind}\ndata: {payload}\n\n".encode()


class Subscription:
    """The events of one handset from the moment of subscribing; ``close()`` ends it."""

    def __init__(self, handset: InteractiveHandset) -> None:
        self.handset = handset
        self.closed = False
        self._queue: deque[HandsetEvent] = deque()
        self._wake = asyncio.Event()

    def _put(self, event: HandsetEvent) -> None:
        if self.closed:
            return
        if len(self._queue) >= _MAX_PENDING:
            self.close()  # too far behind: the client reconnects and starts from a fresh state
            return
        self._queue.append(event)
        self._wake.set()

    async def get(self, timeout: float | None = None) -> HandsetEvent | None:
        """The next event; None once the subscription is closed; TimeoutError when none comes in time."""
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        return self._queue.popleft()

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._wake.set()
        self.handset._subscriptions.discard(self)


class _ScreenFeed:
    """The ``on_screen`` of a tester's USSD session: logs each screen and publishes it under the
    session's handle (screens that come before the handle is known wait for it)."""

    __slots__ = ("code", "early", "handle", "handset", "network_initiated")

    def __init__(self, handset: InteractiveHandset, code: str, network_initiated: bool) -> None:
        self.handset = handset
        self.code = code
        self.network_initiated = network_initiated
        self.handle: str | None = None
        self.early: list[UssdScreen] = []

    def __call__(self, screen: UssdScreen) -> None:
        self.handset._log_screen(screen)
        if self.handle is None:
            self.early.append(screen)
        else:
            self._publish(screen)

    def attach(self, handle: str) -> None:
        self.handle = handle
        for screen in self.early:
            self._publish(screen)
        self.early.clear()

    def _publish(self, screen: UssdScreen) -> None:
        self.handset._publish(
            "ussd",
            {
                "session": self.handle,
                "code": self.code,
                "network_initiated": self.network_initiated,
                "screen": screen_json(screen),
            },
        )


class InteractiveHandset(Handset):
    """A handset whose user is a tester (see the module docstring).

    ``keep_session`` names a USSD session the network opens (the control channel's session handle).
    """

    def __init__(
        self,
        msisdn: str,
        sim_card: SimCard | None,
        profile: TerminalProfile,
        smsc: SmscSimulator,
        *,
        dialog_timeout: float = 120.0,
        keep_session: Callable[[UssdSession], str] | None = None,
    ) -> None:
        self._subscriptions: set[Subscription] = set()
        self._waiters: set[asyncio.Future[None]] = set()
        self._event_ids = itertools.count(1)
        self.last_event_id = 0
        self._sms_ids = itertools.count(1)
        self.received: deque[dict[str, Any]] = deque(maxlen=_MAX_MESSAGES)
        self.sent: deque[dict[str, Any]] = deque(maxlen=_MAX_MESSAGES)
        self.last_sms_id = 0
        self._concat_reference = 0
        self._dialog_ids = itertools.count(1)
        self._shown: tuple[int, _Dialog, float] | None = None  # (id, the Handset's dialog, expiry loop time)
        self._network_handles: dict[UssdSession, str] = {}
        self._local_handles = itertools.count(1)
        self._keep_session = keep_session
        self.switched_off = False
        super().__init__(msisdn, sim_card, profile, _TESTER, smsc, dialog_timeout=dialog_timeout)
        self.choose_policy = self._tester_policy

    @staticmethod
    def _tester_policy(command: ProactiveCommand) -> UserPolicy:
        return _TESTER

    async def close(self) -> None:
        self.switched_off = True
        for subscription in list(self._subscriptions):
            subscription.close()
        self._changed()
        await super().close()

    # --- events ------------------------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """A subscription to every event from now on (``close()`` it when done)."""
        subscription = Subscription(self)
        if self.switched_off:
            subscription.closed = True
        else:
            self._subscriptions.add(subscription)
        return subscription

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        self.last_event_id = next(self._event_ids)
        event = HandsetEvent(self.last_event_id, kind, data)
        for subscription in list(self._subscriptions):
            subscription._put(event)
        self._changed()

    def _changed(self) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)

    @property
    def waiting(self) -> int:
        """How many waits (``wait_for``: a tester's long poll) are pending on this handset now."""
        return sum(not waiter.done() for waiter in self._waiters)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked after every event) for at most ``timeout`` s."""
        if predicate():
            return True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not predicate() and not self.switched_off:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
        return predicate()

    def state(self) -> dict[str, Any]:
        """Everything a tester's screen shows: the texts, the open dialog, the last event's id."""
        return {
            "msisdn": self.msisdn,
            "sim": self.sim is not None,
            "inbox": list(self.received),
            "sent": list(self.sent),
            "dialog": self.dialog(),
            "last_event": self.last_event_id,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "msisdn": self.msisdn,
            "sim": self.sim is not None,
            "inbox": len(self.received),
            "dialog": self.dialog_open,
        }

    # --- the log -----------------------------------------------------------------------------------

    def _record(self, kind: LogKind, detail: str, status: int | None = None) -> None:
        super()._record(kind, detail, status)
        self._trim()
        self._publish("log", {"at": _utc_now(), "kind": kind.value, "detail": detail, "status": status})
        dialog = self._dialog
        if kind is LogKind.DIALOG_SHOWN and dialog is not None:
            self._dialog_shown(dialog)
        elif self._shown is not None and dialog is not self._shown[1]:
            closed_id = self._shown[0]
            self._shown = None
            self._publish(
                "stk-closed", {"id": closed_id, "by": kind.value, "detail": detail, "result": status}
            )

    def _trim(self) -> None:
        for history in (self.log, self.answers, self.delivery_reports):
            if len(history) > _MAX_LOG:
                del history[: len(history) - _MAX_LOG]

    # --- SIM toolkit dialogs -----------------------------------------------------------------------

    def _dialog_shown(self, dialog: _Dialog) -> None:
        command = dialog.command
        timeout = self.dialog_timeout
        duration = getattr(command, "duration", None)
        if duration is not None and duration.seconds:
            timeout = duration.seconds
        self._shown = (next(self._dialog_ids), dialog, self._now() + timeout)
        shown = self.dialog()
        assert shown is not None
        self._publish("stk-shown", shown)

    def dialog(self) -> dict[str, Any] | None:
        """The open SIM toolkit dialog (``describe_command`` plus its ``id`` and the seconds left,
        ``expires_in``), or None."""
        shown = self._shown
        if shown is None or self._dialog is not shown[1]:
            return None
        dialog_id, dialog, expires = shown
        left = max(0.0, expires - self._now())
        return {"id": dialog_id, **describe_command(dialog.command), "expires_in": round(left, 1)}

    def answer_dialog(
        self,
        action: str,
        *,
        item: int | None = None,
        text: str | None = None,
        dialog_id: int | None = None,
    ) -> dict[str, Any]:
        """The tester answers the open dialog: ``ok``, ``cancel``, ``item`` (the item's identifier) or
        ``input`` (``text``; ``ok`` with a text is the same). Raises DialogError. Returns what was
        answered: the dialog's ``id``, the ``action`` and the ``item`` or ``text`` given."""
        shown = self._shown
        if shown is None or self._dialog is not shown[1]:
            raise DialogError("no SIM toolkit dialog is open", conflict=True)
        shown_id, dialog, _ = shown
        if dialog_id is not None and dialog_id != shown_id:
            raise DialogError(f"dialog {dialog_id} is closed; dialog {shown_id} is open", conflict=True)
        policy = self._policy_for(dialog.command, action, item, text)
        self.user = policy
        try:
            self._on_user(dialog)
        finally:
            self.user = _TESTER
        answered: dict[str, Any] = {"id": shown_id, "action": action}
        if action == "item":
            answered["item"] = item
        if policy.action is UserAction.ACCEPT and text is not None:
            answered["text"] = text
        return answered

    def _policy_for(
        self, command: ProactiveCommand, action: str, item: int | None, text: str | None
    ) -> UserPolicy:
        described = describe_command(command)
        kind = described["kind"]
        if action == "cancel":
            return UserPolicy(UserAction.DECLINE)
        if action == "item":
            if kind != "select":
                raise DialogError(f"{described['command']} lists no items: answer ok or cancel")
            ids = [entry["id"] for entry in described["items"]]
            if item not in ids:
                raise DialogError(f"item {item} is not among the items {', '.join(map(str, ids))}")
            return UserPolicy(UserAction.ACCEPT, item=ids.index(item))
        if action not in ("ok", "input"):
            raise DialogError(f"unknown action {action!r}: ok, cancel, item or input")
        if kind == "select":
            raise DialogError("SELECT ITEM: choose an item (action item) or cancel")
        if kind in ("key", "input"):
            if text is None:
                raise DialogError(f"{described['command']} asks for input: give a text")
            self._check_input(described, text)
            return UserPolicy(UserAction.ACCEPT, input_text=text)
        if action == "input":
            raise DialogError(f"{described['command']} takes no input: answer ok or cancel")
        return UserPolicy(UserAction.ACCEPT)

    @staticmethod
    def _check_input(described: dict[str, Any], text: str) -> None:
        bounds = described["input"]
        low, high = max(1, bounds["min"]), bounds["max"]
        if not low <= len(text) <= high:
            span = f"{low}" if low == high else f"{low} to {high}"
            raise DialogError(f"{described['command']} takes {span} character(s), got {len(text)}")
        if bounds["digits_only"] and not set(text) <= _DIGITS:
            raise DialogError(f"{described['command']} takes digits only (0-9, *, #, +)")
        try:
            TextString.of(text)
        except LocalProtocolError as exc:
            raise DialogError(f"{described['command']}: {exc}") from None

    # --- SMS ---------------------------------------------------------------------------------------

    def on_mt(self, mt: MtMessage) -> MessageState | None:
        before = len(self.inbox)
        state = super().on_mt(mt)
        if len(self.inbox) > before:
            text = self.inbox[-1]
            if len(self.inbox) > _MAX_MESSAGES:
                del self.inbox[: len(self.inbox) - _MAX_MESSAGES]
            record = {"id": self._next_sms_id(), "from": mt.source_addr, "text": text, "at": _utc_now()}
            self.received.append(record)
            self._publish("sms", {"direction": "in", **record})
        return state

    def _next_sms_id(self) -> int:
        self.last_sms_id = next(self._sms_ids)
        return self.last_sms_id

    async def send_sms(self, to: str, text: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Send ``text`` to ``to`` (a short code) as MO: each part one deliver_sm to a bound ESME.

        Returns the sent message (``status``: the ESME's command_status, 0 when it took every part).
        LocalProtocolError for a text or address that cannot travel; ConnectionError when no ESME is
        bound; TimeoutError when it does not answer within ``timeout``.
        """
        if self.switched_off:
            raise LocalProtocolError(f"handset {self.msisdn} is switched off")
        if not to or len(to) > 20 or not to.isascii() or not to.isprintable():
            raise LocalProtocolError(f"{to!r} is no address: 1 to 20 ASCII characters")
        if not text:
            raise LocalProtocolError("the text is empty")
        if len(text) > _SMS_TEXT_LIMIT:
            raise LocalProtocolError(f"a text of at most {_SMS_TEXT_LIMIT} characters, got {len(text)}")
        self._concat_reference = (self._concat_reference + 1) % 256
        segments = split_udh(text, reference=self._concat_reference)
        status = 0
        try:
            for segment in segments:
                status = await self.smsc.inject_mo(
                    self.msisdn,
                    to,
                    segment.short_message,
                    data_coding=segment.data_coding,
                    esm_class=segment.esm_class,
                    timeout=timeout,
                )
                if status:
                    break
        except (ConnectionError, TimeoutError) as exc:
            self._record(LogKind.MO_FAILED, f"SMS to {to}: {exc or type(exc).__name__}")
            raise
        if status:
            self._record(LogKind.MO_FAILED, f"SMS to {to}: the ESME answered {status:#010x}", status)
        else:
            self._record(LogKind.MO_SENT, f"SMS to {to}: {text}", status)
        record = {
            "id": self._next_sms_id(),
            "to": to,
            "text": text,
            "at": _utc_now(),
            "parts": len(segments),
            "status": status,
            "status_name": CommandStatus(status).name if status else "",
        }
        self.sent.append(record)
        self._publish("sms", {"direction": "out", **record})
        return record

    # --- USSD --------------------------------------------------------------------------------------

    async def dial_tracked(
        self, code: str, keep: Callable[[UssdSession], str], *, timeout: float = 10.0
    ) -> tuple[str, UssdDialog]:
        """``Handset.dial``, with the session named by ``keep`` and every screen published under that
        name (a ``ussd`` event)."""
        if self.switched_off:
            raise LocalProtocolError(f"handset {self.msisdn} is switched off")
        feed = _ScreenFeed(self, code, network_initiated=False)
        self._record(LogKind.USSD_DIALLED, code)
        try:
            session = await self.smsc.dial(self.msisdn, code, timeout=timeout, on_screen=feed)
        except UssdError as exc:
            self._record(LogKind.USSD_ENDED, f"{code}: {exc}", exc.status or None)
            raise
        dialog = UssdDialog(self, session)
        self._keep(dialog)
        handle = keep(session)
        feed.attach(handle)
        return handle, dialog

    def _on_network_ussd(self, session: UssdSession) -> None:
        super()._on_network_ussd(session)
        incoming = self._incoming
        while len(incoming) > _MAX_QUEUED:
            incoming.popleft()
        if len(self._network_handles) > _MAX_QUEUED:
            waiting = {dialog.session for dialog in incoming}
            self._network_handles = {s: h for s, h in self._network_handles.items() if s in waiting}
        if self._keep_session is not None:
            handle = self._keep_session(session)
        else:
            handle = f"{self.msisdn}-n{next(self._local_handles)}"
        self._network_handles[session] = handle
        feed = _ScreenFeed(self, session.service_code or session.service_addr, network_initiated=True)
        feed.attach(handle)
        session.on_screen = feed

    async def next_network_session(self, timeout: float) -> tuple[str, UssdSession]:
        """The next session the network opened and its handle; TimeoutError when none comes in time,
        LocalProtocolError once the handset is switched off."""
        dialog = await self.next_network_dialog(timeout)
        session = dialog.session
        handle = self._network_handles.pop(session, None)
        if handle is None:  # its handle was dropped while it waited: name it again
            handle = (
                self._keep_session(session)
                if self._keep_session is not None
                else f"{self.msisdn}-n{next(self._local_handles)}"
            )
        return handle, session


def terminal_profile_for(supports_yes_no: bool, profile: TerminalProfile | None) -> TerminalProfile:
    """The handset's TERMINAL PROFILE for a key-file entry: the one it names, else ``DEFAULT_PROFILE``
    (without binary-choice GET INKEY for ``supports_yes_no: false``)."""
    if profile is not None:
        return profile
    if not supports_yes_no:
        return DEFAULT_PROFILE.without_features(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE)
    return DEFAULT_PROFILE


class HandsetHub:
    """The tester handsets of ``smsc`` by MSISDN (see the module docstring).

    ``keystore``: the SIM key file's subscribers get a handset each, with a card holding their keys.
    ``dialog_timeout``: the terminal's dialog timeout (the card gives up 30 s later).
    ``keep_session``: names the USSD sessions the network opens (the control channel's handles).
    """

    def __init__(
        self,
        smsc: SmscSimulator,
        *,
        keystore: KeyStore | None = None,
        msisdns: Iterable[str] = (),
        dialog_timeout: float = 120.0,
        keep_session: Callable[[UssdSession], str] | None = None,
        max_handsets: int = MAX_HANDSETS,
    ) -> None:
        if dialog_timeout <= 0:
            raise LocalProtocolError(f"dialog_timeout must be positive, got {dialog_timeout}")
        self.smsc = smsc
        self.keystore = keystore
        self.dialog_timeout = dialog_timeout
        self.max_handsets = max_handsets
        self._keep_session = keep_session
        self.apdu_tap: Callable[[str, bytes], None] | None = None
        self._handsets: dict[str, InteractiveHandset] = {}
        self._closed = False
        for msisdn in msisdns:
            try:
                self.get(msisdn)
            except LocalProtocolError as exc:
                raise ConfigError(f"handsets: {exc}") from None
        if keystore is not None:
            for card in keystore:
                self.get(card.msisdn)

    @staticmethod
    def normalize(msisdn: str) -> str:
        """``msisdn`` without spaces and a leading "+"; LocalProtocolError unless 1 to 20 digits."""
        if not isinstance(msisdn, str) or not _MSISDN.fullmatch(msisdn.strip()):
            raise LocalProtocolError(f"{msisdn!r} is no MSISDN: 1 to 20 digits, optionally after a +")
        return normalize_msisdn(msisdn)

    def find(self, msisdn: str) -> InteractiveHandset | None:
        """The handset of ``msisdn`` if there is one (never creates it)."""
        try:
            return self._handsets.get(self.normalize(msisdn))
        except LocalProtocolError:
            return None

    def get(self, msisdn: str) -> InteractiveHandset:
        """The handset of ``msisdn``, switched on at first use. LocalProtocolError for no MSISDN or a
        closed hub; HubFull beyond ``max_handsets``."""
        key = self.normalize(msisdn)
        handset = self._handsets.get(key)
        if handset is not None:
            return handset
        if self._closed:
            raise LocalProtocolError("the handsets are switched off")
        if len(self._handsets) >= self.max_handsets:
            raise HubFull(f"{self.max_handsets} handsets already: no more")
        card: SimCard | None = None
        profile = DEFAULT_PROFILE
        entry = self.keystore.by_msisdn(key) if self.keystore is not None else None
        if entry is not None:
            card = SimCard(
                entry.iccid, {entry.tar: entry.key_set()}, dialog_timeout=self.dialog_timeout + 30.0
            )
            profile = terminal_profile_for(entry.supports_yes_no, entry.terminal_profile)
        handset = InteractiveHandset(
            key,
            card,
            profile,
            self.smsc,
            dialog_timeout=self.dialog_timeout,
            keep_session=self._keep_session,
        )
        if self.apdu_tap is not None:
            handset.on_apdu = partial(self.apdu_tap, key)
        self._handsets[key] = handset
        return handset

    def trace_apdus(self, tap: Callable[[str, bytes], None]) -> None:
        """``tap(msisdn, apdu)`` for every APDU between a handset and its SIM card (a capture's GSMTAP),
        the handsets switched on already and those to come."""
        self.apdu_tap = tap
        for handset in self._handsets.values():
            handset.on_apdu = partial(tap, handset.msisdn)

    def __iter__(self) -> Iterator[InteractiveHandset]:
        return iter(list(self._handsets.values()))

    def __len__(self) -> int:
        return len(self._handsets)

    async def close(self) -> None:
        """Switch every handset off (their event streams end)."""
        self._closed = True
        for handset in list(self._handsets.values()):
            await handset.close()

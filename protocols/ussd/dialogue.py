"""The USSD dialogue engine (sans-I/O): concurrent dialogues keyed per subscriber and vendor session
id, their state machine, the per-reply and session timeouts.

What a dialogue is follows MAP USSD (3GPP TS 24.090, TS 29.002; PROTOCOLS.md 1.1 and 1.3): the
handset opens it with a PSSR indication (the dialled string); the application answers with USSR
requests (a screen, the dialogue continues) and ends it with a PSSR response (the final screen); the
handset answers each USSR with a USSR confirm. The network opens a dialogue with a USSR request
(menu) or a USSN request (notification, confirmed by the handset). A release / abort op or an
end-of-session bit from the network ends it. Network timers are operator-imposed: about 30 s per user
response and 180 s per session (Africa's Talking, PROTOCOLS.md 1.1), so both are configurable.

The engine shape is the house one (DESIGN.md): ``receive(message, now)`` then ``next_event()`` until
None; commands (``send_screen``, ``release``, ``notify``, ``start_network_menu``) validate the state
and return the ``UssdMessage`` to send, which the gateway maps to SMPP with ``codec.to_submit``;
``get_timer()`` / ``handle_timer(now)``. It never reads a clock. Every call that takes ``now`` first
fires the timers due at ``now``, so a reply that arrives after its deadline finds the dialogue timed
out.

Policy: anything the network sends yields events (``UnexpectedMessage`` for what does not fit the
state); our own misuse raises ``LocalProtocolError``; timeouts are events.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from protocols.errors import LocalProtocolError
from protocols.ussd.codec import (
    BEGIN_OPS,
    PROFILES,
    DialogueKey,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    check_screen,
    session_id_limit,
)

__all__ = [
    "TRANSITIONS",
    "DialogueAborted",
    "DialogueEnded",
    "DialogueInput",
    "DialogueRefused",
    "DialogueStarted",
    "DialogueState",
    "DialogueTimedOut",
    "Event",
    "NotificationConfirmed",
    "ReplyReceived",
    "UnexpectedMessage",
    "UssdDialogues",
]

_O = UssdServiceOp


class DialogueState(Enum):
    NEW = "new"  # no dialogue under this key
    AWAITING_APP = "awaiting_app"  # we owe the handset a screen
    AWAITING_USER = "awaiting_user"  # a screen is out; waiting for the reply / confirm
    ENDED = "ended"  # over; the key is free again


class DialogueInput(Enum):
    """What can happen to a dialogue."""

    # from the network
    BEGIN = "begin"  # PSSR / PSSD indication
    REPLY = "reply"  # USSR confirm
    NOTIFY_CONFIRM = "notify_confirm"  # USSN confirm
    ABORT = "abort"  # release / user abort op
    NETWORK_END = "network_end"  # end-of-session bit, or a closing op from the network
    # from the application
    SCREEN = "screen"  # send_screen(final=False)
    FINAL_SCREEN = "final_screen"  # send_screen(final=True)
    RELEASE = "release"  # release()
    MENU = "menu"  # start_network_menu()
    NOTIFY = "notify"  # notify(final=False)
    FINAL_NOTIFY = "final_notify"  # notify(final=True)
    # timers
    REPLY_TIMEOUT = "reply_timeout"
    SESSION_TIMEOUT = "session_timeout"


St = DialogueState
In = DialogueInput

TRANSITIONS: dict[tuple[DialogueState, DialogueInput], DialogueState] = {
    (St.NEW, In.BEGIN): St.AWAITING_APP,
    (St.NEW, In.MENU): St.AWAITING_USER,
    (St.NEW, In.NOTIFY): St.AWAITING_USER,
    (St.NEW, In.FINAL_NOTIFY): St.ENDED,
    (St.AWAITING_APP, In.SCREEN): St.AWAITING_USER,
    (St.AWAITING_APP, In.FINAL_SCREEN): St.ENDED,
    (St.AWAITING_APP, In.RELEASE): St.ENDED,
    (St.AWAITING_APP, In.BEGIN): St.AWAITING_APP,  # a new PSSR replaces the dialogue
    (St.AWAITING_APP, In.ABORT): St.ENDED,
    (St.AWAITING_APP, In.NETWORK_END): St.ENDED,
    (St.AWAITING_APP, In.SESSION_TIMEOUT): St.ENDED,
    (St.AWAITING_USER, In.REPLY): St.AWAITING_APP,
    (St.AWAITING_USER, In.NOTIFY_CONFIRM): St.AWAITING_APP,
    (St.AWAITING_USER, In.RELEASE): St.ENDED,
    (St.AWAITING_USER, In.BEGIN): St.AWAITING_APP,
    (St.AWAITING_USER, In.ABORT): St.ENDED,
    (St.AWAITING_USER, In.NETWORK_END): St.ENDED,
    (St.AWAITING_USER, In.REPLY_TIMEOUT): St.ENDED,
    (St.AWAITING_USER, In.SESSION_TIMEOUT): St.ENDED,
}
"""The dialogue state machine: (state, input) -> next state. A pair that is missing is an
``UnexpectedMessage`` for a network input and a ``LocalProtocolError`` for an application input.
ENDED dialogues are forgotten, so their key reads as NEW."""


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialogueStarted:
    """The handset dialled ``service_code``: we owe it a screen (``send_screen``)."""

    key: DialogueKey
    msisdn: str
    service_code: str
    message: UssdMessage


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The user answered our screen with ``text``: we owe the next screen."""

    key: DialogueKey
    text: str
    sequence: int | None


@dataclass(frozen=True, slots=True)
class NotificationConfirmed:
    """The handset confirmed our USSN: we owe the next screen or a release."""

    key: DialogueKey


@dataclass(frozen=True, slots=True)
class DialogueAborted:
    """The network or the user aborted the dialogue (release op, or a new PSSR on the same key)."""

    key: DialogueKey
    reason: str


@dataclass(frozen=True, slots=True)
class DialogueTimedOut:
    """No reply within the per-reply timeout (``which="reply"``) or the session lasted longer than
    the session timeout (``"session"``). The dialogue is over; ``release`` is the message that tells
    the network so, should the gateway want to send it."""

    key: DialogueKey
    which: Literal["reply", "session"]
    release: UssdMessage


@dataclass(frozen=True, slots=True)
class DialogueEnded:
    """The dialogue ended normally: by our final screen / release (``"us"``) or by the network's
    end-of-session indication (``"network"``)."""

    key: DialogueKey
    by: Literal["us", "network"]


@dataclass(frozen=True, slots=True)
class UnexpectedMessage:
    """A message that fits no dialogue state (a confirm for no dialogue, a duplicate, an op in the
    wrong direction). Nothing changed; the gateway may log it."""

    key: DialogueKey
    message: UssdMessage
    reason: str


@dataclass(frozen=True, slots=True)
class DialogueRefused:
    """A new dialogue arrived while ``max_dialogues`` were live. Answer it with
    ``message.reply(text, final=True)`` (e.g. "busy, try later")."""

    key: DialogueKey
    message: UssdMessage
    reason: str


Event = (
    DialogueStarted
    | ReplyReceived
    | NotificationConfirmed
    | DialogueAborted
    | DialogueTimedOut
    | DialogueEnded
    | UnexpectedMessage
    | DialogueRefused
)

# --- the engine ------------------------------------------------------------------------------------

_REPLY = 0
_SESSION = 1


class _Dialogue:
    """The mutable record of one live dialogue."""

    __slots__ = (
        "advancing",
        "awaiting",
        "key",
        "last_in",
        "network_initiated",
        "opening_op",
        "reply_token",
        "sequence",
        "serial",
        "service_addr",
        "state",
    )

    def __init__(
        self,
        key: DialogueKey,
        serial: int,
        service_addr: str,
        opening_op: UssdServiceOp,
        *,
        sequence: int | None,
        network_initiated: bool,
    ) -> None:
        self.key = key
        self.serial = serial
        self.service_addr = service_addr
        self.opening_op = opening_op
        self.sequence = sequence  # the last sequence number seen or sent; None: the layout has none
        self.network_initiated = network_initiated
        self.state = St.NEW
        self.awaiting: UssdServiceOp | None = None  # the confirm op expected in AWAITING_USER
        self.last_in: UssdMessage | None = None
        self.reply_token = 0
        # the handset side numbers its dialogue units (its_session_info octet 2 moved between two of
        # its messages); only then does a repeated sequence number tell a retransmission apart from
        # the user typing the same thing again
        self.advancing = False


class UssdDialogues:
    """All USSD dialogues of one SMSC connection (one vendor ``profile``)."""

    def __init__(
        self,
        profile: UssdProfile | None = None,
        *,
        per_reply_timeout: float = 30.0,
        session_timeout: float = 180.0,
        max_dialogues: int = 100_000,
        service_addr: str = "",
    ) -> None:
        if per_reply_timeout <= 0 or session_timeout <= 0:
            raise LocalProtocolError("USSD timeouts must be positive")
        if max_dialogues < 1:
            raise LocalProtocolError("max_dialogues must be at least 1")
        self.profile = profile if profile is not None else PROFILES["standard"]
        self.per_reply_timeout = per_reply_timeout
        self.session_timeout = session_timeout
        self.max_dialogues = max_dialogues
        self.service_addr = service_addr  # our short code, for network-initiated dialogues
        self._dialogues: dict[DialogueKey, _Dialogue] = {}
        self._events: list[Event] = []
        self._event_pos = 0
        self._timers: list[tuple[float, int, int, DialogueKey, int, int]] = []
        self._timer_count = 0
        self._serial = 0
        self._next_session_id = 0
        self._session_id_limit = session_id_limit(self.profile.session_id_location)

    # --- inspection ---

    def __len__(self) -> int:
        return len(self._dialogues)

    def __contains__(self, key: object) -> bool:
        return key in self._dialogues

    def state_of(self, key: DialogueKey) -> DialogueState:
        """The state of the dialogue under ``key`` (NEW when there is none)."""
        d = self._dialogues.get(key)
        return St.NEW if d is None else d.state

    def keys(self) -> list[DialogueKey]:
        return list(self._dialogues)

    # --- events ---

    def next_event(self) -> Event | None:
        events = self._events
        if self._event_pos < len(events):
            event = events[self._event_pos]
            self._event_pos += 1
            if self._event_pos == len(events):
                events.clear()
                self._event_pos = 0
            return event
        return None

    # --- input from the network ---

    def receive(self, message: UssdMessage, now: float) -> None:
        """A USSD message from the network (``codec.from_pdu`` of a deliver_sm)."""
        self._expire(now)
        op = message.op
        key = message.key
        if op in BEGIN_OPS:
            what = In.BEGIN
        elif op is _O.RELEASE:
            what = In.ABORT
        elif op in (_O.PSSR_RESP, _O.PSSD_RESP) or (message.end and op in (_O.USSR_CONF, _O.USSN_CONF)):
            # the end bit closes; some vendors close with a PSSR response from the network (vumi mica.py)
            what = In.NETWORK_END
        elif op is _O.USSR_CONF:
            what = In.REPLY
        elif op is _O.USSN_CONF:
            what = In.NOTIFY_CONFIRM
        else:
            self._emit(UnexpectedMessage(key, message, f"{op.name} is not expected from the network"))
            return
        d = self._dialogues.get(key)
        state = St.NEW if d is None else d.state
        target = TRANSITIONS.get((state, what))
        if d is None or target is None:
            if what is In.BEGIN:
                self._begin(message, now)
            else:
                self._unexpected(d, message)
            return
        if what is In.BEGIN:
            # the network allocates a session id per dial: the same PSSR with its sequence number on
            # a live session is the SMSC delivering it again, even after our first screen went out
            if _same(d.last_in, message) and (d.state is St.AWAITING_APP or message.sequence is not None):
                self._emit(UnexpectedMessage(key, message, "duplicate"))
                return
            self._end(d)
            self._emit(DialogueAborted(key, f"superseded by a new {op.name}"))
            self._begin(message, now)
        elif what is In.ABORT:
            self._end(d)
            self._emit(DialogueAborted(key, "released by the network"))
        elif what is In.NETWORK_END:
            self._end(d)
            self._emit(DialogueEnded(key, "network"))
        else:  # REPLY or NOTIFY_CONFIRM while AWAITING_USER
            if d.advancing and _same(d.last_in, message):
                # a confirm we already took, delivered again after our next screen went out (the SMSC
                # missed our deliver_sm_resp): taking it would walk the menu a second time
                self._emit(UnexpectedMessage(key, message, "duplicate"))
                return
            if op is not d.awaiting:
                expected = d.awaiting.name if d.awaiting is not None else "nothing"
                self._emit(UnexpectedMessage(key, message, f"expected {expected}, got {op.name}"))
                return
            d.state = target
            d.awaiting = None
            d.reply_token += 1  # disarms the reply timer
            previous = d.last_in
            if message.sequence is not None and previous is not None and previous.sequence is not None:
                d.advancing = d.advancing or message.sequence != previous.sequence
            d.last_in = message
            if message.sequence is not None and d.sequence is not None:
                d.sequence = message.sequence
            if what is In.REPLY:
                self._emit(ReplyReceived(key, message.text, message.sequence))
            else:
                self._emit(NotificationConfirmed(key))

    def _unexpected(self, d: _Dialogue | None, message: UssdMessage) -> None:
        if d is None:
            reason = "no live dialogue"
        elif d.state is St.AWAITING_APP and _same(d.last_in, message):
            reason = "duplicate"
        else:
            reason = f"{message.op.name} while {d.state.value}"
        self._emit(UnexpectedMessage(message.key, message, reason))

    def _begin(self, message: UssdMessage, now: float) -> None:
        key = message.key
        if len(self._dialogues) >= self.max_dialogues:
            self._emit(DialogueRefused(key, message, f"max_dialogues ({self.max_dialogues}) reached"))
            return
        sequence = message.sequence if message.session_id is not None and self.profile.has_sequence else None
        d = self._open(
            key, message.service_addr, message.op, sequence=sequence, network_initiated=False, now=now
        )
        d.state = St.AWAITING_APP
        d.last_in = message
        code = message.service_code if message.service_code is not None else message.text
        self._emit(DialogueStarted(key, message.msisdn, code, message))

    # --- commands from the application ---

    def send_screen(
        self, key: DialogueKey, text: str, now: float, final: bool = False, *, data_coding: int | None = None
    ) -> UssdMessage:
        """The next screen of the dialogue under ``key``: a USSR request, or with ``final`` the final
        screen (PSSR response; for a network-initiated dialogue a USSN request with the end bit)."""
        self._expire(now)
        d = self._live(key)
        target = self._step(d, In.FINAL_SCREEN if final else In.SCREEN)
        if d.opening_op is _O.PSSD_IND and not final:
            raise LocalProtocolError("a PSSD (phase 1) dialogue takes only a final screen")
        data_coding = check_screen(text, self.profile, data_coding)
        if final:
            message = self._message(d, self._final_op(d), text, True, data_coding)
            self._end(d)
            self._emit(DialogueEnded(key, "us"))
        else:
            message = self._message(d, _O.USSR_REQ, text, False, data_coding)
            self._await(d, target, _O.USSR_CONF, now)
        return message

    def release(self, key: DialogueKey, now: float, text: str = "") -> UssdMessage:
        """End the dialogue under ``key`` whatever its state: the profile's release op when it has one,
        else the final screen op with the end bit."""
        self._expire(now)
        d = self._live(key)
        self._step(d, In.RELEASE)
        data_coding = check_screen(text, self.profile)
        message = self._closing(d, text, data_coding)
        self._end(d)
        self._emit(DialogueEnded(key, "us"))
        return message

    def notify(
        self, msisdn: str, text: str, now: float, *, final: bool = False, service_addr: str | None = None
    ) -> UssdMessage:
        """A network-initiated USSN request. With ``final`` it carries the end bit and no dialogue is
        kept; otherwise the dialogue waits for the handset's USSN confirm (per-reply timeout), after
        which we owe a screen or a release."""
        self._expire(now)
        data_coding = check_screen(text, self.profile)
        d = self._open_network(msisdn, service_addr, now)
        target = self._step(d, In.FINAL_NOTIFY if final else In.NOTIFY)
        message = self._message(d, _O.USSN_REQ, text, final, data_coding)
        if final:
            self._end(d)
            self._emit(DialogueEnded(d.key, "us"))
        else:
            self._await(d, target, _O.USSN_CONF, now)
        return message

    def start_network_menu(
        self, msisdn: str, text: str, now: float, *, service_addr: str | None = None
    ) -> UssdMessage:
        """A network-initiated USSR request (a menu the handset did not ask for), in a new dialogue
        whose session id the engine allocates."""
        self._expire(now)
        data_coding = check_screen(text, self.profile)
        d = self._open_network(msisdn, service_addr, now)
        target = self._step(d, In.MENU)
        message = self._message(d, _O.USSR_REQ, text, False, data_coding)
        self._await(d, target, _O.USSR_CONF, now)
        return message

    # --- timers ---

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next run (None: no timer armed)."""
        timers = self._timers
        while timers and not self._valid(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def handle_timer(self, now: float) -> None:
        """Fire every timeout due at ``now``, in deadline order."""
        self._expire(now)

    # --- internals ---

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    @staticmethod
    def _step(d: _Dialogue, what: DialogueInput) -> DialogueState:
        target = TRANSITIONS.get((d.state, what))
        if target is None:
            raise LocalProtocolError(f"USSD dialogue {d.key} is {d.state.value}: no {what.value} allowed")
        return target

    def _live(self, key: DialogueKey) -> _Dialogue:
        d = self._dialogues.get(key)
        if d is None:
            raise LocalProtocolError(f"no live USSD dialogue {key}")
        return d

    def _open(
        self,
        key: DialogueKey,
        service_addr: str,
        opening_op: UssdServiceOp,
        *,
        sequence: int | None,
        network_initiated: bool,
        now: float,
    ) -> _Dialogue:
        self._serial += 1
        d = _Dialogue(
            key,
            self._serial,
            service_addr,
            opening_op,
            sequence=sequence,
            network_initiated=network_initiated,
        )
        self._dialogues[key] = d
        self._arm(now + self.session_timeout, _SESSION, d, 0)
        return d

    def _open_network(self, msisdn: str, service_addr: str | None, now: float) -> _Dialogue:
        if len(self._dialogues) >= self.max_dialogues:
            raise LocalProtocolError(f"max_dialogues ({self.max_dialogues}) reached")
        limit = self._session_id_limit
        session_id = self._next_session_id
        for _ in range(limit + 1):
            if DialogueKey(msisdn, session_id) not in self._dialogues:
                break
            session_id = session_id + 1 if session_id < limit else 0
        else:
            raise LocalProtocolError(f"every session id of {msisdn} is in use")
        self._next_session_id = session_id + 1 if session_id < limit else 0
        # the first message we send carries sequence 0: start one below it
        sequence = -1 if self.profile.has_sequence else None
        addr = self.service_addr if service_addr is None else service_addr
        key = DialogueKey(msisdn, session_id)
        return self._open(key, addr, _O.USSR_REQ, sequence=sequence, network_initiated=True, now=now)

    def _await(self, d: _Dialogue, target: DialogueState, confirm: UssdServiceOp, now: float) -> None:
        d.state = target
        d.awaiting = confirm
        d.reply_token += 1
        self._arm(now + self.per_reply_timeout, _REPLY, d, d.reply_token)

    def _final_op(self, d: _Dialogue) -> UssdServiceOp:
        if d.network_initiated:
            return _O.USSN_REQ  # no PSSR to respond to: notify, then release (end bit)
        return _O.PSSD_RESP if d.opening_op is _O.PSSD_IND else _O.PSSR_RESP

    def _closing(self, d: _Dialogue, text: str, data_coding: int | None) -> UssdMessage:
        op = _O.RELEASE if self.profile.has_release else self._final_op(d)
        return self._message(d, op, text, True, data_coding)

    def _message(
        self, d: _Dialogue, op: UssdServiceOp, text: str, end: bool, data_coding: int | None
    ) -> UssdMessage:
        sequence = None
        if d.sequence is not None:
            sequence = d.sequence = (d.sequence + 1) & 0x7F
        key = d.key
        return UssdMessage(
            op, key.msisdn, text, d.service_addr, key.session_id, sequence, end, None, data_coding
        )

    def _end(self, d: _Dialogue) -> None:
        d.state = St.ENDED
        del self._dialogues[d.key]
        timers = self._timers
        if len(timers) > 64 and len(timers) > 8 * len(self._dialogues):
            self._timers = [t for t in timers if self._valid(t)]
            heapq.heapify(self._timers)

    def _arm(self, deadline: float, kind: int, d: _Dialogue, token: int) -> None:
        self._timer_count += 1
        heapq.heappush(self._timers, (deadline, self._timer_count, kind, d.key, d.serial, token))

    def _valid(self, timer: tuple[float, int, int, DialogueKey, int, int]) -> bool:
        _, _, kind, key, serial, token = timer
        d = self._dialogues.get(key)
        if d is None or d.serial != serial:
            return False
        return kind == _SESSION or (d.state is St.AWAITING_USER and d.reply_token == token)

    def _expire(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)
            if not self._valid(timer):
                continue
            d = self._dialogues[timer[3]]
            self._step(d, In.REPLY_TIMEOUT if timer[2] == _REPLY else In.SESSION_TIMEOUT)
            release = self._closing(d, "", None)
            self._end(d)
            which: Literal["reply", "session"] = "reply" if timer[2] == _REPLY else "session"
            self._emit(DialogueTimedOut(d.key, which, release))
            timers = self._timers  # _end may have compacted the heap


def _same(previous: UssdMessage | None, message: UssdMessage) -> bool:
    """True when ``message`` repeats ``previous`` (same op, text and sequence): a retransmission."""
    return (
        previous is not None
        and previous.op is message.op
        and previous.text == message.text
        and previous.sequence == message.sequence
    )

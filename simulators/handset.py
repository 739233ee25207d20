"""A simulated handset: the terminal (ME) between the SMSC simulator, its SIM card and a simulated user.

The asyncio glue around the pure ``simulators.sim_applet.SimCard`` (DESIGN.md: a thin adapter; the
card never reads a clock, the handset passes ``loop.time()``):

- MT text (anything but SIM data download) goes to ``inbox``; the SMSC simulator hands over long
  messages reassembled (``MtMessage.text``).
- MT with TP-PID 0x7F and a class-2 DCS is a (U)SIM data download (3GPP TS 31.111 section 7.1.1): the
  handset builds the SMS-DELIVER TPDU (TS 23.040 9.2.2.1) and the ENVELOPE (SMS-PP DOWNLOAD) and hands
  it to the card. The card's status word decides the delivery state the SMSC reports in its receipt,
  as TS 31.111 section 7.1.1.1 maps it (PROTOCOLS.md section 1.5.7): RP-ACK is DELIVERED (a PoR in the
  RP-ACK is kept in ``delivery_reports``), RP-ERROR is UNDELIVERABLE.
- Proactive commands (ETSI TS 102 223 section 6.6) are fetched at once. One the TERMINAL PROFILE (section
  5.2) cannot run is refused with TERMINAL RESPONSE '30' (beyond terminal capabilities); the card then
  reports UNABLE, except for a yes/no GET INKEY, which the card itself replaces by DISPLAY TEXT because
  the handset told it its profile. SEND SHORT MESSAGE (TS 31.111 section 6.6.9) becomes
  ``SmscSimulator.inject_mo`` with the SMS-SUBMIT's fields (esm_class UDHI when the TPDU has a user data
  header); its TERMINAL RESPONSE is '00' when the ESME took it, '35' (SMS RP-ERROR) when the ESME
  refused it and '21' (network unable) when no ESME was there.
- Dialogs (DISPLAY TEXT, GET INKEY, GET INPUT, SELECT ITEM) go to the simulated user, whose
  ``UserPolicy`` answers after a reaction delay drawn from a seeded ``random.Random``: accept, decline,
  ignore (the terminal's own timeout, the command's Duration or ``dialog_timeout``, answers '12') or busy
  ('20' screen busy, at once). Timers are ``loop.call_later`` in the handset, never in the card. A scenario sets
  ``choose_policy`` to pick the user per dialog and ``on_text`` to react to each text.

USSD (MAP USSD, 3GPP TS 24.090, carried over SMPP by the SMSC simulator's relay; PROTOCOLS.md 1.1, 1.3):
``await handset.dial("*123#")`` returns a ``UssdDialog`` for a scripted user: ``next_screen()``,
``answer(text)``, ``cancel()`` (the ESME is told) and ``abandon()`` (the user walks away, to exercise
timeouts). Sessions the network opens (USSR menus, USSN notifications) arrive through
``next_network_dialog()``. Every screen is a log entry as it arrives. A dialog holds no task: screens
are pushed to it by the SMSC simulator, so a thousand handsets dialling at once cost a thousand small
objects and nothing that outlives them.

``log`` records what happened, in order, for testers and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Literal

from protocols.errors import ConfigError, DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.gsm.dcs import PID_SIM_DATA_DOWNLOAD, decode_dcs
from protocols.gsm.split import UDHI, decode_short_message
from protocols.gsm.tpdu import TON_ALPHANUMERIC, SmsDeliver, SmsSubmit, Timestamp
from protocols.gsm.tpdu import Address as SmsAddress
from protocols.gsm.udh import decode_udh
from protocols.smpp.constants import MessageState
from protocols.smpp.tlv import Tag, find_tlv
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInkeyQualifier,
    GetInput,
    ProactiveCommand,
    SelectItem,
    SendShortMessage,
    decode_proactive,
)
from protocols.stk.dstk import DstkAnswer
from protocols.stk.envelope import SmsPpDownload, SmsPpDownloadResponse
from protocols.stk.terminal import (
    GeneralResult,
    Result,
    TerminalProblem,
    TerminalProfile,
    TerminalProfileFeature,
    TerminalResponse,
)
from protocols.stk.tlv import Address as StkAddress
from protocols.stk.tlv import TextString
from simulators.sim_applet import (
    DialogAnswered,
    DialogTimedOut,
    EnvelopeProcessed,
    Event,
    OfferRefused,
    ProactiveCommandPending,
    SecuredPacketRejected,
    SimCard,
    SmsPpRefused,
    ToolkitBusy,
)
from simulators.smsc import MtMessage, SmscSimulator, UssdError, UssdScreen, UssdSession

__all__ = [
    "DEFAULT_PROFILE",
    "Handset",
    "HandsetLogEntry",
    "LogKind",
    "ReactionDelay",
    "UserAction",
    "UserPolicy",
    "UssdDialog",
]

log = logging.getLogger(__name__)

DEFAULT_PROFILE = TerminalProfile.from_features(
    (
        TerminalProfileFeature.PROFILE_DOWNLOAD,
        TerminalProfileFeature.SMS_PP_DATA_DOWNLOAD,
        TerminalProfileFeature.SIM_DATA_DOWNLOAD_ERROR_9EXX,
        TerminalProfileFeature.COMMAND_RESULT,
        TerminalProfileFeature.UCS2_ENTRY,
        TerminalProfileFeature.UCS2_DISPLAY,
        TerminalProfileFeature.DISPLAY_TEXT,
        TerminalProfileFeature.GET_INKEY,
        TerminalProfileFeature.GET_INPUT,
        TerminalProfileFeature.SELECT_ITEM,
        TerminalProfileFeature.SEND_SHORT_MESSAGE,
        TerminalProfileFeature.SET_UP_MENU,
        TerminalProfileFeature.GET_INKEY_BINARY_CHOICE,
    ),
    length=10,
)
"""A capable handset: SMS-PP download and the commands of the offer dialog, yes/no GET INKEY included."""


# --- the simulated user ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReactionDelay:
    """How long the user takes to answer, in seconds.

    ``fixed``: always ``a``; ``uniform``: between ``a`` and ``b``; ``lognormal``: ``exp(N(a, b))``, the
    usual shape of human reaction times (``a`` = mu, ``b`` = sigma of the underlying normal).
    """

    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    a: float = 0.0
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution == "fixed" and self.a < 0:
            raise ConfigError(f"a fixed reaction delay must be >= 0 s, got {self.a}")
        if self.distribution == "uniform" and not 0 <= self.a <= self.b:
            raise ConfigError(f"a uniform reaction delay needs 0 <= low <= high, got {self.a}..{self.b}")
        if self.distribution == "lognormal" and self.b < 0:
            raise ConfigError(f"a lognormal reaction delay needs sigma >= 0, got {self.b}")
        if self.distribution not in ("fixed", "uniform", "lognormal"):
            raise ConfigError(
                f"unknown delay distribution {self.distribution!r}: fixed, uniform or lognormal"
            )

    @classmethod
    def fixed(cls, seconds: float) -> ReactionDelay:
        return cls("fixed", seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> ReactionDelay:
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, mu: float, sigma: float) -> ReactionDelay:
        return cls("lognormal", mu, sigma)

    def draw(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.a, self.b)
        if self.distribution == "lognormal":
            return rng.lognormvariate(self.a, self.b)
        return self.a


class UserAction(Enum):
    """What the simulated user does with a dialog."""

    ACCEPT = "accept"  # OK / Yes / choose an item
    DECLINE = "decline"  # No / Back
    IGNORE = "ignore"  # nothing: the terminal times out ('12')
    BUSY = "busy"  # the screen is busy: '20' with '01', at once


ItemChoice = Literal["first", "last", "random"] | int


@dataclass(frozen=True, slots=True)
class UserPolicy:
    """The simulated user: the ``action`` for every dialog, which SELECT ITEM ``item`` to choose (an
    index from 0 into the items, or first / last / random), the ``delay`` before answering, and the
    text typed into GET INPUT (its first character for a non-yes/no GET INKEY)."""

    action: UserAction = UserAction.ACCEPT
    item: ItemChoice = "first"
    delay: ReactionDelay = ReactionDelay()
    input_text: str = "1"

    def __post_init__(self) -> None:
        if isinstance(self.item, str) and self.item not in ("first", "last", "random"):
            raise ConfigError(f"item choice {self.item!r}: first, last, random or an index")
        if isinstance(self.item, int) and self.item < 0:
            raise ConfigError(f"item index must be >= 0, got {self.item}")
        if not self.input_text:
            raise ConfigError("input_text must not be empty")


# --- the log -----------------------------------------------------------------------------------------


class LogKind(Enum):
    TEXT_RECEIVED = "text received"
    MT_IGNORED = "MT ignored"
    SIM_DOWNLOAD = "SIM data download"  # the card's status word and what the network was told
    REJECTED = "rejected"  # the card refused an SMS-PP download, a secured packet or an offer
    DIALOG_SHOWN = "dialog shown"
    USER_ANSWERED = "user answered"
    TERMINAL_ANSWERED = "terminal answered"  # '12' timeout, '20' busy, '30' / '32' refused
    CARD_TIMED_OUT = "card timed out"
    CARD_ANSWER = "card answer"  # the DstkAnswer the applet sends
    MO_SENT = "MO sent"
    MO_FAILED = "MO failed"
    USSD_DIALLED = "USSD dialled"
    USSD_SCREEN = "USSD screen"  # one per screen, as it arrives
    USSD_ANSWERED = "USSD answered"
    USSD_ENDED = "USSD ended"  # by the user (cancel, abandon) or by a failure of the network


@dataclass(frozen=True, slots=True)
class HandsetLogEntry:
    """One thing that happened: when (loop time), what kind, a human-readable detail, and the status
    (status word, general result, PoR status or command_status) when there is one."""

    at: float
    kind: LogKind
    detail: str
    status: int | None = None


@dataclass(slots=True, eq=False)
class _Dialog:
    command: ProactiveCommand
    user_timer: asyncio.TimerHandle | None = None
    terminal_timer: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        for timer in (self.user_timer, self.terminal_timer):
            if timer is not None:
                timer.cancel()


_DIALOGS = (DisplayText, GetInkey, GetInput, SelectItem)
_DECLINE = GeneralResult.BACKWARD_MOVE_REQUESTED_BY_USER


def _command_name(command: ProactiveCommand) -> str:
    return type(command).__name__


class Handset:
    """A handset registered with ``smsc`` under ``msisdn``; ``sim_card`` None is a phone without our SIM.

    ``dialog_timeout`` is the terminal's own dialog timeout when a command carries no Duration;
    ``service_centre`` is the SC address written into the SMS-PP envelope.
    """

    def __init__(  # noqa: PLR0917 - msisdn, SIM, profile, user, SMSC, seed: how a scenario reads
        self,
        msisdn: str,
        sim_card: SimCard | None,
        profile: TerminalProfile,
        user: UserPolicy,
        smsc: SmscSimulator,
        seed: int | None = None,
        *,
        dialog_timeout: float = 60.0,
        service_centre: str = "0000000000",
    ) -> None:
        if dialog_timeout <= 0:
            raise ConfigError(f"handset {msisdn}: dialog_timeout must be positive")
        self.msisdn = msisdn
        self.sim = sim_card
        self.profile = profile
        self.user = user
        self.smsc = smsc
        self.dialog_timeout = dialog_timeout
        self.service_centre = service_centre
        self.random = random.Random(seed)
        self.inbox: list[str] = []
        self.log: list[HandsetLogEntry] = []
        self.answers: list[DstkAnswer] = []  # what the card answered to each offer
        self.delivery_reports: list[SmsPpDownloadResponse] = []  # RP-ACK / RP-ERROR sent for SIM downloads
        self._dialog: _Dialog | None = None
        self._card_timer: asyncio.TimerHandle | None = None
        self._card_deadline: float | None = None
        self._pumping = False
        self._envelope: EnvelopeProcessed | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._ussd_dialogs: list[UssdDialog] = []
        self._incoming: deque[UssdDialog] = deque()
        self._incoming_waiter: asyncio.Future[None] | None = None
        # scenario hooks: who the user is for each dialog, and what they do with each text
        self.choose_policy: Callable[[ProactiveCommand], UserPolicy] | None = None
        self.on_text: Callable[[str], None] | None = None
        # each APDU exchanged with the card, command and response together (a capture's GSMTAP SIM)
        self.on_apdu: Callable[[bytes], None] | None = None
        self._envelope_sent = b""
        if sim_card is not None:
            sim_card.set_terminal_profile(profile)  # as a terminal does at power-on
        smsc.register_handset(msisdn, self.on_mt)
        smsc.register_ussd_handset(msisdn, self._on_network_ussd)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Unregister from the SMSC, stop every timer and cancel the MOs in flight."""
        self._closed = True
        self.smsc.unregister_handset(self.msisdn)
        self.smsc.unregister_ussd_handset(self.msisdn)
        for dialog in [*self._ussd_dialogs, *self._incoming]:
            if not dialog.ended:
                dialog.abandon()  # switched off: the network finds out by its own timeout
        self._ussd_dialogs.clear()
        self._incoming.clear()
        if self._incoming_waiter is not None and not self._incoming_waiter.done():
            self._incoming_waiter.set_result(None)  # next_network_dialog raises: switched off
        if self._dialog is not None:
            self._dialog.cancel()
            self._dialog = None
        if self._card_timer is not None:
            self._card_timer.cancel()
            self._card_timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def entries(self, kind: LogKind) -> list[HandsetLogEntry]:
        """The log entries of one kind."""
        return [entry for entry in self.log if entry.kind is kind]

    @property
    def dialog_open(self) -> bool:
        return self._dialog is not None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _record(self, kind: LogKind, detail: str, status: int | None = None) -> None:
        self.log.append(HandsetLogEntry(self._now(), kind, detail, status))
        log.debug("handset %s: %s: %s", self.msisdn, kind.value, detail)

    # --- USSD ---------------------------------------------------------------------------------------

    async def dial(self, code: str, *, timeout: float = 10.0) -> UssdDialog:
        """Dial the USSD string ``code`` (``*123#``, ``*123*500#``): the open dialog once the network
        took it. UssdError when no gateway is bound or it refused; LocalProtocolError for a string
        that is no USSD code."""
        if self._closed:
            raise LocalProtocolError(f"handset {self.msisdn} is switched off")
        self._record(LogKind.USSD_DIALLED, code)
        try:
            session = await self.smsc.dial(self.msisdn, code, timeout=timeout, on_screen=self._log_screen)
        except UssdError as exc:
            self._record(LogKind.USSD_ENDED, f"{code}: {exc}", exc.status or None)
            raise
        dialog = UssdDialog(self, session)
        self._keep(dialog)
        return dialog

    async def next_network_dialog(self, timeout: float | None = None) -> UssdDialog:
        """The next dialog the network opened (a USSR menu or a USSN notification); TimeoutError when
        none comes within ``timeout``."""
        while not self._incoming:
            if self._closed:
                raise LocalProtocolError(f"handset {self.msisdn} is switched off")
            waiter = self._incoming_waiter
            if waiter is None or waiter.done():
                waiter = self._incoming_waiter = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter)
        return self._incoming.popleft()

    def _on_network_ussd(self, session: UssdSession) -> None:
        session.on_screen = self._log_screen
        dialog = UssdDialog(self, session)
        self._keep(dialog)
        self._incoming.append(dialog)
        waiter = self._incoming_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _keep(self, dialog: UssdDialog) -> None:
        dialogs = self._ussd_dialogs
        if dialogs and len(dialogs) % 16 == 0:
            dialogs[:] = [d for d in dialogs if not d.ended]
        dialogs.append(dialog)

    def _log_screen(self, screen: UssdScreen) -> None:
        self._record(LogKind.USSD_SCREEN, f"{screen.label}: {screen.text}", screen.op)

    # --- MT from the SMSC ----------------------------------------------------------------------------

    def on_mt(self, mt: MtMessage) -> MessageState | None:
        """The SMSC simulator's handset handler: the delivery state for the receipt (None: delivered)."""
        if mt.protocol_id == PID_SIM_DATA_DOWNLOAD and decode_dcs(mt.data_coding).message_class == 2:
            return self._sim_data_download(mt)
        text = mt.text if mt.text is not None else self._text_of(mt)
        if text is None:
            self._record(
                LogKind.MT_IGNORED,
                f"binary MT {mt.message_id} from {mt.source_addr} (DCS {mt.data_coding:#04x})",
            )
            return None
        self.inbox.append(text)
        self._record(LogKind.TEXT_RECEIVED, text)
        if self.on_text is not None:
            self.on_text(text)
        return None

    @staticmethod
    def _payload(mt: MtMessage) -> bytes:
        payload = find_tlv(mt.optional_parameters, Tag.MESSAGE_PAYLOAD)
        return mt.short_message if payload is None else payload.value

    def _text_of(self, mt: MtMessage) -> str | None:
        body = self._payload(mt)
        try:
            if mt.esm_class & UDHI:
                body = body[decode_udh(body)[1] :]
            return decode_short_message(mt.data_coding, body)
        except DecodeError:
            return None

    def _sim_data_download(self, mt: MtMessage) -> MessageState:
        if self.sim is None:
            self._record(
                LogKind.MT_IGNORED, f"SIM data download {mt.message_id}: no SIM applet in this handset"
            )
            return MessageState.UNDELIVERABLE
        now = self._now()
        payload = self._payload(mt)
        originator = mt.source_addr
        try:
            if originator and all(ch in "0123456789*#abc" for ch in originator):
                address = SmsAddress(originator, ton=0, npi=1)
            else:
                address = SmsAddress(originator, ton=TON_ALPHANUMERIC, npi=0)
            tpdu = SmsDeliver(
                tp_udhi=bool(mt.esm_class & UDHI),
                tp_oa=address,
                tp_pid=mt.protocol_id,
                tp_dcs=mt.data_coding,
                tp_scts=Timestamp.from_datetime(datetime.now(UTC)),
                tp_udl=len(payload),
                tp_ud=payload,
            ).encode()
        except LocalProtocolError as exc:
            self._record(LogKind.REJECTED, f"SIM data download {mt.message_id} fits no SMS-DELIVER: {exc}")
            return MessageState.UNDELIVERABLE
        envelope = SmsPpDownload(tpdu, StkAddress(0x91, self.service_centre)).encode()
        self._envelope = None
        self._envelope_sent = envelope
        try:
            self.sim.receive_data(envelope, now)
        except RemoteProtocolError as exc:
            self._record(LogKind.REJECTED, f"the card refused the ENVELOPE: {exc}")
            return MessageState.UNDELIVERABLE
        finally:
            self._pump()
        processed = self._envelope
        assert processed is not None  # the card answers every envelope it could decode
        response = processed.download_response
        self.delivery_reports.append(response)
        if response.rp_ack:
            what = "RP-ACK with a PoR" if response.user_data else "RP-ACK"
            self._record(
                LogKind.SIM_DOWNLOAD, f"{mt.message_id}: SW {response.status:04X}, {what}", response.status
            )
            return MessageState.DELIVERED
        cause = response.failure_cause
        self._record(
            LogKind.SIM_DOWNLOAD,
            f"{mt.message_id}: SW {response.status:04X}, RP-ERROR {cause.name if cause else ''}",
            response.status,
        )
        return MessageState.UNDELIVERABLE

    # --- the card's events ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Take every event from the card and act on it; re-arm the card's timer."""
        if self._pumping or self.sim is None:
            return
        self._pumping = True
        try:
            while (event := self.sim.next_event()) is not None:
                self._on_card_event(event)
        finally:
            self._pumping = False
        self._arm_card_timer(self.sim)

    def _on_card_event(self, event: Event) -> None:
        if isinstance(event, EnvelopeProcessed):
            self._envelope = event
            if self.on_apdu is not None:  # before the FETCH its proactive command brings
                self._trace_envelope(self._envelope_sent, event.status_word, event.response_data)
        elif isinstance(event, ProactiveCommandPending):
            self._run_proactive_command()
        elif isinstance(event, DialogTimedOut):
            if self._dialog is not None:
                self._dialog.cancel()
                self._dialog = None
            self._record(LogKind.CARD_TIMED_OUT, f"offer {event.offer_id}: the card gave up waiting")
        elif isinstance(event, DialogAnswered):
            self.answers.append(event.answer)
            answer = event.answer
            self._record(
                LogKind.CARD_ANSWER,
                f"offer {answer.offer_id}: {answer.outcome.name} item {answer.item_id}",
                answer.general_result,
            )
        elif isinstance(event, SecuredPacketRejected):
            self._record(LogKind.REJECTED, f"secured packet: {event.reason}", int(event.status))
        elif isinstance(event, SmsPpRefused | OfferRefused | ToolkitBusy):
            self._record(LogKind.REJECTED, f"{type(event).__name__}: {event.reason}")

    def _arm_card_timer(self, sim: SimCard) -> None:
        deadline = None if self._closed else sim.get_timer()
        if deadline == self._card_deadline:
            return
        if self._card_timer is not None:
            self._card_timer.cancel()
            self._card_timer = None
        self._card_deadline = deadline
        if deadline is not None:
            self._card_timer = asyncio.get_running_loop().call_at(deadline, self._on_card_timer)

    def _on_card_timer(self) -> None:
        self._card_timer = None
        self._card_deadline = None
        assert self.sim is not None  # only a handset with a card arms its timer
        self.sim.handle_timer(self._now())
        self._pump()

    def _respond(self, response: TerminalResponse) -> None:
        assert self.sim is not None
        try:
            encoded = response.encode()
            status_word = self.sim.terminal_response(encoded, self._now())
            if self.on_apdu is not None:  # TERMINAL RESPONSE (INS 14) and the card's status word
                self.on_apdu(
                    bytes((0x80, 0x14, 0, 0, len(encoded))) + encoded + status_word.to_bytes(2, "big")
                )
        except RemoteProtocolError as exc:  # the card moved on (its guard fired first)
            self._record(LogKind.TERMINAL_ANSWERED, f"the card refused the TERMINAL RESPONSE: {exc}")
        self._pump()

    # --- proactive commands --------------------------------------------------------------------------

    def _trace_envelope(self, envelope: bytes, status_word: int, response_data: bytes) -> None:
        """ENVELOPE (TS 102 221 10.1.1, CLA 80 INS C2) and, when the card has response data for it, the
        GET RESPONSE (INS C0) that reads it: each as command + response + status word."""
        assert self.on_apdu is not None
        if response_data:
            self.on_apdu(bytes((0x80, 0xC2, 0, 0, len(envelope))) + envelope + status_word.to_bytes(2, "big"))
            self.on_apdu(bytes((0x00, 0xC0, 0, 0, len(response_data))) + response_data + b"\x90\x00")
        else:
            self.on_apdu(bytes((0x80, 0xC2, 0, 0, len(envelope))) + envelope + status_word.to_bytes(2, "big"))

    def _run_proactive_command(self) -> None:
        assert self.sim is not None
        fetched = self.sim.fetch()
        if self.on_apdu is not None:  # FETCH (TS 102 221 10.1.1, INS 12): Le, the command, 90 00
            self.on_apdu(bytes((0x80, 0x12, 0, 0, len(fetched))) + fetched + b"\x90\x00")
        try:
            command = decode_proactive(fetched)
        except DecodeError as exc:  # not from our card; nothing to answer it with
            self._record(LogKind.TERMINAL_ANSWERED, f"undecodable proactive command: {exc}")
            return
        if not self.profile.supports_command(command):
            self._record(
                LogKind.TERMINAL_ANSWERED,
                f"{_command_name(command)} is beyond this terminal's capabilities",
                GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES,
            )
            self._respond(
                TerminalResponse.for_command(command, GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES)
            )
        elif isinstance(command, SendShortMessage):
            self._send_short_message(command)
        elif isinstance(command, _DIALOGS):
            self._show(command)
        else:
            self._record(
                LogKind.TERMINAL_ANSWERED,
                f"{_command_name(command)} is not simulated",
                GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES,
            )
            self._respond(
                TerminalResponse.for_command(command, GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES)
            )

    def _send_short_message(self, command: SendShortMessage) -> None:
        try:
            tpdu = SmsSubmit.decode(command.sms_tpdu)
        except DecodeError as exc:
            self._record(LogKind.MO_FAILED, f"SEND SHORT MESSAGE carries no SMS-SUBMIT: {exc}")
            self._respond(TerminalResponse.for_command(command, GeneralResult.COMMAND_DATA_NOT_UNDERSTOOD))
            return
        task = asyncio.get_running_loop().create_task(self._inject(command, tpdu))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _inject(self, command: SendShortMessage, tpdu: SmsSubmit) -> None:
        destination = tpdu.tp_da.value
        try:
            status = await self.smsc.inject_mo(
                self.msisdn,
                destination,
                tpdu.tp_ud,
                data_coding=tpdu.tp_dcs,
                esm_class=UDHI if tpdu.tp_udhi else 0,
                protocol_id=tpdu.tp_pid,
            )
        except (ConnectionError, TimeoutError) as exc:
            self._record(LogKind.MO_FAILED, f"MO to {destination}: {exc or type(exc).__name__}")
            result = GeneralResult.NETWORK_CURRENTLY_UNABLE_TO_PROCESS_COMMAND
        else:
            if status == 0:
                self._record(LogKind.MO_SENT, f"MO to {destination}: {len(tpdu.tp_ud)} octets", status)
                result = GeneralResult.PERFORMED_SUCCESSFULLY
            else:
                self._record(
                    LogKind.MO_FAILED, f"MO to {destination}: the ESME answered {status:#010x}", status
                )
                result = GeneralResult.SMS_RP_ERROR
        if not self._closed:
            self._respond(TerminalResponse.for_command(command, result))

    def _show(self, command: ProactiveCommand) -> None:
        loop = asyncio.get_running_loop()
        dialog = _Dialog(command)
        self._dialog = dialog
        self._record(LogKind.DIALOG_SHOWN, f"{_command_name(command)}: {_dialog_text(command)}")
        if self.choose_policy is not None:
            self.user = self.choose_policy(command)
        action = self.user.action
        if action is UserAction.BUSY:
            self._dialog = None
            result = Result(
                GeneralResult.TERMINAL_CURRENTLY_UNABLE_TO_PROCESS_COMMAND,
                bytes((TerminalProblem.SCREEN_IS_BUSY,)),
            )
            self._record(LogKind.TERMINAL_ANSWERED, "screen busy", result.general_result)
            self._respond(TerminalResponse.for_command(command, result))
            return
        duration = getattr(command, "duration", None)
        timeout = self.dialog_timeout
        if duration is not None and duration.seconds:
            timeout = duration.seconds
        dialog.terminal_timer = loop.call_later(timeout, self._on_terminal_timeout, dialog)
        if action is not UserAction.IGNORE:
            dialog.user_timer = loop.call_later(self.user.delay.draw(self.random), self._on_user, dialog)

    def _on_terminal_timeout(self, dialog: _Dialog) -> None:
        if self._dialog is not dialog:
            return
        dialog.cancel()
        self._dialog = None
        self._record(
            LogKind.TERMINAL_ANSWERED, "no response from the user", GeneralResult.NO_RESPONSE_FROM_USER
        )
        self._respond(TerminalResponse.for_command(dialog.command, GeneralResult.NO_RESPONSE_FROM_USER))

    def _on_user(self, dialog: _Dialog) -> None:
        if self._dialog is not dialog:
            return
        dialog.cancel()
        self._dialog = None
        response = self._user_answer(dialog.command)
        detail = f"{_command_name(dialog.command)}: {self.user.action.value}"
        if response.item_identifier is not None:
            detail += f", item {response.item_identifier}"
        if response.yes_no is not None:
            detail += ", Yes" if response.yes_no else ", No"
        self._record(LogKind.USER_ANSWERED, detail, response.general_result)
        self._respond(response)

    def _user_answer(self, command: ProactiveCommand) -> TerminalResponse:
        accept = self.user.action is UserAction.ACCEPT
        if isinstance(command, GetInkey) and command.command_qualifier & GetInkeyQualifier.YES_NO:
            return TerminalResponse.for_command(command, text_string=TextString.yes_no(accept))
        if not accept:
            return TerminalResponse.for_command(command, _DECLINE)
        if isinstance(command, SelectItem):
            item = self._choose(command)
            if item is None:
                return TerminalResponse.for_command(command, _DECLINE)
            return TerminalResponse.for_command(command, item_identifier=item)
        if isinstance(command, GetInput):
            return TerminalResponse.for_command(command, text_string=TextString.of(self.user.input_text))
        if isinstance(command, GetInkey):
            return TerminalResponse.for_command(command, text_string=TextString.of(self.user.input_text[0]))
        return TerminalResponse.for_command(command)

    def _choose(self, command: SelectItem) -> int | None:
        """The identifier of the item the policy picks; None when its index is not in the list."""
        items = [item.identifier for item in command.items if item.identifier is not None]
        choice = self.user.item
        if not items:
            return None
        if choice == "first":
            return items[0]
        if choice == "last":
            return items[-1]
        if choice == "random":
            return self.random.choice(items)
        assert isinstance(choice, int)
        if choice >= len(items):
            self._record(LogKind.USER_ANSWERED, f"item index {choice} is not among {len(items)} items: Back")
            return None
        return items[choice]


class UssdDialog:
    """A USSD dialog on a handset, for a scripted user: the handset's view of a ``UssdSession``."""

    __slots__ = ("handset", "session")

    def __init__(self, handset: Handset, session: UssdSession) -> None:
        self.handset = handset
        self.session = session

    def __repr__(self) -> str:
        return f"<UssdDialog {self.handset.msisdn} {self.session!r}>"

    @property
    def screens(self) -> list[UssdScreen]:
        """Every screen so far, read or not."""
        return self.session.history

    @property
    def ended(self) -> bool:
        return self.session.ended

    @property
    def end_reason(self) -> str | None:
        return self.session.end_reason

    @property
    def awaiting_input(self) -> bool:
        return self.session.awaiting_input

    async def next_screen(self, timeout: float | None = None) -> UssdScreen:
        """The next screen (TimeoutError when none comes in time; UssdError once all are read and the
        dialog is over)."""
        return await self.session.next_screen(timeout)

    async def answer(self, text: str, *, timeout: float = 10.0) -> None:
        """Type ``text`` into the screen that asks for input and press Send."""
        if self.session.awaiting_input:  # else the reply raises LocalProtocolError: nothing was typed
            self.handset._record(LogKind.USSD_ANSWERED, text)
        try:
            await self.session.reply(text, timeout=timeout)
        except UssdError as exc:
            self.handset._record(LogKind.USSD_ENDED, str(exc), exc.status or None)
            raise

    async def cancel(self, *, timeout: float = 10.0) -> None:
        """Press Cancel: the dialog ends and the gateway is told at once."""
        if not self.session.ended:
            self.handset._record(LogKind.USSD_ENDED, "cancelled by the user")
        await self.session.release(timeout=timeout)

    def abandon(self) -> None:
        """Walk away: nothing more is shown and the gateway is not told (its timeouts run)."""
        if not self.session.ended:
            self.handset._record(LogKind.USSD_ENDED, "abandoned by the user")
        self.session.abandon()


def _dialog_text(command: ProactiveCommand) -> str:
    """What the user sees, for the log."""
    try:
        if isinstance(command, SelectItem):
            title = command.alpha_identifier.text if command.alpha_identifier is not None else ""
            return " | ".join([title, *(item.text for item in command.items)])
        text = getattr(command, "text_string", None)
        return text.text if isinstance(text, TextString) else ""
    except DecodeError as exc:
        return f"<undecodable text: {exc}>"

"""The UICC of a simulated handset: SMS-PP data download, OTA security and our DSTK applet (sans-I/O).

What the card does, in the order of the chain of PROTOCOLS.md section 1.5:

1. ENVELOPE (SMS-PP DOWNLOAD), 3GPP TS 31.111 section 7.1.1: the terminal hands over the SMS-DELIVER
   (TS 23.040 9.2.2.1). The card checks TP-PID 0x7F ((U)SIM data download) and a class-2 8-bit TP-DCS,
   and finds the Command Packet Identifier (UDH IEI 0x70, TS 31.115 section 4.1) anywhere in the user
   data header. Concatenated SMS-PP (IEI 0x00 / 0x08) is reassembled across envelopes, keyed by
   originator, reference and part count; IEI 0x70 may sit in the first segment only or in every one.
2. The secured command packet (ETSI TS 102 225 section 5.1, TS 31.115 section 4.2) is verified with
   ``protocols.stk.ota.parse_command_packet``: the key set of its TAR, the TAR's minimum security
   level, then the RC/CC and the replay counter. The card keeps the last counter per TAR and moves it
   only after a packet verified. Failures answer with the Response Status Code of TS 102 225 section
   5.2: 0x01 RC/CC/DS failed, 0x02 counter low, 0x06 unidentified security error, 0x09 TAR unknown,
   0x0A insufficient security level.
3. Proof of Receipt (TS 102 225 section 5.2, TS 31.115 section 4.4) as SPI2 asks: none, always or on
   error only, in the response data of the ENVELOPE (the terminal puts it in the RP-ACK / RP-ERROR
   TP-User-Data: SMS-DELIVER-REPORT) or, with SPI2 b6, as an MO SMS-SUBMIT by SEND SHORT MESSAGE to
   the originator. An error PoR for 0x06 / 0x09 / 0x05 goes out without security (the card has no
   usable keys for it); other PoRs are secured as SPI2 says, with the TAR's keys.
4. Status words for the ENVELOPE, mapped by the terminal as in TS 31.111 section 7.1.1.1 (PROTOCOLS.md
   section 1.5.7, ``protocols.stk.envelope.SmsPpDownloadResponse``): '90 00'; '91 XX' when a
   proactive command waits; '9F XX' with a PoR in the response data; '93 00' while a proactive session
   is still running (toolkit busy: the network retries later); '9E XX' (terminal profile bit
   "9EXX response code for SIM data download error") or else '62 F3' with an error PoR; '6F 00' for
   any other failure. A real card that has both a PoR and a proactive command answers '9F XX' and then
   '91 XX' to GET RESPONSE; here the ``ProactiveCommandPending`` event tells the terminal instead.
5. The DSTK applet (every TAR the card holds keys for runs it): the application message is a
   ``protocols.stk.dstk.DstkOffer``; its proactive command (ETSI TS 102 223 section 6.6) is queued
   and announced with '91 XX'. FETCH gives it to the terminal, whose TERMINAL RESPONSE (section 6.8)
   the applet turns into a ``DstkAnswer``: result '00' (or Yes to a yes/no GET INKEY) accepted,
   No / '10' / '11' / '13' / '14' / '22' declined, '12' no response, a SELECT ITEM item chosen, any
   other '2X' / '3X' unable. The answer travels as the additional response data of a response packet
   with the command's TAR and counter, secured as SPI2 says, in an SMS-SUBMIT (TP-PID 0x7F, TP-DCS
   0xF6, UDH IEI 0x71) to the offer's ``reply_to`` that the applet hands to the terminal with SEND
   SHORT MESSAGE (TS 31.111 section 6.6.9).

A yes/no GET INKEY needs the terminal profile bit "binary choice in GET INKEY" (TS 102 223 section
5.2). When the TERMINAL PROFILE the terminal sent lacks it, the applet shows the same text with DISPLAY
TEXT instead (OK accepts, Back declines: PROTOCOLS.md section 1.6), and it does the same once when a
terminal answers a yes/no GET INKEY with '30' (beyond terminal capabilities). Any other refusal ends
in ``StkOutcome.UNABLE`` with the terminal's general result.

The simulated user is not in the card: ``ProactiveCommandPending`` with ``CommandPurpose.DIALOG`` is
"the dialog is to be shown", and the user's answer comes back as the TERMINAL RESPONSE. The terminal
normally reports its own timeout ('12'); when it reports nothing, the card's guard timer
(``get_timer`` / ``handle_timer``) ends the dialog as no response after ``dialog_timeout`` seconds
(or the command's Duration, if longer), so an answer always goes out.

Engine face (DESIGN.md, "One engine shape"): ``receive_data(envelope, now)`` is the ENVELOPE APDU,
``data_to_send()`` / ``fetch()`` the FETCH, ``terminal_response(data, now)`` the TERMINAL RESPONSE,
``set_terminal_profile(...)`` the TERMINAL PROFILE; events come from ``next_event()``. The card never
reads a clock. For any envelope bytes it yields events or raises ``RemoteProtocolError`` (only when
the ENVELOPE BER-TLV itself cannot be decoded: everything inside an SMS-PP download is answered with
a status word and an event); a TERMINAL RESPONSE that cannot be decoded or answers no fetched command
raises ``RemoteProtocolError`` and changes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeGuard

from protocols.errors import ConfigError, DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.gsm.alphabet import Coding
from protocols.gsm.dcs import DCS_SIM_DATA_DOWNLOAD, PID_SIM_DATA_DOWNLOAD, decode_dcs
from protocols.gsm.tpdu import Address as SmsAddress
from protocols.gsm.tpdu import SmsDeliver, SmsSubmit
from protocols.gsm.udh import Concat8, SimToolkitSecurity, concat_ie, decode_udh
from protocols.stk.commands import (
    DisplayText,
    DisplayTextQualifier,
    GetInkey,
    GetInkeyQualifier,
    ProactiveCommand,
    SelectItem,
    SendShortMessage,
    decode_proactive,
)
from protocols.stk.dstk import DstkAnswer, DstkOffer, StkOutcome
from protocols.stk.envelope import SmsPpDownload, SmsPpDownloadResponse, decode_envelope
from protocols.stk.ota import (
    CommandHeader,
    CounterMode,
    KeySet,
    Kic,
    Kid,
    OtaSecurityError,
    PorMode,
    ResponseStatus,
    Spi,
    build_response_packet,
    parse_command_packet,
)
from protocols.stk.terminal import GeneralResult, TerminalProfile, TerminalProfileFeature, TerminalResponse
from protocols.stk.tlv import COMMAND_DATA_NOT_UNDERSTOOD

__all__ = [
    "SW_DATA_DOWNLOAD_ERROR",
    "SW_OK",
    "SW_RESPONSE_DATA_WARNING",
    "SW_TOOLKIT_BUSY",
    "CommandPurpose",
    "DialogAnswered",
    "DialogReplaced",
    "DialogTimedOut",
    "EnvelopeIgnored",
    "EnvelopeProcessed",
    "Event",
    "OfferReceived",
    "OfferRefused",
    "ProactiveCommandPending",
    "ProofOfReceiptIssued",
    "SecuredPacketRejected",
    "SecuredPacketVerified",
    "ShortMessageReported",
    "ShortMessageToSend",
    "SimCard",
    "SmsPpRefused",
    "SmsPpSegmentStored",
    "ToolkitBusy",
    "dialog_outcome",
]

SW_OK = 0x9000
SW_TOOLKIT_BUSY = 0x9300  # TS 102 221 10.2.1.1; RP-ERROR 'D4' (TS 31.111 7.1.1.1)
SW_DATA_DOWNLOAD_ERROR = 0x6F00  # technical problem, no precise diagnosis; RP-ERROR 'D5'
SW_RESPONSE_DATA_WARNING = 0x62F3  # TS 102 221: warning, response data available; RP-ERROR 'D5' + data
_SW_PROACTIVE = 0x9100  # '91 XX': a proactive command of XX octets is pending
_SW_RESPONSE_DATA = 0x9F00  # '9F XX': XX octets of response data (TS 102 221)
_SW_DOWNLOAD_ERROR_DATA = 0x9E00  # '9E XX': SIM data download error with XX octets of response data

# error PoRs sent in clear: the card has no key the sender would trust for them (unknown TAR, a
# header it cannot read, a packet it cannot decipher, or a checksum made with a key it does not
# share), and a clear error status at least tells the sender which push failed and why
_UNSECURED_STATUSES = frozenset(
    {
        ResponseStatus.RC_CC_DS_FAILED,
        ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
        ResponseStatus.TAR_UNKNOWN,
        ResponseStatus.CIPHERING_ERROR,
    }
)
# TERMINAL RESPONSE general results the applet reads as "the user said no" (TS 102 223 8.12)
_DECLINING_RESULTS = frozenset(
    {
        GeneralResult.PROACTIVE_SESSION_TERMINATED_BY_USER,
        GeneralResult.BACKWARD_MOVE_REQUESTED_BY_USER,
        GeneralResult.HELP_INFORMATION_REQUIRED_BY_USER,
        GeneralResult.USSD_OR_SS_TRANSACTION_TERMINATED_BY_USER,
        GeneralResult.USER_DID_NOT_ACCEPT_PROACTIVE_COMMAND,
    }
)
_FIRST_PROBLEM = 0x20  # '2X' and '3X': the terminal could not do it


class CommandPurpose(Enum):
    """Why the card issued a proactive command."""

    DIALOG = "dialog"  # the offer's dialog: show it to the user
    ANSWER = "answer"  # SEND SHORT MESSAGE with the applet's DstkAnswer
    PROOF_OF_RECEIPT = "proof_of_receipt"  # SEND SHORT MESSAGE with the PoR (SPI2 b6)


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvelopeProcessed:
    """The card answered an ENVELOPE with ``status_word`` (and ``response_data`` for GET RESPONSE)."""

    status_word: int
    response_data: bytes = b""

    @property
    def download_response(self) -> SmsPpDownloadResponse:
        """What the terminal tells the network: RP-ACK / RP-ERROR and the TP-User-Data (TS 31.111 7.1.1.1)."""
        return SmsPpDownloadResponse.from_status(self.status_word, self.response_data)


@dataclass(frozen=True, slots=True)
class EnvelopeIgnored:
    """An ENVELOPE other than SMS-PP download; the card has nothing to do with it ('90 00')."""

    reason: str


@dataclass(frozen=True, slots=True)
class ToolkitBusy:
    """An SMS-PP download arrived while a proactive session was running ('93 00', nothing consumed)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SmsPpRefused:
    """The SMS TPDU is not a (U)SIM data download the card can process ('6F 00')."""

    reason: str


@dataclass(frozen=True, slots=True)
class SmsPpSegmentStored:
    """One segment of a concatenated SMS-PP was kept until the others arrive ('90 00')."""

    originator: str
    reference: int
    sequence: int
    total: int


@dataclass(frozen=True, slots=True)
class SecuredPacketVerified:
    """A command packet passed the security checks; the TAR's counter is now ``cntr``."""

    tar: bytes
    cntr: int
    spi: Spi


@dataclass(frozen=True, slots=True)
class SecuredPacketRejected:
    """A command packet failed a check of TS 102 225; ``status`` is the PoR Response Status Code.

    ``tar`` and ``cntr`` are those of the packet when they could be read.
    """

    status: ResponseStatus
    reason: str
    tar: bytes | None = None
    cntr: int | None = None


@dataclass(frozen=True, slots=True)
class ProofOfReceiptIssued:
    """A PoR (response packet after UDH ``02 71 00``) went out in the ENVELOPE response or by SMS-SUBMIT."""

    status: ResponseStatus
    via_sms_submit: bool
    user_data: bytes


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """The DSTK applet accepted an offer and will show ``command``."""

    offer_id: str
    reply_to: str
    command: ProactiveCommand


@dataclass(frozen=True, slots=True)
class OfferRefused:
    """The secured data is not an offer the applet can run; ``offer_id`` when it could be read.

    When the offer id and reply address are known, an UNABLE answer goes back to the gateway.
    """

    reason: str
    offer_id: str | None = None


@dataclass(frozen=True, slots=True)
class DialogReplaced:
    """The applet replaced a command the terminal cannot run (a yes/no GET INKEY) by ``replacement``."""

    offer_id: str
    original: ProactiveCommand
    replacement: ProactiveCommand
    reason: str


@dataclass(frozen=True, slots=True)
class ProactiveCommandPending:
    """'91 XX': ``command`` waits for FETCH. For ``CommandPurpose.DIALOG`` it is the dialog to show."""

    command: ProactiveCommand
    purpose: CommandPurpose
    offer_id: str | None = None


@dataclass(frozen=True, slots=True)
class DialogTimedOut:
    """The terminal reported nothing within the card's guard time: the dialog ends as no response."""

    offer_id: str
    command: ProactiveCommand


@dataclass(frozen=True, slots=True)
class DialogAnswered:
    """The applet's verdict on a dialog; ``terminal_response`` is None when the card's guard timed out."""

    answer: DstkAnswer
    terminal_response: TerminalResponse | None = None


@dataclass(frozen=True, slots=True)
class ShortMessageToSend:
    """The card queued SEND SHORT MESSAGE with this SMS-SUBMIT; the terminal sends it after FETCH."""

    purpose: CommandPurpose
    destination: str
    tpdu: SmsSubmit
    user_data: bytes
    offer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ShortMessageReported:
    """The TERMINAL RESPONSE to a SEND SHORT MESSAGE; ``general_result`` None: the terminal never answered."""

    purpose: CommandPurpose
    destination: str
    general_result: int | None

    @property
    def sent(self) -> bool:
        return self.general_result is not None and self.general_result < _FIRST_PROBLEM


Event = (
    EnvelopeProcessed
    | EnvelopeIgnored
    | ToolkitBusy
    | SmsPpRefused
    | SmsPpSegmentStored
    | SecuredPacketVerified
    | SecuredPacketRejected
    | ProofOfReceiptIssued
    | OfferReceived
    | OfferRefused
    | DialogReplaced
    | ProactiveCommandPending
    | DialogTimedOut
    | DialogAnswered
    | ShortMessageToSend
    | ShortMessageReported
)


# --- the applet's reading of a TERMINAL RESPONSE -----------------------------------------------------


def _is_yes_no(command: ProactiveCommand) -> TypeGuard[GetInkey]:
    return isinstance(command, GetInkey) and bool(command.command_qualifier & GetInkeyQualifier.YES_NO)


def dialog_outcome(command: ProactiveCommand, response: TerminalResponse) -> tuple[StkOutcome, int]:
    """What the user did with ``command`` according to ``response``: (outcome, item identifier or 0).

    '12' no response; '10', '11', '13', '14', '22' declined; other '2X' / '3X' unable. A performed
    command ('0X', '1X') is accepted, except that a yes/no GET INKEY answered No is declined and a
    SELECT ITEM reports the chosen item; such answers without their Yes/No or item are unable.
    """
    result = response.general_result
    if result == GeneralResult.NO_RESPONSE_FROM_USER:
        return StkOutcome.NO_RESPONSE, 0
    if result in _DECLINING_RESULTS:
        return StkOutcome.DECLINED, 0
    if result >= _FIRST_PROBLEM:
        return StkOutcome.UNABLE, 0
    if _is_yes_no(command):
        yes = response.yes_no
        if yes is None:
            return StkOutcome.UNABLE, 0
        return (StkOutcome.ACCEPTED if yes else StkOutcome.DECLINED), 0
    if isinstance(command, SelectItem):
        if response.item_identifier is None:
            return StkOutcome.UNABLE, 0
        return StkOutcome.ITEM_CHOSEN, response.item_identifier
    return StkOutcome.ACCEPTED, 0


# --- card state --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Security:
    """What the card needs to answer one verified command packet: its header and the TAR's keys."""

    tar: bytes
    cntr: int
    spi: Spi
    kic: Kic
    kid: Kid
    keys: KeySet


@dataclass(slots=True)
class _Offer:
    """An offer the applet is running."""

    offer: DstkOffer
    security: _Security
    fallback_used: bool = False


@dataclass(slots=True)
class _Queued:
    """A proactive command waiting for FETCH or for its TERMINAL RESPONSE."""

    command: ProactiveCommand
    encoded: bytes
    purpose: CommandPurpose
    offer: _Offer | None = None
    destination: str = ""
    announced: bool = False
    fetched: bool = False
    deadline: float | None = None


@dataclass(slots=True)
class _Segments:
    parts: dict[int, bytes]
    command_packet_identifier: bool
    last_seen: float


class SimCard:
    """A UICC with the DSTK applet at every TAR of ``keys`` (TAR -> key set, MSL and initial counter).

    ``terminal_profile`` is what the terminal sent with TERMINAL PROFILE (None: not sent, assume a
    capable terminal). ``dialog_timeout`` is the card's guard for a terminal that never answers a
    dialog, ``send_timeout`` the same for the card's own SEND SHORT MESSAGE; ``reassembly_timeout`` and ``max_pending_messages`` bound the concatenated
    SMS-PP segments kept.
    """

    def __init__(
        self,
        iccid: str,
        keys: Mapping[bytes, KeySet],
        *,
        terminal_profile: TerminalProfile | None = None,
        dialog_timeout: float = 120.0,
        send_timeout: float = 60.0,
        reassembly_timeout: float = 60.0,
        max_pending_messages: int = 4,
    ) -> None:
        for tar in keys:
            if len(tar) != 3:
                raise ConfigError(f"SIM {iccid}: a TAR is 3 octets, got {tar.hex().upper() or 'none'}")
        if min(dialog_timeout, send_timeout, reassembly_timeout) <= 0 or max_pending_messages < 1:
            raise ConfigError(f"SIM {iccid}: timeouts must be positive and max_pending_messages >= 1")
        self.iccid = iccid
        self.dialog_timeout = dialog_timeout
        self.send_timeout = send_timeout
        self.reassembly_timeout = reassembly_timeout
        self.max_pending_messages = max_pending_messages
        self._keys = {bytes(tar): key_set for tar, key_set in keys.items()}
        self._counters = {tar: key_set.counter for tar, key_set in self._keys.items()}
        self._profile = terminal_profile
        self._events: deque[Event] = deque()
        self._queue: deque[_Queued] = deque()
        self._segments: dict[tuple[str, str, int, int], _Segments] = {}
        self._command_number = 0

    # --- public face ---------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[bytes, int]:
        """The last counter accepted per TAR."""
        return dict(self._counters)

    @property
    def terminal_profile(self) -> TerminalProfile | None:
        return self._profile

    def set_terminal_profile(self, profile: TerminalProfile | bytes) -> None:
        """TERMINAL PROFILE (TS 102 223 section 5.2): what the terminal can do."""
        self._profile = profile if isinstance(profile, TerminalProfile) else TerminalProfile.decode(profile)

    @property
    def proactive_command_pending(self) -> bool:
        """A command waits for FETCH ('91 XX')."""
        return bool(self._queue) and self._queue[0].announced and not self._queue[0].fetched

    @property
    def busy(self) -> bool:
        """A proactive session is running: a new SMS-PP download gets '93 00'."""
        return bool(self._queue)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def receive_data(self, data: bytes, now: float) -> None:
        """ENVELOPE: ``data`` is its BER-TLV. The answer is the ``EnvelopeProcessed`` event.

        Raises ``DecodeError`` only when the BER-TLV cannot be decoded at all.
        """
        envelope = decode_envelope(data)
        if not isinstance(envelope, SmsPpDownload):
            self._emit(EnvelopeIgnored(f"ENVELOPE {type(envelope).__name__} has no handler on this card"))
            self._finish_envelope(SW_OK, b"", now)
            return
        if self._queue:
            self._emit(ToolkitBusy(f"a {self._queue[0].purpose.value} command is still running"))
            self._finish_envelope(SW_TOOLKIT_BUSY, b"", now)
            return
        status_word, response_data = self._sms_pp_download(envelope.sms_tpdu, now)
        self._finish_envelope(status_word, response_data, now)

    def fetch(self) -> bytes:
        """FETCH: the pending proactive command (a 'D0' BER-TLV). Without one: ``LocalProtocolError``."""
        if not self._queue or not self._queue[0].announced:
            raise LocalProtocolError("FETCH without a pending proactive command")
        head = self._queue[0]
        head.fetched = True
        return head.encoded

    def data_to_send(self) -> bytes:
        """The pending proactive command as FETCH returns it, or b"" when none waits."""
        return self.fetch() if self.proactive_command_pending else b""

    def terminal_response(self, data: bytes, now: float) -> int:
        """TERMINAL RESPONSE: the status word ('90 00', or '91 XX' when the next command waits).

        Raises ``RemoteProtocolError`` (nothing changes) when the bytes cannot be decoded or do not
        answer the fetched command.
        """
        if not self._queue or not self._queue[0].fetched:
            raise RemoteProtocolError("TERMINAL RESPONSE without a fetched proactive command")
        response = TerminalResponse.decode(data)
        head = self._queue[0]
        expected = head.command.command_details
        got = response.command_details
        if (got.command_number, got.type_of_command) != (expected.command_number, expected.type_of_command):
            raise RemoteProtocolError(
                f"TERMINAL RESPONSE for command {got.command_number} type 0x{got.type_of_command:02X}, "
                f"expected {expected.command_number} type 0x{expected.type_of_command:02X}"
            )
        self._queue.popleft()
        if head.purpose is CommandPurpose.DIALOG:
            assert head.offer is not None
            self._dialog_answered(head, response)
        else:
            self._emit(ShortMessageReported(head.purpose, head.destination, response.general_result))
        self._announce(now)
        return self._status_word()

    def get_timer(self) -> float | None:
        """When ``handle_timer`` has something to do: the guard of the outstanding command, or the
        expiry of kept SMS-PP segments."""
        deadlines = [entry.last_seen + self.reassembly_timeout for entry in self._segments.values()]
        if self._queue and self._queue[0].deadline is not None:
            deadlines.append(self._queue[0].deadline)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        head = self._queue[0] if self._queue else None
        if head is not None and head.deadline is not None and now >= head.deadline:
            self._queue.popleft()
            if head.offer is not None and head.purpose is CommandPurpose.DIALOG:
                self._emit(DialogTimedOut(head.offer.offer.offer_id, head.command))
                answer = DstkAnswer(
                    head.offer.offer.offer_id,
                    StkOutcome.NO_RESPONSE,
                    general_result=GeneralResult.NO_RESPONSE_FROM_USER,
                )
                self._emit(DialogAnswered(answer))
                self._queue_answer(head.offer, answer)
            else:
                self._emit(ShortMessageReported(head.purpose, head.destination, None))
            self._announce(now)
        for key in [k for k, v in self._segments.items() if now - v.last_seen >= self.reassembly_timeout]:
            del self._segments[key]

    # --- SMS-PP download -----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _finish_envelope(self, status_word: int, response_data: bytes, now: float) -> None:
        if status_word == SW_OK and self._queue:
            status_word = _SW_PROACTIVE | min(len(self._queue[0].encoded), 0xFF)
        self._emit(EnvelopeProcessed(status_word, response_data))
        self._announce(now)

    def _refuse(self, reason: str) -> tuple[int, bytes]:
        self._emit(SmsPpRefused(reason))
        return SW_DATA_DOWNLOAD_ERROR, b""

    def _sms_pp_download(self, tpdu: bytes, now: float) -> tuple[int, bytes]:
        try:
            deliver = SmsDeliver.decode(tpdu)
        except DecodeError as exc:
            return self._refuse(f"SMS TPDU is not an SMS-DELIVER: {exc}")
        if deliver.tp_pid != PID_SIM_DATA_DOWNLOAD:
            return self._refuse(f"TP-PID 0x{deliver.tp_pid:02X} is not (U)SIM data download (0x7F)")
        scheme = decode_dcs(deliver.tp_dcs)
        if scheme.message_class != 2 or scheme.alphabet is not Coding.EIGHT_BIT:
            return self._refuse(
                f"TP-DCS 0x{deliver.tp_dcs:02X} is not class 2 8-bit data (0x{DCS_SIM_DATA_DOWNLOAD:02X})"
            )
        if not deliver.tp_udhi:
            return self._refuse("no user data header: the command packet identifier (IEI 0x70) is missing")
        ies, header_length = decode_udh(deliver.tp_ud)
        identified = any(isinstance(ie, SimToolkitSecurity) for ie in ies)
        packet = deliver.tp_ud[header_length:]
        concat = concat_ie(ies)
        if concat is not None:
            scheme_name = "8" if isinstance(concat, Concat8) else "16"
            key = (deliver.tp_oa.value, scheme_name, concat.reference, concat.total)
            whole = self._add_segment(key, concat.sequence, identified, packet, now)
            if whole is None:
                self._emit(
                    SmsPpSegmentStored(deliver.tp_oa.value, concat.reference, concat.sequence, concat.total)
                )
                return SW_OK, b""
            identified, packet = whole
        if not identified:
            return self._refuse("the user data header holds no command packet identifier (IEI 0x70)")
        return self._secured_packet(packet, deliver.tp_oa)

    def _add_segment(
        self, key: tuple[str, str, int, int], sequence: int, identified: bool, packet: bytes, now: float
    ) -> tuple[bool, bytes] | None:
        entry = self._segments.pop(key, None)
        if entry is None:
            entry = _Segments({}, False, now)
            while len(self._segments) >= self.max_pending_messages:
                del self._segments[next(iter(self._segments))]
        entry.parts.setdefault(sequence, packet)
        entry.command_packet_identifier = entry.command_packet_identifier or identified
        entry.last_seen = now
        total = key[3]
        if len(entry.parts) < total:
            self._segments[key] = entry  # re-inserted last: oldest activity first
            return None
        return entry.command_packet_identifier, b"".join(entry.parts[i] for i in range(1, total + 1))

    # --- secured packets -----------------------------------------------------------------------------

    def _lookup(self, tar: bytes, kic: Kic, kid: Kid) -> KeySet | None:
        keys = self._keys.get(tar)
        return None if keys is None else replace(keys, counter=self._counters[tar])

    def _secured_packet(self, data: bytes, origin: SmsAddress) -> tuple[int, bytes]:
        try:
            packet, message = parse_command_packet(data, self._lookup)
        except OtaSecurityError as exc:
            return self._reject(exc, data, origin)
        except DecodeError as exc:  # the header cannot be read: no SPI, so no PoR
            self._emit(SecuredPacketRejected(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, str(exc)))
            return SW_DATA_DOWNLOAD_ERROR, b""
        if packet.spi.counter is not CounterMode.NO_COUNTER and packet.cntr > self._counters[packet.tar]:
            self._counters[packet.tar] = packet.cntr
        self._emit(SecuredPacketVerified(packet.tar, packet.cntr, packet.spi))
        security = _Security(
            packet.tar, packet.cntr, packet.spi, packet.kic, packet.kid, self._keys[packet.tar]
        )
        response_data = b""
        if packet.spi.por is PorMode.ALWAYS:
            response_data = self._proof_of_receipt(security, ResponseStatus.POR_OK, origin)
        self._run_offer(security, message)
        if response_data:
            return _SW_RESPONSE_DATA | len(response_data), response_data
        return SW_OK, b""

    def _reject(self, exc: OtaSecurityError, data: bytes, origin: SmsAddress) -> tuple[int, bytes]:
        header: CommandHeader | None = exc.header
        cntr = exc.cntr
        if cntr is None and header is not None and not header.spi.ciphering:
            cntr = int.from_bytes(data[10:15], "big")  # the counter travels in clear
        self._emit(SecuredPacketRejected(exc.status, str(exc), None if header is None else header.tar, cntr))
        if header is None or header.spi.por not in (PorMode.ALWAYS, PorMode.ON_ERROR):
            return SW_DATA_DOWNLOAD_ERROR, b""
        keys = self._keys.get(header.tar)
        security = _Security(header.tar, cntr or 0, header.spi, header.kic, header.kid, keys or KeySet())
        response_data = self._proof_of_receipt(security, exc.status, origin, secured=keys is not None)
        if not response_data:
            return SW_DATA_DOWNLOAD_ERROR, b""
        if self._profile is not None and self._profile.supports(
            TerminalProfileFeature.SIM_DATA_DOWNLOAD_ERROR_9EXX
        ):
            return _SW_DOWNLOAD_ERROR_DATA | len(response_data), response_data
        return SW_RESPONSE_DATA_WARNING, response_data

    def _response_packet(
        self, security: _Security, status: ResponseStatus, data: bytes = b"", *, secured: bool = True
    ) -> bytes:
        """``02 71 00`` and a response packet echoing the command's TAR and counter."""
        if secured and status not in _UNSECURED_STATUSES:
            try:
                return build_response_packet(
                    security.tar,
                    security.cntr,
                    status,
                    data,
                    spi=security.spi,
                    kic=security.kic,
                    kid=security.kid,
                    keys=security.keys,
                )
            except LocalProtocolError:
                pass  # SPI2 names security the TAR's keys cannot give: answer in clear
        return build_response_packet(
            security.tar, security.cntr, status, data, spi=Spi(), kic=Kic(), kid=Kid(), keys=KeySet()
        )

    def _proof_of_receipt(
        self, security: _Security, status: ResponseStatus, origin: SmsAddress, *, secured: bool = True
    ) -> bytes:
        """Issue a PoR; returns the response data for the ENVELOPE (b"" when it goes by SMS-SUBMIT)."""
        user_data = self._response_packet(security, status, secured=secured)
        via_submit = security.spi.por_via_sms_submit
        self._emit(ProofOfReceiptIssued(status, via_submit, user_data))
        if not via_submit:
            return user_data
        self._queue_short_message(CommandPurpose.PROOF_OF_RECEIPT, origin, user_data, None)
        return b""

    # --- the DSTK applet -----------------------------------------------------------------------------

    def _run_offer(self, security: _Security, message: bytes) -> None:
        try:
            offer = DstkOffer.decode(message)
        except DecodeError as exc:
            self._emit(OfferRefused(f"not a DSTK offer: {exc}"))
            return
        try:
            SmsAddress(offer.reply_to, ton=0, npi=1).encode()
        except LocalProtocolError:
            self._emit(OfferRefused(f"reply_to {offer.reply_to!r} is not a dialling number", offer.offer_id))
            return
        running = _Offer(offer, security)
        try:
            command = decode_proactive(offer.command)
        except DecodeError as exc:
            self._emit(OfferRefused(f"the offer's proactive command: {exc}", offer.offer_id))
            result = exc.status or COMMAND_DATA_NOT_UNDERSTOOD
            answer = DstkAnswer(offer.offer_id, StkOutcome.UNABLE, general_result=result)
            self._emit(DialogAnswered(answer))
            self._queue_answer(running, answer)
            return
        self._emit(OfferReceived(offer.offer_id, offer.reply_to, command))
        shown = command
        if self._profile is not None and _is_yes_no(command):
            replacement = self._fallback(command)
            if replacement is not None and not self._profile.supports_command(command):
                self._emit(
                    DialogReplaced(
                        offer.offer_id, command, replacement, "the terminal profile lacks yes/no GET INKEY"
                    )
                )
                running.fallback_used = True
                shown = replacement
        self._queue.append(_Queued(shown, shown.encode(), CommandPurpose.DIALOG, running))

    def _fallback(self, command: GetInkey) -> DisplayText | None:
        """DISPLAY TEXT with the text of a yes/no GET INKEY, if the terminal can show it."""
        if self._profile is not None and not self._profile.supports(TerminalProfileFeature.DISPLAY_TEXT):
            return None
        return DisplayText(
            command.text_string,
            DisplayTextQualifier.WAIT_FOR_USER,
            command.command_number,
            duration=command.duration,
        )

    def _dialog_answered(self, head: _Queued, response: TerminalResponse) -> None:
        running = head.offer
        assert running is not None
        offer_id = running.offer.offer_id
        if (
            response.general_result == GeneralResult.COMMAND_BEYOND_TERMINAL_CAPABILITIES
            and _is_yes_no(head.command)
            and not running.fallback_used
        ):
            replacement = self._fallback(head.command)
            if replacement is not None:
                self._emit(DialogReplaced(offer_id, head.command, replacement, "the terminal answered '30'"))
                running.fallback_used = True
                self._queue.appendleft(
                    _Queued(replacement, replacement.encode(), CommandPurpose.DIALOG, running)
                )
                return
        outcome, item = dialog_outcome(head.command, response)
        answer = DstkAnswer(offer_id, outcome, item, response.general_result)
        self._emit(DialogAnswered(answer, response))
        self._queue_answer(running, answer)

    def _queue_answer(self, running: _Offer, answer: DstkAnswer) -> None:
        user_data = self._response_packet(running.security, ResponseStatus.POR_OK, answer.encode())
        destination = SmsAddress(running.offer.reply_to, ton=0, npi=1)
        self._queue_short_message(CommandPurpose.ANSWER, destination, user_data, running.offer.offer_id)

    def _queue_short_message(
        self, purpose: CommandPurpose, destination: SmsAddress, user_data: bytes, offer_id: str | None
    ) -> None:
        tpdu = SmsSubmit(
            tp_udhi=True,
            tp_da=destination,
            tp_pid=PID_SIM_DATA_DOWNLOAD,
            tp_dcs=DCS_SIM_DATA_DOWNLOAD,
            tp_udl=len(user_data),
            tp_ud=user_data,
        )
        self._command_number = self._command_number % 0xFE + 1
        command = SendShortMessage(tpdu.encode(), command_number=self._command_number)
        self._queue.append(_Queued(command, command.encode(), purpose, destination=destination.value))
        self._emit(ShortMessageToSend(purpose, destination.value, tpdu, user_data, offer_id))

    # --- proactive session ---------------------------------------------------------------------------

    def _announce(self, now: float) -> None:
        """Make the head of the queue pending ('91 XX') and start its guard timer."""
        if not self._queue or self._queue[0].announced:
            return
        head = self._queue[0]
        head.announced = True
        guard = self.send_timeout
        if head.purpose is CommandPurpose.DIALOG:
            guard = self.dialog_timeout
            duration = getattr(head.command, "duration", None)
            if duration is not None and duration.seconds is not None:
                guard = max(guard, duration.seconds)
        head.deadline = now + guard
        offer_id = None if head.offer is None else head.offer.offer.offer_id
        self._emit(ProactiveCommandPending(head.command, head.purpose, offer_id))

    def _status_word(self) -> int:
        if self.proactive_command_pending:
            return _SW_PROACTIVE | min(len(self._queue[0].encoded), 0xFF)
        return SW_OK

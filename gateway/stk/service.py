"""The SIM toolkit push service: offer dialog -> secured packet -> SMS-PP -> the card's answer as an event.

The chain (PROTOCOLS.md sections 1.5 to 1.7):

1. the offer becomes one proactive command (``gateway.stk.offer``; ETSI TS 102 223 section 6.6) inside
   a DSTK offer message for our applet (``protocols.stk.dstk``);
2. it is secured with the subscriber's keys (``gateway.stk.keystore``) and a fresh replay counter
   from the store (ETSI TS 102 225 section 5.1, TS 31.115 section 4.2). An offer that does not fit
   one SMS is refused with the error that says by how many bytes it is over, and nothing is sent;
3. the command packet goes out after the UDH ``02 70 00`` in a submit_sm with esm_class 0x40
   (UDHI), protocol_id 0x7F (SIM data download) and data_coding 0xF6 (class 2, 8-bit), as the ME
   passes an SMS to the UICC only with both (section 1.5.1; PROTOCOLS.md pitfall 8), with
   registered_delivery 1 and a short validity period so a stale offer is not shown hours later;
4. the SMSC's delivery receipt says whether the card got it (not whether the user saw it);
5. the applet answers with a response packet (TS 102 225 section 5.2, UDH ``02 71 00``) sent as MO:
   its checksum is verified with the card's keys, its TAR and counter tie it to the push, and the
   DSTK answer it carries is recorded exactly once, however often the SMSC re-delivers the MO.

Durability (DESIGN.md): the counter is committed before the packet is built, the push is recorded
before the submit_sm goes out and updated with the message id before ``push()`` returns, and an
answer is recorded before its event is emitted. A store failure while handling an MO raises, so
the ESME answers ESME_RX_T_APPN and the SMSC re-delivers it later. An answer that fails
verification is recorded and acknowledged (so the SMSC stops retrying) and never acted on.

Pushed once: a push the SMSC took (it has a message id) is never sent again, however often the
campaign's outbox asks. One it may have taken unbeknown to us (cancelled at shutdown, the link lost
or no submit_sm_resp within the client's attempts, or cut short by a crash before the resp was stored:
state "submit_failed" or "submitting") is sent again when asked, with the counter of the first
attempt, so that a card which did get the first copy refuses the second as a replay (counter modes
"higher" and "exactly one higher"; under "no counter" the card cannot tell). One the SMSC refused (an error status in its
submit_sm_resp or a generic_nack: state "refused") never reached the card, so it is sent again with a
fresh counter: the old one may be below what the card has seen since, from another push.

Events (``gateway.stk.events``) go to every ``events()`` stream and every listener.

Counter modes: with "exactly one higher" a push that never reaches the card (rejected by the
SMSC, expired) leaves a gap the card will refuse; prefer "higher", which tolerates gaps. Pushes to
one card should not overlap: two in flight may reach it out of order, and under "higher" the
older one is then refused (the campaign's contact policy sends one offer at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from gateway.smpp.client import SmppClient, SubmitError
from gateway.stk.events import (
    StkAnswerInvalid,
    StkAnswerReceived,
    StkDelivered,
    StkDeliveryFailed,
    StkEvent,
    StkProofOfReceipt,
    StkPushFailed,
    StkRejectedBySim,
)
from gateway.stk.keystore import KeyStore, SimCard, normalize_msisdn
from gateway.stk.offer import DialogStyle, StkOffer, build_offer_command
from gateway.storage.sqlite_store import DuplicateRecord, PushRecord, SqliteStore
from protocols.errors import ConfigError, DecodeError, GatewayError, LocalProtocolError, ProtocolError
from protocols.gsm.tpdu import Address as SmsAddress
from protocols.gsm.udh import decode_udh
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import DataSm, DeliverSm, SubmitSm
from protocols.smpp.receipt import DeliveryReceipt
from protocols.smpp.tlv import Tag, find_tlv
from protocols.stk.dstk import DstkAnswer, DstkOffer
from protocols.stk.ota import (
    COMMAND_UDH,
    ResponseStatus,
    build_command_packet,
    max_payload,
    parse_response_packet,
)

__all__ = [
    "DEFAULT_VALIDITY_PERIOD",
    "OfferTooLarge",
    "PushResult",
    "StkEventStream",
    "StkPushError",
    "StkPushService",
    "UnknownSubscriber",
    "check_reply_to",
]

log = logging.getLogger(__name__)

DEFAULT_VALIDITY_PERIOD = "000000001000000R"
"""SMPP 3.4 section 7.1.1 relative time: 10 minutes."""

UDHI = 0x40  # esm_class bit 6 (SMPP 3.4 5.2.12)
PID_SIM_DATA_DOWNLOAD = 0x7F  # TS 23.040 9.2.3.9
DCS_CLASS2_8BIT = 0xF6  # TS 23.038 section 4, coding group F: 8-bit data, class 2 (SIM specific)
# how SMSCs hand an MO class-2 8-bit message to an ESME: the TP-DCS as is (F6 or its general-group
# form 16) or mapped to SMPP "octet unspecified" (04)
_MO_BINARY_CODINGS = frozenset({DCS_CLASS2_8BIT, 0x16, 0x04})
_IEI_RESPONSE_PACKET = 0x71

_FAILED_STATES = frozenset(
    {MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.REJECTED, MessageState.DELETED}
)
_OPEN_STATES = frozenset({"submitting", "sent"})  # a receipt may still move these
# with no SMSC message id these never reached the SMSC as far as we know: another attempt may go out
_RETRYABLE_STATES = frozenset({"submitting", "submit_failed", "refused"})
# PoR statuses that report no failure (TS 102 225 5.2 '08' more time; TS 31.115 4.4 '0B' / '0C' the
# response data follows by SMS-SUBMIT / USSD): the card took the command packet, the answer is to come
_INFORMATIVE_STATUSES = frozenset(
    {
        ResponseStatus.MORE_TIME,
        ResponseStatus.RESPONSE_DATA_VIA_SMS_SUBMIT,
        ResponseStatus.RESPONSE_DATA_VIA_USSD,
    }
)


class StkPushError(GatewayError):
    """A push could not be made."""


class UnknownSubscriber(StkPushError):
    """The key store has no card for the MSISDN."""


class OfferTooLarge(LocalProtocolError):
    """The offer does not fit one SMS under the card's security level; ``over_by`` octets too many."""

    def __init__(self, message: str, *, over_by: int, budget: int) -> None:
        super().__init__(message)
        self.over_by = over_by
        self.budget = budget


@dataclass(frozen=True, slots=True)
class PushResult:
    """A push the SMSC accepted: its message id, and the counter and size of the command packet."""

    offer_id: str
    msisdn: str
    iccid: str
    message_id: str
    cntr: int
    payload_octets: int  # the DSTK offer message
    budget_octets: int  # what one SMS could carry under this security level


Listener = Callable[[StkEvent], Awaitable[None] | None]

_CLOSED = object()


class StkEventStream:
    """An async iterator of the service's events from the moment it was made; ``close()`` ends it.

    Events queue up until read: close a stream nobody reads any more.
    """

    def __init__(self, streams: set[StkEventStream]) -> None:
        self._streams = streams
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._closed = False
        streams.add(self)

    def _put(self, event: StkEvent) -> None:
        self._queue.put_nowait(event)

    def __aiter__(self) -> StkEventStream:
        return self

    async def __anext__(self) -> StkEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]  # only events and the sentinel are queued

    async def get(self, timeout: float | None = None) -> StkEvent:
        """The next event; TimeoutError after ``timeout`` seconds."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def pending(self) -> int:
        """Events received and not read yet."""
        return self._queue.qsize()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._streams.discard(self)
            self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> StkEventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_reply_to(reply_to: str) -> None:
    """ConfigError unless the applet can answer to ``reply_to``: it is the TP-DA of the card's SMS-SUBMIT.

    With any other address the applet cannot send its answer (nor our SIM simulator show the offer):
    every push would be delivered and then never answered, so it is refused before anything goes out.
    """
    try:
        if not 1 <= len(reply_to) <= 20:
            raise LocalProtocolError(f"{len(reply_to)} digits")
        SmsAddress(reply_to, ton=0, npi=1).encode()
    except LocalProtocolError:
        raise ConfigError(
            f"SIM toolkit reply_to (the short code) {reply_to!r}: a SIM card cannot answer to it; the DSTK "
            "answer is an SMS-SUBMIT whose TP-DA holds 1 to 20 digits 0-9 * # a b c (no '+', no letters)"
        ) from None


def _user_data(pdu: DeliverSm) -> bytes:
    """The TP-UD: short_message, or message_payload when the SMSC used that instead."""
    payload = find_tlv(pdu.optional_parameters, Tag.MESSAGE_PAYLOAD)
    if payload is not None and not pdu.short_message:
        return payload.value
    return pdu.short_message


class StkPushService:
    """Pushes offers to SIM cards over ``client`` and reports what became of them.

    ``reply_to`` is the short code the applet sends its answer to (in every DSTK offer; ConfigError
    unless it is 1 to 20 dialling digits, as the card's SMS-SUBMIT needs);
    ``source_addr`` the originator of the push (default ``reply_to``: whitelisted originators are
    how operators filter SIM data download, PROTOCOLS.md pitfall 9). ``clock`` gives epoch seconds
    for what arrives unprompted (receipts, answers); ``push`` takes its ``now``. ``receipt_wait``
    bounds how long a receipt that overtook its submit_sm_resp waits for the push to be recorded
    (``set_foreign`` names the receipts of other services' SMS, which never wait).
    """

    def __init__(
        self,
        client: SmppClient,
        keystore: KeyStore,
        store: SqliteStore,
        *,
        reply_to: str,
        validity_period: str = DEFAULT_VALIDITY_PERIOD,
        default_style: DialogStyle | str = DialogStyle.CONFIRM,
        source_addr: str | None = None,
        clock: Callable[[], float] = time.time,
        receipt_wait: float = 30.0,
    ) -> None:
        check_reply_to(reply_to)
        self.client = client
        self.keystore = keystore
        self.store = store
        self.reply_to = reply_to
        self.validity_period = validity_period
        self.default_style = DialogStyle(default_style)
        self.source_addr = reply_to if source_addr is None else source_addr
        self._clock = clock
        self._receipt_wait = receipt_wait
        self._foreign: Callable[[str], bool] | None = None
        self._streams: set[StkEventStream] = set()
        self._listeners: list[Listener] = []
        self._submitting: set[asyncio.Future[None]] = set()
        self._in_flight: set[str] = set()  # offer ids being pushed by this process
        client.add_receipt_handler(self._on_receipt)
        client.add_mo_handler(self._on_mo)

    def set_foreign(self, foreign: Callable[[str], bool]) -> None:
        """``foreign(message_id)`` is true for another service's SMS: its receipt is not waited for."""
        self._foreign = foreign

    # --- events ----------------------------------------------------------------------------------------

    def events(self) -> StkEventStream:
        """A stream of every event from now on (each stream gets each event)."""
        return StkEventStream(self._streams)

    def add_listener(self, listener: Listener) -> None:
        """``listener(event)`` for every event; it may be async. What it raises is logged, not propagated."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def _emit(self, event: StkEvent) -> None:
        for stream in list(self._streams):
            stream._put(event)
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("STK event listener failed on %s", type(event).__name__)

    # --- pushing ---------------------------------------------------------------------------------------

    def card_for(self, msisdn: str) -> SimCard:
        card = self.keystore.by_msisdn(msisdn)
        if card is None:
            raise UnknownSubscriber(f"no SIM keys for MSISDN {msisdn}")
        return card

    def build_offer_dialog(self, offer: StkOffer) -> bytes:
        """The proactive command that shows ``offer`` on the subscriber's handset (TS 102 223 6.6)."""
        card = self.card_for(offer.msisdn)
        style = DialogStyle(offer.style or self.default_style)
        return build_offer_command(
            offer, style, supports_yes_no=card.supports_yes_no, terminal_profile=card.terminal_profile
        )

    async def push(self, offer: StkOffer, now: float) -> PushResult:
        """Secure and send ``offer``; returns once the SMSC accepted it and the store knows its message id.

        Raises UnknownSubscriber, OfferTooLarge (nothing sent, no counter used), DuplicateRecord (the
        SMSC took this offer id already, or it is being pushed right now), or what
        ``SmppClient.submit`` raises (SubmitError, TransportError), which is also reported as
        StkPushFailed. An earlier attempt the SMSC never took is sent again (``_record_attempt``): with
        the same counter after a cancel, a lost link or a crash ("submit_failed", "submitting"), with
        a fresh one after the SMSC refused it ("refused").
        """
        card = self.card_for(offer.msisdn)
        payload = DstkOffer(offer.offer_id, self.reply_to, self.build_offer_dialog(offer)).encode()
        budget = max_payload(card.spi, card.kic, card.kid)
        if len(payload) > budget:
            raise self._too_large(offer, card, payload, budget)
        if offer.offer_id in self._in_flight:
            raise DuplicateRecord(f"offer {offer.offer_id!r} is being pushed already (in flight)")
        cntr = self._record_attempt(offer, card, now)
        packet = build_command_packet(payload, card.spi, card.kic, card.kid, card.tar, cntr, card.key_set())
        pdu = SubmitSm(
            source_addr=self.source_addr,
            dest_addr_ton=1,  # international
            dest_addr_npi=1,  # E.164
            destination_addr=card.msisdn,
            esm_class=UDHI,
            protocol_id=PID_SIM_DATA_DOWNLOAD,
            data_coding=DCS_CLASS2_8BIT,
            registered_delivery=1,
            validity_period=self.validity_period,
            short_message=COMMAND_UDH + packet,
        )
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submitting.add(recorded)
        self._in_flight.add(offer.offer_id)
        try:
            try:
                result = await self.client.submit(pdu)
            except asyncio.CancelledError:
                # shutdown, or the caller gave up while the submit waited for a bind or its answer:
                # no message id, so the next attempt (the outbox after a restart) may push it again
                self._record_submit_failure(offer.offer_id, "cancelled before the SMSC answered", now)
                raise
            except GatewayError as exc:
                status = exc.status if isinstance(exc, SubmitError) else None
                # an error status is the SMSC's answer: it did not take this copy (_record_attempt);
                # status 0 is no answer at all (response timeouts): it may have
                refused = isinstance(exc, SubmitError) and exc.status != 0
                self._record_submit_failure(
                    offer.offer_id, str(exc), now, "refused" if refused else "submit_failed"
                )
                log.warning("STK push of offer %s to %s refused: %s", offer.offer_id, card.msisdn, exc)
                await self._emit(StkPushFailed(offer.offer_id, card.msisdn, str(exc), status, now))
                raise
            self.store.update_push(
                offer.offer_id,
                message_id=result.message_id,
                state=self._state_after_submit(offer.offer_id, "sent"),
                now=now,
            )
        finally:
            self._in_flight.discard(offer.offer_id)
            self._submitting.discard(recorded)
            recorded.set_result(None)
        log.info(
            "STK push of offer %s to %s sent: message %s, CNTR %d",
            offer.offer_id,
            card.msisdn,
            result.message_id,
            cntr,
        )
        return PushResult(
            offer.offer_id, card.msisdn, card.iccid, result.message_id, cntr, len(payload), budget
        )

    def _state_after_submit(self, offer_id: str, state: str) -> str | None:
        """``state`` for the push once the SMSC answered, or None (keep) when the card was faster.

        The card's PoR or answer can overtake the submit_sm_resp (an SMSC that delivers before it
        answers the ESME, or answers late): it moved the push to "answered" or "rejected_by_sim"
        already, and overwriting that with "sent" would let the receipt mark it "delivered" and a
        re-delivered PoR be reported a second time. A card that answered had the push, so it is
        never made retryable ("submit_failed") either.
        """
        current = self.store.push_by_offer(offer_id)
        return state if current is None or current.state == "submitting" else None

    def _record_submit_failure(
        self, offer_id: str, detail: str, now: float, failed: str = "submit_failed"
    ) -> None:
        state = self._state_after_submit(offer_id, failed)
        if state is not None:  # else the card's verdict (and its detail) stands
            self.store.update_push(offer_id, state=state, detail=detail, now=now)

    def _record_attempt(self, offer: StkOffer, card: SimCard, now: float) -> int:
        """Record this attempt to push ``offer`` before anything goes out; the counter to send it with.

        A first attempt takes a fresh counter. An earlier attempt with no SMSC message id (cancelled,
        the link lost, or cut short by a crash before the submit_sm_resp was stored) is tried again
        with the counter it used: had the SMSC taken that copy after all, the card refuses the second
        one as a replay (TS 102 225 section 5.1.1, counter "higher" or "exactly one higher"), so the
        subscriber never sees the offer twice. One the SMSC refused never went out: it takes a fresh
        counter, as a card that counts strictly refuses an old one if another push reached it since.
        A push with a message id was taken by the SMSC: DuplicateRecord, never again.
        """
        previous = self.store.push_by_offer(offer.offer_id)
        if previous is None:
            cntr = self.store.next_ota_counter(card.iccid, at_least=card.min_counter)
            self.store.record_push(
                offer.offer_id, card.msisdn, card.iccid, card.tar, cntr, None, "submitting", now
            )
            return cntr
        if previous.message_id is not None or previous.state not in _RETRYABLE_STATES:
            raise DuplicateRecord(f"offer {offer.offer_id!r} was pushed already")
        if (previous.iccid, previous.tar) != (card.iccid, card.tar):
            # the counter belongs to the card the first attempt was for: another card needs a push
            # of its own, which this offer id cannot have
            raise StkPushError(
                f"offer {offer.offer_id!r} was first pushed to card {previous.iccid}; "
                f"{card.msisdn} now has card {card.iccid}"
            )
        cntr = previous.cntr
        if previous.state == "refused":
            cntr = self.store.next_ota_counter(card.iccid, at_least=card.min_counter)
        self.store.update_push(
            offer.offer_id,
            state="submitting",
            detail=f"pushed again after: {previous.detail or 'no answer from the SMSC'}",
            cntr=cntr,
            now=now,
        )
        log.info(
            "STK offer %s to %s has no SMSC message id (%s); pushing it again with CNTR %d",
            offer.offer_id,
            card.msisdn,
            previous.state,
            cntr,
        )
        return cntr

    @staticmethod
    def _too_large(offer: StkOffer, card: SimCard, payload: bytes, budget: int) -> OfferTooLarge:
        try:
            build_command_packet(payload, card.spi, card.kic, card.kid, card.tar, 0, card.key_set())
        except LocalProtocolError as exc:
            reason = str(exc)
        else:  # pragma: no cover - max_payload and build_command_packet share the budget
            reason = f"payload is {len(payload) - budget} bytes over the {budget}-byte budget"
        return OfferTooLarge(
            f"offer {offer.offer_id} does not fit one SMS: {reason}",
            over_by=len(payload) - budget,
            budget=budget,
        )

    # --- delivery receipts -----------------------------------------------------------------------------

    async def _on_receipt(self, receipt: DeliveryReceipt, pdu: DeliverSm | DataSm) -> None:
        push = self.store.push_by_message_id(receipt.id)
        if push is None and self._foreign is not None and self._foreign(receipt.id):
            return  # another service's SMS: nothing to wait for
        if push is None and self._submitting:
            # the receipt overtook the submit_sm_resp of a push still being recorded
            await asyncio.wait(set(self._submitting), timeout=self._receipt_wait)
            push = self.store.push_by_message_id(receipt.id)
        if push is None or push.message_id is None:
            return  # not a push: another service's message
        state = receipt.message_state
        if state is MessageState.DELIVERED:
            new_state = "delivered"
        elif state in _FAILED_STATES:
            new_state = "delivery_failed"
        else:
            return  # an intermediate notification (ENROUTE, ACCEPTD) or an unknown state
        if push.state not in _OPEN_STATES:
            return  # a re-delivered receipt, or one that arrived after the answer
        now = self._clock()
        self.store.update_push(
            push.offer_id, state=new_state, detail=f"stat {receipt.stat} err {receipt.err}", now=now
        )
        event: StkEvent
        if new_state == "delivered":
            event = StkDelivered(push.offer_id, push.msisdn, push.message_id, now)
        else:
            log.info("STK push of offer %s to %s not delivered: %s", push.offer_id, push.msisdn, receipt.stat)
            event = StkDeliveryFailed(
                push.offer_id, push.msisdn, push.message_id, receipt.stat, receipt.err, now
            )
        await self._emit(event)

    # --- answers -----------------------------------------------------------------------------------------

    async def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        if not isinstance(pdu, DeliverSm):
            return  # data_sm carries no protocol_id: a card's SMS-SUBMIT arrives as deliver_sm
        if pdu.protocol_id != PID_SIM_DATA_DOWNLOAD or not pdu.esm_class & UDHI:
            return  # not a toolkit message: another service's MO
        if pdu.data_coding not in _MO_BINARY_CODINGS:
            return
        user_data = _user_data(pdu)
        try:
            ies, _ = decode_udh(user_data)
        except DecodeError:
            return
        if not any(ie.iei == _IEI_RESPONSE_PACKET for ie in ies):
            return
        msisdn = normalize_msisdn(pdu.source_addr)
        now = self._clock()
        card = self.keystore.by_msisdn(msisdn)
        if card is None:
            await self._invalid(msisdn, "response packet from an MSISDN with no SIM keys", now)
            return
        try:
            packet = parse_response_packet(
                user_data, spi=card.spi, kic=card.kic, kid=card.kid, keys=card.key_set()
            )
        except ProtocolError as exc:
            await self._invalid(msisdn, f"response packet refused: {exc}", now)
            return
        if packet.tar != card.tar:
            await self._invalid(
                msisdn,
                f"response packet for TAR {packet.tar.hex().upper()}, the card's is {card.tar.hex().upper()}",
                now,
            )
            return
        push = self.store.push_by_counter(card.iccid, packet.cntr)
        if packet.status in _INFORMATIVE_STATUSES:
            if not packet.secured:
                await self._invalid(
                    msisdn, f"PoR status {packet.status.name} without the security SPI2 asks for", now
                )
                return
            offer_id = None if push is None else push.offer_id
            await self._emit(StkProofOfReceipt(offer_id, msisdn, packet.cntr, now))
        elif packet.status is not ResponseStatus.POR_OK:
            await self._rejected(push, msisdn, packet.status, packet.secured, now)
        elif not packet.additional_response_data:
            offer_id = None if push is None else push.offer_id
            await self._emit(StkProofOfReceipt(offer_id, msisdn, packet.cntr, now))
        else:
            await self._answer(push, msisdn, packet.cntr, packet.additional_response_data, now)

    async def _rejected(
        self, push: PushRecord | None, msisdn: str, status: ResponseStatus, authenticated: bool, now: float
    ) -> None:
        offer_id = None if push is None else push.offer_id
        if push is not None:
            if push.state in ("rejected_by_sim", "answered"):
                return  # a re-delivered PoR
            proof = "" if authenticated else " (unauthenticated)"
            self.store.update_push(
                push.offer_id, state="rejected_by_sim", detail=f"PoR status {status.name}{proof}", now=now
            )
        log.warning("SIM of %s rejected the push of offer %s: %s", msisdn, offer_id, status.name)
        await self._emit(StkRejectedBySim(offer_id, msisdn, status, authenticated, now))

    async def _answer(self, push: PushRecord | None, msisdn: str, cntr: int, data: bytes, now: float) -> None:
        try:
            answer = DstkAnswer.decode(data)
        except DecodeError as exc:
            await self._invalid(msisdn, f"response data is no DSTK answer: {exc}", now)
            return
        if push is None:
            await self._invalid(
                msisdn, f"answer to offer {answer.offer_id} echoes CNTR {cntr}, which no push used", now
            )
            return
        if push.offer_id != answer.offer_id:
            await self._invalid(
                msisdn, f"answer names offer {answer.offer_id}, CNTR {cntr} was offer {push.offer_id}", now
            )
            return
        first = self.store.record_answer(
            answer.offer_id, answer.outcome, answer.item_id, now, general_result=answer.general_result
        )
        if not first:
            return  # the SMSC re-delivered it: recorded and reported once already
        log.info("answer to offer %s from %s: %s", answer.offer_id, msisdn, answer.outcome.name)
        await self._emit(
            StkAnswerReceived(
                answer.offer_id, msisdn, answer.outcome, answer.item_id, answer.general_result, now
            )
        )

    async def _invalid(self, msisdn: str, reason: str, now: float) -> None:
        self.store.record_invalid_answer(msisdn, reason, now)
        log.warning("invalid STK answer from %s: %s", msisdn, reason)
        await self._emit(StkAnswerInvalid(msisdn, reason, now))

"""The campaign engine's commands carried out on the real channels, and the answers fed back (issue #8).

DESIGN.md, data flow: ``PushStk`` goes out as a secured DSTK offer (``gateway.stk``, TS 102 225 in
SMS-PP), ``SendSms`` as submit_sm with a delivery receipt requested (SMPP 3.4 section 4.4,
``registered_delivery``), ``QueryCredit`` and ``Activate`` to billing (``BillingPort``: the HTTP
client with retries and the offer id as idempotency key), a ``Reply`` as the USSD dialogue's final
screen or an SMS. What comes back becomes the engine's events, submitted through the
``CampaignRunner`` (store first, then act):

- billing's answers: ``CreditScored`` / ``CreditFailed``, ``Activated`` / ``ActivationFailed``; an
  activation whose outcome is unknown (``ActivationFailed.outcome_known`` False: the client's retries
  exhausted, billing may have applied it) is not an answer: it is tried again with the same offer id,
  backing off from ``activation_retry_initial`` to ``activation_retry_max`` seconds, until billing decides (at ``close`` it stays pending in the
  outbox and the next start carries it out);
- the SMSC: ``runner.command_done`` once a contact's submit_sm was accepted, ``SubmitFailed`` when it
  was refused, ``DeliveryReported`` from the receipts (an SMS in several parts is delivered when every
  part is; one failed part fails it);
- the SIM card: an authenticated PoR refusing the push (``StkRejectedBySim``) is a failed delivery of
  the DSTK step (state ``SIM_<status>``), so the journey goes on to its SMS at once;
- the subscriber: a DSTK answer (OK, an item, declined; a dialog that timed out on the handset is not
  an answer: the engine's own wait decides), a USSD code dialled into the ``buy_package`` handler (its
  final screen is the engine's ``Reply``), a plain SMS to the short code (``SMS_REPLY``).

Every command runs in its own task, so ``CampaignRunner.submit`` never waits for the network; the
tasks are tracked and ``close()`` waits for them, for a grace period: then the ones still waiting are
cancelled and their commands stay pending in the outbox. A command carried out again after a restart is
recognised: an STK push of an offer pushed before is taken as accepted (the SIM must not see it
twice), billing deduplicates ``Activate`` by its offer id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    Channel,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Event,
    PushStk,
    QueryCredit,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    SubmitFailed,
)
from gateway.campaigns.runner import CampaignRunner
from gateway.campaigns.store import OutboxCommand
from gateway.logs import log_ids
from gateway.smpp.client import SmppClient
from gateway.stk import StkOffer, StkPushService
from gateway.stk.events import (
    StkAnswerReceived,
    StkDelivered,
    StkDeliveryFailed,
    StkEvent,
    StkRejectedBySim,
)
from gateway.stk.offer import DialogStyle, PackageOption
from gateway.storage.sqlite_store import DuplicateRecord
from gateway.ussd.navigator import UssdContext
from protocols.errors import GatewayError, LocalProtocolError
from protocols.gsm.split import decode_short_message
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import DataSm, DeliverSm
from protocols.smpp.receipt import DeliveryReceipt
from protocols.smpp.tlv import Tag, find_tlv
from protocols.stk.dstk import StkOutcome

__all__ = ["BillingPort", "ChannelCounters", "ChannelExecutor"]

log = logging.getLogger(__name__)

_FAILED = (MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.DELETED, MessageState.REJECTED)


class BillingPort(Protocol):
    """What the executor needs of billing (``gateway.billing.client.BillingClient``)."""

    async def score(self, command: QueryCredit) -> CreditScored | CreditFailed: ...

    async def activate(self, command: Activate) -> Activated | ActivationFailed: ...


@dataclass(slots=True)
class ChannelCounters:
    """What went through the channels (the simulation's report and the admin API read them)."""

    stk_pushes: int = 0
    sms_sent: int = 0
    sms_parts: int = 0
    replies: int = 0
    submit_failures: int = 0
    receipts: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # by ResponseChannel value


@dataclass(slots=True)
class _SmsInFlight:
    command_id: str
    parts: int
    delivered: int = 0
    done: bool = False


class ChannelExecutor:
    """The ``Executor`` of a ``CampaignRunner`` over SMPP, the STK push service and billing.

    ``short_code`` is the originator of the SMS and the address subscribers answer to; ``clock`` gives
    the epoch seconds events are submitted at. Call ``attach(runner)`` before the runner recovers.
    ``stk`` None: a gateway without SIM keys (a ``PushStk`` then fails as ``SubmitFailed``)."""

    def __init__(
        self,
        *,
        billing: BillingPort,
        smpp: SmppClient,
        stk: StkPushService | None,
        short_code: str,
        clock: Callable[[], float],
        currency: str = "",
        activation_retry_initial: float = 1.0,
        activation_retry_max: float = 60.0,
    ) -> None:
        if not 0 < activation_retry_initial <= activation_retry_max:
            raise ValueError("0 < activation_retry_initial <= activation_retry_max is needed")
        self.billing = billing
        self.smpp = smpp
        self.stk = stk
        self.short_code = short_code
        self.currency = currency
        self.counters = ChannelCounters()
        self._clock = clock
        self._runner: CampaignRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sms: dict[str, _SmsInFlight] = {}  # SMSC message id -> the SMS it is a part of
        self._closing = False
        self._closed = asyncio.Event()  # set by close(): a retrying activation stops waiting
        self.activation_retry_initial = activation_retry_initial
        self.activation_retry_max = activation_retry_max
        smpp.add_receipt_handler(self._on_receipt)
        smpp.add_mo_handler(self._on_mo)
        if stk is not None:
            stk.add_listener(self._on_stk)
            stk.set_foreign(self.is_ours)

    def attach(self, runner: CampaignRunner) -> None:
        self._runner = runner

    @property
    def runner(self) -> CampaignRunner:
        if self._runner is None:
            raise LocalProtocolError("ChannelExecutor.attach(runner) was not called")
        return self._runner

    def is_ours(self, message_id: str) -> bool:
        """Whether ``message_id`` is an SMS of ours waiting for its receipt (not an STK push)."""
        return message_id in self._sms

    def pending(self) -> int:
        return len(self._tasks)

    async def close(self, grace: float = 10.0) -> None:
        """Wait for the commands in flight (their results are submitted), at most ``grace`` seconds.
        What is still waiting then (an SMS or a push queued for an SMPP bind that does not come while
        the SMSC is down, billing not answering) is cancelled and stays pending in the outbox: the next
        start carries it out. Without the bound the graceful stop waited for the SMSC for ever: the
        SMPP client, which would fail the queued submits, is closed only after this."""
        self._closing = True
        self._closed.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks:  # a result submitted meanwhile may start new commands (a confirmation)
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.wait(list(self._tasks), timeout=left)
        if self._tasks:
            log.warning(
                "stopping: %d channel commands still waiting for the network after %g s; "
                "they stay pending and the next start carries them out",
                len(self._tasks),
                grace,
            )
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- Executor ------------------------------------------------------------------------------------

    async def execute(self, command: OutboxCommand) -> None:
        if isinstance(command, QueryCredit):
            self._spawn(self._score(command))
        elif isinstance(command, Activate):
            self._spawn(self._activate(command))
        elif isinstance(command, PushStk):
            self._spawn(self._push(command))
        elif isinstance(command, SendSms):
            self._spawn(self._send(command))
        elif isinstance(command, Reply):
            self.counters.replies += 1
            if command.channel is not ResponseChannel.USSD:  # USSD: the dialogue's final screen shows it
                self._spawn(self._send_reply(command))
        else:  # pragma: no cover - OutboxCommand is exactly these
            raise LocalProtocolError(f"no channel for {type(command).__name__}")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("campaign channel task failed", exc_info=task.exception())

    async def _submit(self, event: Event) -> None:
        await self.runner.submit(event, self._clock())

    # --- billing -------------------------------------------------------------------------------------

    async def _score(self, command: QueryCredit) -> None:
        await self._submit(await self.billing.score(command))

    async def _activate(self, command: Activate) -> None:
        """Activate until billing decides. An answer lost with its connection, or billing unavailable
        for longer than the client's retries, leaves the outcome unknown: billing may have applied
        it. Reporting that as ``ActivationFailed`` would close the offer "failed" and tell the
        subscriber they were not charged while billing has charged them, so the same offer id
        (billing's idempotency key) is tried again, backing off, until billing answers. At ``close``
        the command is left pending in the outbox: the next start carries it out."""
        delay = self.activation_retry_initial
        while True:
            result = await self.billing.activate(command)
            if not (isinstance(result, ActivationFailed) and not result.outcome_known):
                break
            log.warning(
                "activation of offer %s: %s; trying again in %.1f s",
                command.offer_id,
                result.reason,
                delay,
                extra=log_ids(command.msisdn, None, command.offer_id),
            )
            if self._closing or await self._closed_within(delay):
                log.warning(
                    "activation of offer %s left pending at shutdown: the next start carries it out",
                    command.offer_id,
                    extra=log_ids(command.msisdn, None, command.offer_id),
                )
                return
            delay = min(self.activation_retry_max, delay * 2)
        await self._submit(result)

    async def _closed_within(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when ``close`` is called meanwhile: whether it was."""
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # --- SIM toolkit ---------------------------------------------------------------------------------

    async def _push(self, command: PushStk) -> None:
        if self.stk is None:
            await self._submit(SubmitFailed(command.command_id, "no SIM toolkit push configured"))
            return
        options = tuple(
            PackageOption(o.package_id, o.volume_mb, o.price, self.currency) for o in command.options
        )
        offer = StkOffer(command.offer_id, command.msisdn, options, DialogStyle(command.style), command.text)
        try:
            await self.stk.push(offer, self._clock())
        except DuplicateRecord:
            log.info("STK offer %s was pushed before the restart; not pushed again", command.offer_id)
        except (GatewayError, ValueError) as exc:
            self.counters.submit_failures += 1
            await self._submit(SubmitFailed(command.command_id, str(exc)))
            return
        self.counters.stk_pushes += 1
        self.runner.command_done(command.command_id, self._clock())

    def _push_command(self, offer_id: str) -> str | None:
        """The command id of the push a receipt is for: the offer's latest STK step up to the one it
        is at (the push service pushes an offer once, so that step is the push), or None when the
        offer ended. Not simply the step it is at: a receipt that comes after the step's hard_cap,
        once the journey went on to its SMS, is the dialog's and must not count as the SMS's (a late
        EXPIRED would fail the SMS step and end the journey while the SMS reached the handset)."""
        engine = self.runner.engine
        view = engine.offer(offer_id)
        if view is None:
            return None
        campaign = engine.campaigns.campaign(view.campaign_id)
        journey = () if campaign is None else campaign.journey
        for index in range(min(view.step, len(journey) - 1), -1, -1):
            if journey[index].channel is Channel.STK:
                return f"{offer_id}:{index}"
        return None

    async def _on_stk(self, event: StkEvent) -> None:
        if isinstance(event, StkDelivered | StkDeliveryFailed):
            command_id = self._push_command(event.offer_id)
            if command_id is None:
                return  # the offer ended before its receipt came (the engine ignores an earlier step's)
            self.counters.receipts += 1
            delivered = isinstance(event, StkDelivered)
            state = "DELIVRD" if isinstance(event, StkDelivered) else event.stat
            await self._submit(DeliveryReported(command_id, delivered, state))
        elif isinstance(event, StkAnswerReceived):
            await self._on_stk_answer(event)
        elif isinstance(event, StkRejectedBySim) and event.authenticated and event.offer_id is not None:
            # the card refused the packet (counter, security, memory): the dialog was never shown, so
            # the step failed and the journey goes on to its next step (the SMS) now instead of after
            # the step's wait. An unauthenticated PoR may be forged: it changes nothing.
            command_id = self._push_command(event.offer_id)
            if command_id is not None:
                await self._submit(DeliveryReported(command_id, False, f"SIM_{event.status.name}"))

    async def _on_stk_answer(self, event: StkAnswerReceived) -> None:
        if event.outcome is StkOutcome.ACCEPTED:
            channel, option = ResponseChannel.STK_OK, None
        elif event.outcome is StkOutcome.ITEM_CHOSEN:
            view = self.runner.engine.offer(event.offer_id)
            if view is None or not 1 <= event.item_id <= len(view.options):
                option = f"item {event.item_id}"  # the engine answers it as unknown or expired
            else:
                option = view.options[event.item_id - 1].package_id
            channel = ResponseChannel.STK_ITEM
        elif event.outcome is StkOutcome.DECLINED:
            channel, option = ResponseChannel.STK_DECLINED, None
        else:
            return  # timed out or not shown: no answer, the engine's wait runs on
        self._count(channel)
        response_id = f"stk:{event.offer_id}"  # one answer per dialog: a re-delivered MO is the same
        await self._submit(Responded(response_id, event.msisdn, channel, event.offer_id, option))

    def _count(self, channel: ResponseChannel) -> None:
        self.counters.answers[channel.value] = self.counters.answers.get(channel.value, 0) + 1

    # --- SMS -----------------------------------------------------------------------------------------

    async def _send(self, command: SendSms) -> None:
        try:
            results = await self.smpp.send_text(
                self.short_code, command.msisdn, command.text, registered_delivery=1
            )
        except GatewayError as exc:
            self.counters.submit_failures += 1
            await self._submit(SubmitFailed(command.command_id, str(exc)))
            return
        flight = _SmsInFlight(command.command_id, len(results))
        for result in results:
            self._sms[result.message_id] = flight
        self.counters.sms_sent += 1
        self.counters.sms_parts += len(results)
        self.runner.command_done(command.command_id, self._clock())

    async def _send_reply(self, command: Reply) -> None:
        try:
            await self.smpp.send_text(self.short_code, command.msisdn, command.text)
        except GatewayError as exc:  # a reply is a courtesy: the decision stands and is recorded
            log.warning("reply to %s by SMS failed: %s", command.msisdn, exc)

    async def _on_receipt(self, receipt: DeliveryReceipt, pdu: DeliverSm | DataSm) -> None:
        flight = self._sms.pop(receipt.id, None)
        if flight is None or flight.done:
            return
        state = receipt.message_state
        if state is MessageState.DELIVERED:
            flight.delivered += 1
            if flight.delivered < flight.parts:
                return
            delivered = True
        elif state in _FAILED:
            delivered = False
        else:
            self._sms[receipt.id] = flight  # an intermediate state: the final receipt follows
            return
        flight.done = True
        self.counters.receipts += 1
        await self._submit(DeliveryReported(flight.command_id, delivered, receipt.stat))

    async def _on_mo(self, pdu: DeliverSm | DataSm) -> None:
        """A text to the short code is an answer to an offer (``SMS_REPLY``: a package id, its USSD code
        or its volume in MB)."""
        if not isinstance(pdu, DeliverSm) or pdu.protocol_id or pdu.esm_class & 0x40:
            return  # binary / UDH: the SIM toolkit's, not a typed reply
        if find_tlv(pdu.optional_parameters, Tag.USSD_SERVICE_OP) is not None:
            return  # USSD: the USSD service's
        if pdu.destination_addr.lstrip("+") != self.short_code.lstrip("+"):
            return
        try:
            text = decode_short_message(pdu.data_coding, pdu.short_message).strip()
        except GatewayError:
            return
        if not text:
            return
        self._count(ResponseChannel.SMS_REPLY)
        response_id = f"sms:{pdu.source_addr}:{pdu.sequence_number}:{text}"
        option = self._reply_option(pdu.source_addr, text)
        await self._submit(Responded(response_id, pdu.source_addr, ResponseChannel.SMS_REPLY, None, option))

    def _reply_option(self, msisdn: str, text: str) -> str:
        """What a typed reply names: a package id or USSD code as it is, or a volume ("200", "200MB",
        "200 mb") as the package of that volume in the subscriber's newest open offer."""
        volume = text.upper().removesuffix("MB").strip()
        if not volume.isdigit():
            return text
        for view in reversed(self.runner.engine.open_offers(msisdn)):
            for option in view.options:
                if option.volume_mb == int(volume):
                    return option.package_id
        return text  # the engine answers it as not offered

    # --- USSD ----------------------------------------------------------------------------------------

    async def buy_package(self, context: UssdContext) -> str:
        """The ``buy_package`` handler of the USSD menus. A dialled offer code (``*123*200#``) or the
        "my offers" menu's choice (``args.offer_id`` and ``args.mb``) is the subscriber's answer to an
        offer; the engine's ``Reply`` is the final screen."""
        offer_id = str(context.args.get("offer_id") or "") or None
        option: str | None = context.service_code
        if offer_id is not None:
            view = self.runner.engine.offer(offer_id)
            mb = str(context.args.get("mb", ""))
            chosen = [o for o in view.options if str(o.volume_mb) == mb] if view is not None else []
            option = chosen[0].package_id if chosen else f"{mb} MB"
        self._count(ResponseChannel.USSD)
        response_id = f"ussd:{context.session_id}"
        outputs = await self.runner.submit(
            Responded(response_id, context.msisdn, ResponseChannel.USSD, offer_id, option), self._clock()
        )
        for command in outputs:
            if isinstance(command, Reply):
                return command.text
        return "Your request was received."

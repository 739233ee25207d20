"""The gateway's composition root (DESIGN.md, layers): every part wired into one running gateway.

Data flow (DESIGN.md): usage notifications (Diameter, MQTT, HTTP) -> ``gateway.ingest`` (journal,
trigger detection) -> ``on_trigger``: billing's current profile of the subscriber (``ProfileSource``)
and the trigger go to the campaign runner (store first, then act) -> the engine's commands go out on
the channels (``gateway.campaigns.channels``: STK push and SMS over the one SMPP bind, billing over
HTTP) -> the answers (DSTK, USSD codes through the menus' ``buy_package`` handler, SMS replies, receipts,
billing's results) come back to the runner as events.

Start order: the SMPP bind, the stores, the campaign runner's recovery (so the timers and the pending
outbox resume before anything new arrives), the USSD service, and last the intakes (so no trigger
arrives before the campaigns can take it). ``stop()`` reverses it: the intakes stop taking
notifications first, the channel tasks in flight finish (their results are stored), the runner
writes a snapshot, USSD dialogues are released, the SMPP window drains and the bind is closed.

Everything that needs the time takes ``clock`` (epoch seconds): the simulator runs the whole gateway
on a simulated clock (``simulators.clock``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from campaign_core.engine import Engine
from campaign_core.model import Profile, ProfileUpdated, TriggerKind, TriggerRaised
from campaign_core.usage import Trigger
from gateway.campaigns.channels import BillingPort, ChannelExecutor
from gateway.campaigns.loader import load_campaign_dir
from gateway.campaigns.runner import CampaignRunner, RecoveryReport
from gateway.campaigns.store import SqliteCampaignStore
from gateway.ingest.config import IngestConfig, JournalConfig
from gateway.ingest.service import IngestService
from gateway.smpp.client import ClientConfig, SmppClient
from gateway.stk import KeyStore, StkPushService
from gateway.storage import SqliteStore
from gateway.storage.sqlite_base import Synchronous
from gateway.ussd import UssdContext, UssdService, load_menus
from gateway.ussd.navigator import Handler, Provider
from protocols.ussd import get_profile

__all__ = ["Gateway", "GatewaySettings", "ProfileSource", "trigger_event"]

log = logging.getLogger(__name__)

ProfileSource = Callable[[str], Awaitable[Profile | None]]
"""Billing's current view of a subscriber (None: billing does not know them)."""


def trigger_event(trigger: Trigger) -> TriggerRaised:
    """The campaign engine's event for a usage trigger. Its id names the subscriber, package, period
    and level, so a trigger delivered again (ingest is at least once across a crash) is the same. When
    the source names no period (Gy), the notification's own id stands for it: the detector has already
    let only the first crossing of the current period through, and a later period's crossing is
    another notification."""
    period = trigger.period if trigger.period is not None else f"event:{trigger.event_id}"
    return TriggerRaised(
        f"{trigger.msisdn}/{trigger.package_id}/{period}/{trigger.level}",
        TriggerKind(trigger.kind.value),
        trigger.msisdn,
        trigger.event_time,
        trigger.package_id,
        trigger.level,
    )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the gateway runs with. ``state_dir`` holds the SQLite files (campaign store, STK pushes and
    OTA counters, the ingest journal); ``ingest`` names the intakes (its journal path is put under
    ``state_dir``)."""

    smpp: ClientConfig
    short_code: str
    campaigns_dir: Path
    ussd_menus: Path
    state_dir: Path
    ingest: IngestConfig
    sim_keys: KeyStore | None = None
    ussd_profile: str = "standard"
    currency: str = ""
    snapshot_every: int = 100_000
    durable: bool = True
    """False: the stores skip the sync at each commit (simulations; a power loss may lose the last
    commits, a crash of the process loses nothing)."""
    extra_handlers: Mapping[str, Handler] = field(default_factory=dict)
    extra_providers: Mapping[str, Provider] = field(default_factory=dict)


class Gateway:
    """The running gateway (see the module docstring). ``billing`` scores and activates; ``profiles``
    gives billing's view of a subscriber when a trigger arrives."""

    def __init__(
        self,
        settings: GatewaySettings,
        billing: BillingPort,
        profiles: ProfileSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.billing = billing
        self.profiles = profiles
        self.clock = clock
        state = settings.state_dir
        state.mkdir(parents=True, exist_ok=True)
        sync: Synchronous = "FULL" if settings.durable else "NORMAL"
        self.smpp = SmppClient(settings.smpp)
        self.stk_store: SqliteStore | None = None
        self.stk: StkPushService | None = None
        if settings.sim_keys is not None:
            self.stk_store = SqliteStore(state / "stk.sqlite", synchronous=sync)
            self.stk = StkPushService(
                self.smpp, settings.sim_keys, self.stk_store, reply_to=settings.short_code, clock=clock
            )
        self.executor = ChannelExecutor(
            billing=billing,
            smpp=self.smpp,
            stk=self.stk,
            short_code=settings.short_code,
            clock=clock,
            currency=settings.currency,
        )
        self.campaigns = load_campaign_dir(settings.campaigns_dir, ussd_menus=settings.ussd_menus)
        self.engine = Engine(self.campaigns)
        self.store = SqliteCampaignStore(state / "campaigns.sqlite", synchronous=sync)
        self.runner = CampaignRunner(
            self.engine, self.store, self.executor, clock=clock, snapshot_every=settings.snapshot_every
        )
        self.executor.attach(self.runner)
        handlers: dict[str, Handler] = {
            "buy_package": self.executor.buy_package,
            "balance": self._balance,
            "gift_data": self._gift_data,
            **settings.extra_handlers,
        }
        providers: dict[str, Provider] = {"my_offers": self._my_offers, **settings.extra_providers}
        profile = get_profile(settings.ussd_profile)
        menus = load_menus(settings.ussd_menus, profile=profile, handlers=handlers, providers=providers)
        self.ussd = UssdService(self.smpp, profile, menus, handlers, providers)
        journal = JournalConfig(
            path=state / "ingest.sqlite",
            synchronous=settings.ingest.journal.synchronous if settings.durable else "OFF",
        )
        ingest = settings.ingest.model_copy(update={"journal": journal})
        self.ingest = IngestService(ingest, self.on_trigger, clock=clock)
        self._profiles_sent: dict[str, Profile] = {}
        self.recovery: RecoveryReport | None = None
        self.triggers = 0

    async def start(self) -> None:
        await self.smpp.start()
        await self.smpp.wait_bound()
        self.recovery = await self.runner.recover(self.clock())
        await self.ussd.start()
        await self.ingest.start()
        log.info("gateway started: %d campaigns", len(self.campaigns.campaigns))

    async def stop(self) -> None:
        await self.ingest.stop()
        await self.executor.close()
        await self.runner.close()
        await self.ussd.close()
        await self.smpp.close()
        self.store.close()
        if self.stk_store is not None:
            self.stk_store.close()

    # --- triggers ------------------------------------------------------------------------------------

    async def on_trigger(self, trigger: Trigger) -> None:
        """A usage trigger: billing's current profile first (eligibility reads it), then the trigger."""
        self.triggers += 1
        profile = await self.profiles(trigger.msisdn)
        if profile is not None and self._profiles_sent.get(trigger.msisdn) != profile:
            await self.runner.submit(ProfileUpdated(profile), self.clock())
            self._profiles_sent[trigger.msisdn] = profile
        await self.runner.submit(trigger_event(trigger), self.clock())

    # --- the menus' other handlers -----------------------------------------------------------------------

    async def _balance(self, context: UssdContext) -> str:
        from campaign_core.model import CreditScored, QueryCredit  # noqa: PLC0415 - only this handler

        answer = await self.billing.score(QueryCredit(f"balance:{context.session_id}", context.msisdn, 5.0))
        if isinstance(answer, CreditScored):
            return f"Your balance is {answer.balance}. You may borrow up to {answer.credit_limit}."
        return "Your balance is not available right now. Please try again later."

    async def _gift_data(self, context: UssdContext) -> str:
        return "Sending data to a friend is not available on this line."

    async def _my_offers(self, context: UssdContext) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        for view in self.engine.open_offers(context.msisdn):
            for option in view.options:
                items.append(
                    {
                        "id": view.offer_id,
                        "name": f"{option.volume_mb}MB",
                        "mb": option.volume_mb,
                        "price": str(option.price),
                    }
                )
        return items

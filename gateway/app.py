"""The gateway's composition root (DESIGN.md, layers): every part wired into one running gateway.

Data flow (DESIGN.md): usage notifications (Diameter, MQTT, HTTP) -> ``gateway.ingest`` (journal,
trigger detection) -> ``on_trigger``: billing's current profile of the subscriber (``ProfileSource``)
and the trigger go to the campaign runner (store first, then act) -> the engine's commands go out on
the channels (``gateway.campaigns.channels``: STK push and SMS over the one SMPP bind, billing over
HTTP) -> the answers (DSTK, USSD codes through the menus' ``buy_package`` handler, SMS replies, receipts,
billing's results) come back to the runner as events.

Start order: the SMPP bind (an SMSC that is down does not stop the start: the client keeps
reconnecting with back-off and what goes out waits for the bind; a refused bind is fatal), the stores, the campaign runner's recovery (so the timers and the pending
outbox resume before anything new arrives), the USSD service, and last the intakes (so no trigger
arrives before the campaigns can take it). ``stop()`` reverses it: the intakes stop taking
notifications first, the channel tasks in flight finish (their results are stored), the runner
writes a snapshot, USSD dialogues are released, the SMPP window drains and the bind is closed.

Everything that needs the time takes ``clock`` (epoch seconds): the simulator runs the whole gateway
on a simulated clock (``simulators.clock``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from campaign_core.config import CampaignSet
from campaign_core.engine import Engine
from campaign_core.model import (
    Command,
    Event,
    Payment,
    Profile,
    ProfileUpdated,
    Record,
    TriggerKind,
    TriggerRaised,
)
from campaign_core.usage import Trigger
from gateway.campaigns.channels import BillingPort, ChannelExecutor
from gateway.campaigns.cli import detail_value
from gateway.campaigns.loader import load_campaign_dir
from gateway.campaigns.runner import CampaignRunner, RecoveryReport
from gateway.campaigns.store import SqliteCampaignStore
from gateway.ingest.config import IngestConfig, JournalConfig
from gateway.ingest.service import IngestService
from gateway.logs import log_ids
from gateway.smpp.client import BindError, ClientConfig, SmppClient
from gateway.stk import KeyStore, StkPushService
from gateway.storage import SqliteStore
from gateway.storage.sqlite_base import Synchronous
from gateway.ussd import UssdContext, UssdService, load_menus
from gateway.ussd.navigator import Handler, Provider
from protocols.errors import ConfigError
from protocols.smpp.constants import CommandStatus
from protocols.ussd import get_profile

__all__ = ["CampaignStatus", "Gateway", "GatewaySettings", "ProfileSource", "ReloadResult", "trigger_event"]

log = logging.getLogger(__name__)

ProfileSource = Callable[[str], Awaitable[Profile | None]]
"""Billing's current view of a subscriber (None: billing does not know them)."""


_decisions = logging.getLogger("tgw.campaign")


def _log_decisions(event: Event, now: float, outputs: list[Command]) -> None:
    """One log line per decision of the trail (``tgw explain`` shows the same), with the subscriber,
    campaign and offer ids as fields of the JSON log."""
    if not _decisions.isEnabledFor(logging.INFO):
        return
    for command in outputs:
        if isinstance(command, Record):
            detail = " ".join(f"{key}={detail_value(key, value)}" for key, value in command.detail.items())
            _decisions.info(
                "%s %s",
                command.kind.value,
                detail,
                extra=log_ids(command.msisdn, command.campaign_id, command.offer_id),
            )


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
class ReloadResult:
    """What a reload did: the campaigns now loaded, the open offers dropped because their campaign is
    gone or changed beyond what they can continue with, paused ids the directory no longer has."""

    campaigns: tuple[str, ...]
    dropped_offers: tuple[str, ...]
    unknown_paused: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    campaign_id: str
    name: str
    enabled: bool
    paused: bool
    trigger: str
    source: str


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
    campaigns: CampaignSet | None = None
    """The campaign directory already loaded and checked (``gateway.config``); None: loaded here."""
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
        self._paused_file = state / "paused_campaigns.json"
        self.paused: set[str] = self._read_paused()
        self.loaded = settings.campaigns or load_campaign_dir(
            settings.campaigns_dir, ussd_menus=settings.ussd_menus
        )
        self.campaigns = self._with_paused(self.loaded)
        self.engine = Engine(self.campaigns, paused=self.paused)
        self.store = SqliteCampaignStore(state / "campaigns.sqlite", synchronous=sync)
        self.runner = CampaignRunner(
            self.engine, self.store, self.executor, clock=clock, snapshot_every=settings.snapshot_every
        )
        self.executor.attach(self.runner)
        self.runner.add_observer(_log_decisions)
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
        """Start everything (module docstring). An SMSC that cannot be reached does not stop the
        start: the gateway takes usage events and decides at once, its SMS and pushes wait for the
        bind while the SMPP client reconnects with back-off, and ``/health/ready`` says "SMPP not
        bound" meanwhile. A bind the SMSC refuses raises ``BindError``: retrying cannot fix
        credentials."""
        cfg = self.settings.smpp
        try:
            await self.smpp.start(retry_connect=True)
        except BindError as exc:
            raise BindError(
                exc.status,
                f"SMSC {cfg.host}:{cfg.port} refused the bind of system_id {cfg.system_id!r}: "
                f"{CommandStatus(exc.status).name} ({exc.status:#010x}); check the smsc section "
                "(system_id, password, system_type, bind_type)",
            ) from None
        if not self.smpp.is_bound:
            log.warning(
                "SMSC %s:%s cannot be reached; starting anyway, SMS and pushes wait for the bind",
                cfg.host,
                cfg.port,
            )
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

    # --- campaigns: reload, pause, resume ---------------------------------------------------------------

    def reload(self, loaded: CampaignSet | None = None) -> ReloadResult:
        """Read the campaign directory again and run it from now on. A bad directory raises
        ``ConfigError`` (file, line, reason) and changes nothing. The running engine's state (open
        offers, contact counts, experiment assignments) goes over to the new one through its snapshot,
        so journeys in progress continue; an offer whose campaign is gone is dropped and reported.
        ``loaded``: the directory as the caller has just loaded and checked it."""
        if loaded is None:
            loaded = load_campaign_dir(self.settings.campaigns_dir, ussd_menus=self.settings.ussd_menus)
        unknown = sorted(self.paused - {c.id for c in loaded.campaigns})
        dropped = self._swap(loaded)
        log.info("campaigns reloaded: %d campaigns, %d offers dropped", len(loaded.campaigns), len(dropped))
        return ReloadResult(tuple(c.id for c in loaded.campaigns), tuple(dropped), tuple(unknown))

    def pause(self, campaign_id: str) -> None:
        """No new journeys of ``campaign_id`` from now on (offers in progress run to their end); kept
        across restarts. ``KeyError`` for an unknown campaign."""
        self._pause_or_resume(campaign_id, paused=True)

    def resume(self, campaign_id: str) -> None:
        self._pause_or_resume(campaign_id, paused=False)

    def campaign_status(self) -> list[CampaignStatus]:
        """Every campaign of the directory: enabled in its file, paused here, its trigger and file."""
        return [
            CampaignStatus(
                campaign.id,
                campaign.name,
                campaign.enabled,
                campaign.id in self.paused,
                campaign.trigger.kind.value,
                self.loaded.sources.get(campaign.id, ""),
            )
            for campaign in self.loaded.campaigns
        ]

    def _pause_or_resume(self, campaign_id: str, *, paused: bool) -> None:
        if self.loaded.campaign(campaign_id) is None:
            raise KeyError(campaign_id)
        wanted = self.paused | {campaign_id} if paused else self.paused - {campaign_id}
        if wanted == self.paused:
            return
        self.paused = wanted
        self._write_paused()
        self._swap(self.loaded)
        log.info("campaign %s %s", campaign_id, "paused" if paused else "resumed")

    def _swap(self, loaded: CampaignSet) -> list[str]:
        campaigns = self._with_paused(loaded)
        engine = Engine(campaigns, paused=self.paused)
        dropped = engine.restore(self.engine.snapshot())
        self.loaded, self.campaigns, self.engine = loaded, campaigns, engine
        self.runner.engine = engine
        now = self.clock()
        for event in engine.dropped:  # each offer's end in the trail (tgw explain), stored as any event
            log.warning(
                "campaigns reloaded: offer %s dropped: %s",
                event.offer_id,
                event.reason,
                extra=log_ids(event.msisdn, event.campaign_id, event.offer_id),
            )
            self.runner.record(event, now)
        self.runner.clock_changed()  # the new engine's next deadline
        self.runner.take_snapshot(now)  # recovery replays what follows with this configuration
        return dropped

    def _with_paused(self, loaded: CampaignSet) -> CampaignSet:
        if not self.paused:
            return loaded
        return replace(
            loaded,
            campaigns=tuple(
                c.model_copy(update={"enabled": False}) if c.id in self.paused else c
                for c in loaded.campaigns
            ),
        )

    def _read_paused(self) -> set[str]:
        try:
            data = json.loads(self._paused_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the paused campaigns: {exc}", str(self._paused_file)) from None
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise ConfigError("paused campaigns must be a list of campaign ids", str(self._paused_file))
        return set(data)

    def _write_paused(self) -> None:
        temporary = self._paused_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(sorted(self.paused)), encoding="utf-8")
        temporary.replace(self._paused_file)  # atomic: a crash leaves the old list or the new one

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
            currency = self.settings.currency or self.campaigns.catalogue.currency
            return (
                f"Your balance is {answer.balance:.2f} {currency}. "
                f"You may borrow up to {answer.credit_limit:.2f} {currency}."
            )
        return "Your balance is not available right now. Please try again later."

    async def _gift_data(self, context: UssdContext) -> str:
        return "Sending data to a friend is not available on this line."

    async def _my_offers(self, context: UssdContext) -> list[dict[str, object]]:
        # the menu line shows the volume and price itself ("{name} {mb}MB {price} KES"), so the name
        # says what they do not: the validity, and whether it is bought on credit (the catalogue's
        # own package names are for staff, never sent to subscribers)
        validity = {package.id: package.validity_days for package in self.campaigns.catalogue.packages}
        items: list[dict[str, object]] = []
        for view in self.engine.open_offers(context.msisdn):
            for option in view.options:
                days = validity.get(option.package_id)
                name = "Offer" if days is None else f"{days}-day"
                if option.payment is Payment.CREDIT:
                    name += " on credit"
                items.append(
                    {
                        "id": view.offer_id,
                        "name": name,
                        "mb": option.volume_mb,
                        "price": str(option.price),
                    }
                )
        return items

"""``tgw run --config FILE``: the gateway as a long-running service (issue #9).

Start: the config and every file it names are validated first (``gateway.config``: file, line,
reason; exit status 2 and nothing started). Then the gateway starts (``gateway.app.Gateway``: the
SMPP bind, the stores and the campaign runner's recovery, the USSD service, the intakes), and the
admin API when configured.

Signals (POSIX):

- SIGHUP, or ``POST /v1/campaigns/reload`` on the admin API: the config file is read and validated
  again. A bad one is refused with the reason and nothing changes. A good one is applied without
  dropping anything: the campaign directory and the USSD menus are reloaded into the running gateway
  (journeys in progress go on), the log level and the admin token take effect; a change to a network
  element (the SMSC, the billing URL, the intakes, the state directory) is reported as needing a
  restart and is not applied, so no bind, Diameter peer or USSD dialogue is dropped.
- SIGTERM or SIGINT: graceful shutdown. The intakes stop taking notifications (Diameter peers get a
  DPR, MQTT messages not yet journaled stay at the broker), the channel work in flight finishes and is
  stored, the campaign runner writes a snapshot, USSD dialogues are released, the SMPP window drains
  and the bind is closed with an unbind. A second SIGTERM exits at once (status 1), leaving recovery
  to the next start: the stores were written before anything was acted on.

``--pcap FILE`` captures every TCP exchange of the process (``gateway.trace``), both directions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.admin import AdminServer
from gateway.app import Gateway, GatewaySettings
from gateway.billing.client import BillingClient
from gateway.config import LoadedConfig, load_gateway_config
from gateway.ingest.config import IngestConfig, JournalConfig
from gateway.trace import PcapWriter, TrafficTap
from protocols.errors import ConfigError

__all__ = ["GatewayService", "ReloadOutcome", "settings_of"]

log = logging.getLogger(__name__)

_RESTART_SECTIONS = ("state_dir", "smsc", "billing", "ingest", "sim_keys", "currency")


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did: ``applied`` (what changed and took effect), ``restart_needed`` (sections that
    changed but take effect at the next start), ``error`` (the reason a bad config was refused)."""

    applied: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()
    error: str | None = None
    dropped_offers: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None


def settings_of(loaded: LoadedConfig) -> GatewaySettings:
    config = loaded.config
    ingest = IngestConfig(
        diameter=config.ingest.diameter,
        mqtt=config.ingest.mqtt,
        http=config.ingest.http,
        journal=JournalConfig(
            path=loaded.state_dir / "ingest.sqlite", synchronous=config.ingest.journal_synchronous
        ),
        triggers=config.ingest.triggers,
    )
    return GatewaySettings(
        smpp=config.smsc.client_config(),
        short_code=config.smsc.short_code,
        campaigns_dir=loaded.campaigns_dir,
        ussd_menus=loaded.ussd_menus,
        state_dir=loaded.state_dir,
        ingest=ingest,
        sim_keys=loaded.sim_keys,
        ussd_profile=config.ussd.profile,
        currency=config.currency or loaded.campaigns.catalogue.currency,
        snapshot_every=config.campaigns.snapshot_every,
        campaigns=loaded.campaigns,
    )


class GatewayService:
    """The gateway of one config file, with reload and graceful stop (see the module docstring)."""

    def __init__(self, loaded: LoadedConfig, *, pcap: Path | None = None) -> None:
        self.loaded = loaded
        config = loaded.config
        self.billing = BillingClient(
            config.billing.url,
            timeout=config.billing.timeout,
            retries=config.billing.retries,
            backoff_initial=config.billing.backoff_initial,
            backoff_max=config.billing.backoff_max,
        )
        self.gateway = Gateway(settings_of(loaded), self.billing, self.billing.profile)
        self.pcap = pcap
        self.tap: TrafficTap | None = None
        self.admin: AdminServer | None = None
        self.on_reloaded: list[Callable[[LoadedConfig], None]] = []
        self._stopping = asyncio.Event()
        self._terms = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.pcap is not None:
            self.tap = TrafficTap(PcapWriter(self.pcap), self.gateway.clock, outbound=True)
            self.tap.install(loop)
        await self.gateway.start()
        admin = self.loaded.config.admin
        if admin.enabled:
            self.admin = AdminServer(
                self.gateway, host=admin.host, port=admin.port, token=admin.bearer(), reload=self.reload
            )
            await self.admin.start()

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
        await self.gateway.stop()
        await self.billing.close()
        if self.tap is not None:
            self.tap.close()

    # --- signals ---

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload_logged()))
        loop.add_signal_handler(signal.SIGTERM, self._terminate)
        loop.add_signal_handler(signal.SIGINT, self._terminate)

    def _terminate(self) -> None:
        self._terms += 1
        if self._terms == 1:
            log.info(
                "stopping: draining the SMPP window, persisting journeys (send it again to exit at once)"
            )
            self._stopping.set()
        else:
            log.warning("second stop signal: exiting at once; the next start recovers from the stores")
            logging.shutdown()
            os._exit(1)

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    # --- reload ---

    async def _reload_logged(self) -> None:
        outcome = await self.reload()
        if not outcome.ok:
            log.error("reload refused: %s", outcome.error)

    async def reload(self) -> ReloadOutcome:
        """Validate the config file again and apply what can change live (module docstring)."""
        try:
            new = load_gateway_config(self.loaded.path)
        except ConfigError as exc:
            return ReloadOutcome(error=str(exc))
        old = self.loaded.config
        restart = tuple(name for name in _RESTART_SECTIONS if getattr(new.config, name) != getattr(old, name))
        applied: list[str] = []
        dropped: tuple[str, ...] = ()
        same_dir = new.campaigns_dir == self.loaded.campaigns_dir
        if not same_dir:
            restart += ("campaigns.dir",)
        else:
            try:
                result = self.gateway.reload(new.campaigns)
            except ConfigError as exc:  # the new engine refused the running one's state
                return ReloadOutcome(error=str(exc))
            applied.append("campaigns")
            dropped = result.dropped_offers
        if new.config.ussd != old.ussd:
            restart += ("ussd",)
        if new.config.logging != old.logging:
            logging.getLogger().setLevel(new.config.logging.level)
            applied.append("logging")
        if new.config.admin != old.admin:
            if self.admin is not None and new.config.admin.enabled:
                self.admin.set_token(new.config.admin.bearer())
                applied.append("admin token")
            if (new.config.admin.host, new.config.admin.port, new.config.admin.enabled) != (
                old.admin.host,
                old.admin.port,
                old.admin.enabled,
            ):
                restart += ("admin",)
        self.loaded = new
        for listener in self.on_reloaded:
            listener(new)
        if restart:
            log.warning(
                "config reloaded; these changes take effect at the next start: %s", ", ".join(restart)
            )
        log.info("config reloaded: %s", ", ".join(applied) or "nothing changed")
        return ReloadOutcome(tuple(applied), restart, None, dropped)

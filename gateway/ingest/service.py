"""The ingest service: everything of issue #6 wired from one ``IngestConfig``.

Journal (SQLite) -> pipeline (trigger detection) <- Diameter server (+ outgoing peers), MQTT
subscriber, HTTP intake. ``start()`` opens the journal and replays what a crash left unprocessed
before any intake listens, so triggers come out in order; ``stop()`` stops the intakes first (the
Diameter peers get a DPR, the MQTT session keeps unacknowledged messages at the broker), then
drains the pipeline, checkpoints the detector and closes the journal.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from campaign_core.triggers import TriggerDetector
from campaign_core.usage import UsageKind
from gateway.ingest.config import DiameterConfig, IngestConfig, TlsConfig
from gateway.ingest.diameter import DiameterClient, DiameterServer, DiameterSettings
from gateway.ingest.http import HttpIngest
from gateway.ingest.journal import IngestJournal
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.pipeline import IngestPipeline, TriggerHandler
from protocols.errors import ConfigError, TransportError

__all__ = ["IngestService", "diameter_settings", "server_tls_context"]

log = logging.getLogger(__name__)


def server_tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """The listener's TLS context (RFC 6733 section 13: TLS 1.2 or later); client certificates are
    required when a CA is given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # each step names its files: the ssl module's errors ("[Errno 2] No such file or directory") do not
    try:
        context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"diameter.tls: cannot load cert {tls.cert} with key {tls.key}: {exc}") from None
    if tls.ca is not None:
        try:
            context.load_verify_locations(tls.ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"diameter.tls: cannot load ca {tls.ca}: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def diameter_settings(config: DiameterConfig) -> DiameterSettings:
    return DiameterSettings(
        origin_host=config.origin_host,
        origin_realm=config.origin_realm,
        host=config.host,
        port=config.port,
        allowed_peers=tuple((rule.origin_host, rule.origin_realm) for rule in config.allowed_peers),
        tls=None if config.tls is None else server_tls_context(config.tls),
        watchdog_interval=config.watchdog_interval,
        product_name=config.product_name,
        vendor_id=config.vendor_id,
        gy_threshold_percent=config.gy_threshold_percent,
        sy_status_map={
            status: (UsageKind(meaning.kind), meaning.percent)
            for status, meaning in config.sy_statuses.items()
        },
    )


class IngestService:
    """Builds and runs the intakes of ``config``; triggers go to ``on_trigger``."""

    def __init__(
        self,
        config: IngestConfig,
        on_trigger: TriggerHandler,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.journal = IngestJournal(config.journal.path, synchronous=config.journal.synchronous)
        self.detector = TriggerDetector(config.triggers.thresholds)
        self.pipeline = IngestPipeline(self.journal, self.detector, on_trigger, clock=clock)
        self.diameter: DiameterServer | None = None
        self.diameter_clients: list[DiameterClient] = []
        self.mqtt: MqttIngest | None = None
        self.http: HttpIngest | None = None
        diameter = config.diameter
        if diameter is not None and diameter.enabled:
            settings = diameter_settings(diameter)
            self.diameter = DiameterServer(settings, self.pipeline)
            self.diameter_clients = [
                DiameterClient(settings, target.host, target.port, self.pipeline)
                for target in diameter.connect_to
            ]
        if config.mqtt is not None and config.mqtt.enabled:
            mqtt = config.mqtt
            self.mqtt = MqttIngest(
                self.pipeline,
                mqtt.host,
                mqtt.port,
                topics=mqtt.topics,
                qos=mqtt.qos,
                dead_letter_topic=mqtt.dead_letter_topic,
                client_id=mqtt.client_id,
                username=mqtt.username,
                password=mqtt.password,
            )
        if config.http is not None and config.http.enabled:
            http = config.http
            self.http = HttpIngest(
                self.pipeline, http.host, http.port, token=http.token, max_body_bytes=http.max_body_bytes
            )
        self.diameter_address: tuple[str, int] | None = None
        self._journal_open = False

    async def start(self) -> None:
        path = Path(self.config.journal.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # said like the journal's own "cannot open", not as a traceback
            raise TransportError(
                f"journal {path}: cannot create its directory: {exc.strerror or exc}"
            ) from None
        await self.journal.open()
        self._journal_open = True
        replayed = await self.pipeline.recover()
        if replayed:
            log.info("ingest: replayed %d journal batches left by the last run", replayed)
        try:
            if self.diameter is not None:
                self.diameter_address = await self.diameter.start()
                log.info("ingest: Diameter peer listening on %s:%d", *self.diameter_address)
            for client in self.diameter_clients:
                await client.start()
            if self.mqtt is not None:
                await self.mqtt.start()
            if self.http is not None:
                await self.http.start()
                log.info("ingest: HTTP intake on %s", self.http.url)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.http is not None:
            log.info("ingest: stopping the HTTP intake")
            await self.http.stop()
        if self.mqtt is not None:
            log.info("ingest: stopping the MQTT subscriber")
            await self.mqtt.stop()
        if self.diameter_clients or self.diameter is not None:
            log.info("ingest: disconnecting the Diameter peers (DPR)")
        for client in self.diameter_clients:
            await client.stop()
        if self.diameter is not None:
            await self.diameter.stop()
        if self._journal_open:
            log.info("ingest: draining the pipeline, checkpointing, closing the journal")
            await self.pipeline.checkpoint()
            await self.pipeline.close()
            await self.journal.close()
            self._journal_open = False

    async def __aenter__(self) -> IngestService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

"""The ``ingest`` configuration: Diameter peer, DPI intake over MQTT and HTTP, journal, triggers.

Loaded from YAML (``configs/ingest.yaml`` is the commented example) through
``gateway.configfile``, so every mistake is reported with the file, the line and the reason, before
anything starts. Field names follow the specs where there is one (Origin-Host, Origin-Realm,
Tw of RFC 3539). Numbers are finite (``.inf`` and ``.nan`` are refused at their line) and within what
the protocol can carry or what makes sense for a timer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.configfile import load_yaml_model

__all__ = [
    "DiameterConfig",
    "DiameterPeerRule",
    "DiameterTarget",
    "HttpConfig",
    "IngestConfig",
    "JournalConfig",
    "MqttConfig",
    "SyStatus",
    "TlsConfig",
    "TriggerConfig",
    "load_ingest_config",
    "topic_name_problem",
]

Port = Annotated[int, Field(ge=0, le=65535)]


def topic_name_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be PUBLISHed to (MQTT 3.1.1 4.7.3: at least one character, no NUL (1.5.3);
    4.7.1: no wildcards in a topic name), or None."""
    if not topic:
        return "a topic name must not be empty (MQTT 4.7.3)"
    if "#" in topic or "+" in topic:
        return f"topic name {topic!r}: no wildcards '#' or '+' in a topic published to (MQTT 4.7.1)"
    if "\x00" in topic:
        return f"topic name {topic!r}: no NUL character (MQTT 1.5.3)"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """TLS for the Diameter listener (RFC 6733 section 13: TLS on the connection before the CER)."""

    cert: Path
    key: Path
    ca: Path | None = None
    """When set, peers must present a certificate signed by this CA."""


class DiameterPeerRule(_Strict):
    """One allow-list entry: shell patterns on the peer's Origin-Host and Origin-Realm."""

    origin_host: str = Field(min_length=1)
    origin_realm: str = "*"


class DiameterTarget(_Strict):
    """A peer we connect to ourselves (we send the CER)."""

    host: str
    port: Port = 3868


class SyStatus(_Strict):
    """What one Policy-Counter-Status value means (operator-defined strings, TS 29.219 5.3.3)."""

    kind: Literal["threshold", "exhausted", "payg_started", "renewed"]
    percent: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)


def _default_sy_statuses() -> dict[str, SyStatus]:
    return {
        "threshold-90": SyStatus(kind="threshold", percent=90),
        "exhausted": SyStatus(kind="exhausted", percent=None),
        "payg": SyStatus(kind="payg_started", percent=None),
        "valid": SyStatus(kind="renewed", percent=None),
    }


class DiameterConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 3868
    origin_host: str = Field(min_length=1)
    origin_realm: str = Field(min_length=1)
    product_name: str = "telecom-campaign-gateway"
    vendor_id: int = Field(0, ge=0, le=2**32 - 1)
    """Vendor-Id of our CER/CEA: an Unsigned32 (RFC 6733 5.3.3), so a larger one is refused here, not
    when the first Capabilities-Exchange is encoded."""
    watchdog_interval: float = Field(30.0, ge=6.0, le=3600.0, allow_inf_nan=False)
    """Tw of RFC 3539 section 3.4.1 (at least 6 s; 30 s is the recommended default). Finite and at most
    an hour: ``.inf`` would mean no watchdog, so a dead peer would never be noticed, and an hour or
    more between DWRs is a unit typo."""
    tls: TlsConfig | None = None
    allowed_peers: tuple[DiameterPeerRule, ...] = Field(min_length=1)
    connect_to: tuple[DiameterTarget, ...] = ()
    gy_threshold_percent: float = Field(90.0, gt=0, le=100, allow_inf_nan=False)
    """The share of the quota a Gy THRESHOLD report means (the OCS's Volume-Quota-Threshold)."""
    sy_statuses: dict[str, SyStatus] = Field(default_factory=_default_sy_statuses)


class MqttConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 1883
    client_id: str = Field("tgw-ingest", min_length=1)
    topics: tuple[str, ...] = Field(("usage/#",), min_length=1)
    qos: Literal[0, 1, 2] = 1
    dead_letter_topic: str = "usage/dead-letter"
    username: str | None = None
    password: str | None = None

    @field_validator("topics")
    @classmethod
    def _no_wildcard_in_the_middle(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for topic in topics:
            levels = topic.split("/")
            if "#" in topic and (levels[-1] != "#" or topic.count("#") != 1):
                raise ValueError(f"topic filter {topic!r}: '#' must be the last level (MQTT 4.7.1.2)")
        return topics

    @field_validator("dead_letter_topic")
    @classmethod
    def _a_topic_name(cls, topic: str) -> str:
        # refused here, not at the first bad message: a PUBLISH to it would fail every time, and the
        # subscriber would drop the connection unacknowledged and be sent the same message for ever
        problem = topic_name_problem(topic)
        if problem is not None:
            raise ValueError(problem)
        return topic


class HttpConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8081
    token: str | None = None
    """Bearer token required on ``POST /v1/events`` when set."""
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0)


class JournalConfig(_Strict):
    path: Path = Path("var/ingest.sqlite")
    synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"


class TriggerConfig(_Strict):
    thresholds: tuple[int, ...] = (90,)

    @field_validator("thresholds")
    @classmethod
    def _percentages(cls, thresholds: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 < t < 100 for t in thresholds):
            raise ValueError("thresholds are percentages between 0 and 100 (exclusive)")
        return tuple(sorted(set(thresholds)))


class IngestConfig(_Strict):
    diameter: DiameterConfig | None = None
    mqtt: MqttConfig | None = None
    http: HttpConfig | None = None
    journal: JournalConfig = JournalConfig()
    triggers: TriggerConfig = TriggerConfig()

    @model_validator(mode="after")
    def _some_intake(self) -> IngestConfig:
        if not any(
            section is not None and section.enabled for section in (self.diameter, self.mqtt, self.http)
        ):
            raise ValueError("no intake enabled: configure at least one of diameter, mqtt, http")
        return self


class _File(_Strict):
    ingest: IngestConfig


def load_ingest_config(path: str | Path) -> IngestConfig:
    """The ``ingest:`` section of a YAML file; ``ConfigError`` names file, line and reason."""
    return load_yaml_model(path, _File).ingest

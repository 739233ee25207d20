"""The gateway's configuration file (``tgw run --config configs/gateway.yaml``, issue #9).

One YAML file names the network elements the gateway talks to (the SMSC, the billing API, the
Diameter peers, the MQTT broker, the DPI HTTP intake) and its own files (campaign directory, USSD
menus, SIM keys, state directory). ``load_gateway_config`` validates everything before anything
starts: the schema (``gateway.configfile``: every mistake as ``file:line: reason``), then the files it
names (the campaign directory with its cross-file and channel checks, the menus, the key file), so a
mistake in any of them is reported with its own file and line. Relative paths are relative to the
config file's directory. Secrets may come from the environment (``password_env``, ``token_env``)
instead of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from campaign_core.config import CampaignSet
from gateway.campaigns.loader import load_campaign_dir
from gateway.configfile import load_yaml_model, yaml_line
from gateway.ingest.config import DiameterConfig, HttpConfig, MqttConfig, TriggerConfig
from gateway.smpp.client import ClientConfig
from gateway.stk import KeyStore
from gateway.ussd import load_menus
from protocols.errors import ConfigError
from protocols.ussd import get_profile

__all__ = ["GatewayConfig", "LoadedConfig", "load_gateway_config"]

Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secret(value: str | None, env: str | None, what: str) -> str | None:
    if value is not None and env is not None:
        raise ValueError(f"give {what} or {what}_env, not both")
    if env is not None:
        found = os.environ.get(env)
        if found is None:
            raise ValueError(f"{what}_env names {env}, which is not set in the environment")
        return found
    return value


class SmscSection(_Strict):
    """The SMPP 3.4 bind to the SMSC (the ESME's settings; ``gateway.smpp.client.ClientConfig``)."""

    host: str
    port: Port = 2775
    system_id: Annotated[str, Field(min_length=1, max_length=15)]
    password: Annotated[str, Field(max_length=8)] | None = None
    password_env: str | None = None
    system_type: Annotated[str, Field(max_length=12)] = ""
    bind_type: Literal["transceiver", "transmitter", "receiver"] = "transceiver"
    window: Annotated[int, Field(ge=1, le=10_000)] = 100
    tps: Annotated[float, Field(gt=0)] | None = None
    enquire_link_interval: Seconds = 30.0
    response_timeout: Seconds = 30.0
    reconnect_initial: Seconds = 0.5
    reconnect_max: Seconds = 30.0
    short_code: Annotated[str, Field(pattern=r"^\+?[0-9A-Za-z]{1,16}$")]
    """Our address: the originator of SMS and SIM toolkit pushes, where subscribers answer."""

    @model_validator(mode="after")
    def _password(self) -> SmscSection:
        _secret(self.password, self.password_env, "password")
        return self

    def client_config(self) -> ClientConfig:
        password = _secret(self.password, self.password_env, "password") or ""
        return ClientConfig(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=password,
            system_type=self.system_type,
            bind_type=self.bind_type,
            window=self.window,
            tps=self.tps,
            enquire_link_interval=self.enquire_link_interval,
            response_timeout=self.response_timeout,
            reconnect_initial=self.reconnect_initial,
            reconnect_max=self.reconnect_max,
        )


class BillingSection(_Strict):
    """The billing / OCS API (credit scoring, activations with the offer id as idempotency key)."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    timeout: Seconds = 5.0
    retries: Annotated[int, Field(ge=0, le=20)] = 3
    backoff_initial: Seconds = 0.2
    backoff_max: Seconds = 5.0


class CampaignSection(_Strict):
    dir: Path
    snapshot_every: Annotated[int, Field(ge=1)] = 100_000


class UssdSection(_Strict):
    menus: Path
    profile: str = "standard"


class IngestSection(_Strict):
    """The intakes (``configs/ingest.yaml`` documents each); the journal lives in ``state_dir``."""

    diameter: DiameterConfig | None = None
    mqtt: MqttConfig | None = None
    http: HttpConfig | None = None
    journal_synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    triggers: TriggerConfig = TriggerConfig()

    @model_validator(mode="after")
    def _some_intake(self) -> IngestSection:
        if not any(s is not None and s.enabled for s in (self.diameter, self.mqtt, self.http)):
            raise ValueError("no intake enabled: configure at least one of diameter, mqtt, http")
        return self


class AdminSection(_Strict):
    """The admin HTTP API (bearer token required on every route)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8088
    token: Annotated[str, Field(min_length=16)] | None = None
    token_env: str | None = None

    @model_validator(mode="after")
    def _token(self) -> AdminSection:
        token = _secret(self.token, self.token_env, "token")
        if self.enabled and token is None:
            raise ValueError("the admin API needs a token (token or token_env)")
        if token is not None and len(token) < 16:
            raise ValueError("the admin token must have at least 16 characters")
        return self

    def bearer(self) -> str:
        return _secret(self.token, self.token_env, "token") or ""


class LoggingSection(_Strict):
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class GatewayConfig(_Strict):
    version: Literal[1] = 1
    state_dir: Path
    smsc: SmscSection
    billing: BillingSection
    campaigns: CampaignSection
    ussd: UssdSection
    sim_keys: Path | None = None
    ingest: IngestSection
    admin: AdminSection = AdminSection(enabled=False)
    logging: LoggingSection = LoggingSection()
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    """Shown in SIM toolkit offers; default: the campaign catalogue's."""


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config and what it names, loaded (paths resolved against the config's directory)."""

    path: Path
    config: GatewayConfig
    state_dir: Path
    campaigns_dir: Path
    ussd_menus: Path
    campaigns: CampaignSet
    sim_keys: KeyStore | None


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path)


def load_gateway_config(path: str | Path) -> LoadedConfig:
    """Read and check the config at ``path`` and every file it names; ``ConfigError`` (file, line,
    reason) at the first mistake, before anything starts."""
    file = Path(path)
    config = load_yaml_model(file, GatewayConfig)
    base = file.resolve().parent
    menus = _resolve(base, config.ussd.menus)
    campaigns_dir = _resolve(base, config.campaigns.dir)
    try:
        profile = get_profile(config.ussd.profile)
    except ConfigError as exc:
        raise ConfigError(f"ussd.profile: {exc}", str(file), yaml_line(file, ("ussd", "profile"))) from None
    for what, where in (("campaigns.dir", campaigns_dir), ("ussd.menus", menus)):
        if not where.exists():
            key = tuple(what.split("."))
            raise ConfigError(f"{what}: {where} does not exist", str(file), yaml_line(file, key))
    keys = None
    key_file = None if config.sim_keys is None else _resolve(base, config.sim_keys)
    if key_file is not None:
        keys = KeyStore.load(key_file)
    handlers = ("buy_package", "balance", "gift_data")
    load_menus(menus, profile=profile, handlers=handlers, providers=("my_offers",))
    campaigns = load_campaign_dir(
        campaigns_dir, ussd_menus=menus, sim_keys=key_file, reply_to=config.smsc.short_code
    )
    return LoadedConfig(
        path=file,
        config=config,
        state_dir=_resolve(base, config.state_dir),
        campaigns_dir=campaigns_dir,
        ussd_menus=menus,
        campaigns=campaigns,
        sim_keys=keys,
    )

"""The gateway's configuration file (``tgw run --config configs/gateway.yaml``, issue #9).

One YAML file names the network elements the gateway talks to (the SMSC, the billing API, the
Diameter peers, the MQTT broker, the DPI HTTP intake) and its own files (campaign directory, USSD
menus, SIM keys, state directory). ``load_gateway_config`` validates everything before anything
starts: the schema (``gateway.configfile``: every mistake as ``file:line: reason``), then the files it
names (the campaign directory with its cross-file and channel checks, the menus, the key file), so a
mistake in any of them is reported with its own file and line. Relative paths are relative to the
config file's directory. Secrets may come from the environment (``password_env``, ``token_env``)
instead of the file; a variable that is not set is reported at the line of the key naming it.

What would otherwise fail only at start-up is checked too, at the line of the key: the state
directory must be (or be creatable as) a directory, the files named must be files, the Diameter
listener's TLS certificate and key must load, and no two listeners (admin API, Diameter, DPI HTTP
intake) may share an address. Seconds and rates must be finite numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from campaign_core.config import CampaignSet
from gateway.campaigns.loader import load_campaign_dir
from gateway.configfile import load_yaml_model, yaml_line
from gateway.ingest.config import DiameterConfig, HttpConfig, MqttConfig, TlsConfig, TriggerConfig
from gateway.ingest.service import server_tls_context
from gateway.smpp.client import ClientConfig
from gateway.stk import KeyStore
from gateway.stk.service import check_reply_to
from gateway.ussd import load_menus
from protocols.errors import ConfigError
from protocols.ussd import get_profile

__all__ = ["GatewayConfig", "LoadedConfig", "load_gateway_config"]

Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


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


def _env_secret(env: str | None, info: ValidationInfo, what: str) -> str | None:
    """Checks ``{what}_env`` as its own field, so that a mistake is reported at its line (the plain
    ``what`` is declared first, so it is in ``info.data`` when it was valid)."""
    _secret(info.data.get(what), env, what)
    return env


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
    tps: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    enquire_link_interval: Seconds = 30.0
    response_timeout: Seconds = 30.0
    reconnect_initial: Seconds = 0.5
    reconnect_max: Seconds = 30.0
    short_code: Annotated[str, Field(pattern=r"^\+?[0-9A-Za-z]{1,16}$")]
    """Our address: the originator of SMS and SIM toolkit pushes, where subscribers answer."""

    @field_validator("password_env")
    @classmethod
    def _password_env(cls, env: str | None, info: ValidationInfo) -> str | None:
        return _env_secret(env, info, "password")

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

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, env: str | None, info: ValidationInfo) -> str | None:
        checked = _env_secret(env, info, "token")
        if checked is not None and len(os.environ[checked]) < 16:
            raise ValueError(f"the admin token in {checked} must have at least 16 characters")
        return checked

    @model_validator(mode="after")
    def _token(self) -> AdminSection:
        if self.enabled and self.token is None and self.token_env is None:
            raise ValueError("the admin API needs a token (token or token_env)")
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


def _where(file: Path, location: Sequence[str]) -> tuple[str, int | None]:
    return str(file), yaml_line(file, location)


def _check_kind(file: Path, key: str, path: Path, kind: str) -> None:
    """``path`` (the value of ``key``, dotted) exists and is a ``kind`` ("directory" or "file")."""
    location = tuple(key.split("."))
    if not path.exists():
        raise ConfigError(f"{key}: {path} does not exist", *_where(file, location))
    if (kind == "directory") != path.is_dir():
        raise ConfigError(f"{key}: {path} is not a {kind}", *_where(file, location))


def _check_state_dir(file: Path, path: Path) -> None:
    """The state directory, or the nearest existing directory above it (it is created at start), must
    be a directory the gateway can write in: SQLite stores go there."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = (
            "is not a directory" if existing == path else f"cannot be created: {existing} is not a directory"
        )
        raise ConfigError(f"state_dir: {path} {what}", *_where(file, ("state_dir",)))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"state_dir: {existing} is not writable", *_where(file, ("state_dir",)))


def _check_listeners(file: Path, config: GatewayConfig) -> None:
    """No two listeners on one address (port 0 takes a free port, so it never clashes)."""
    listeners: list[tuple[str, str, int]] = []
    if config.admin.enabled:
        listeners.append(("admin", config.admin.host, config.admin.port))
    for name, section in (("diameter", config.ingest.diameter), ("http", config.ingest.http)):
        if section is not None and section.enabled:
            listeners.append((f"ingest.{name}", section.host, section.port))
    line = {key: yaml_line(file, (*key.split("."), "port")) or 0 for key, _, _ in listeners}
    seen: dict[tuple[str, int], str] = {}
    for key, host, port in sorted(listeners, key=lambda item: line[item[0]]):
        if port == 0:
            continue
        first = seen.setdefault((host, port), key)
        if first != key:
            raise ConfigError(
                f"{key}.port: {host}:{port} is also the listen address of {first}",
                str(file),
                line[key] or None,
            )


def _with_tls(file: Path, base: Path, config: GatewayConfig) -> GatewayConfig:
    """The Diameter listener's TLS files, resolved against the config's directory like every other
    path, loaded once now so that a missing or wrong one is reported at its line."""
    diameter = config.ingest.diameter
    if diameter is None or diameter.tls is None:
        return config
    tls = diameter.tls
    resolved = TlsConfig(
        cert=_resolve(base, tls.cert),
        key=_resolve(base, tls.key),
        ca=None if tls.ca is None else _resolve(base, tls.ca),
    )
    if diameter.enabled:
        try:
            server_tls_context(resolved)
        except ConfigError as exc:
            where = _where(file, ("ingest", "diameter", "tls"))
            raise ConfigError(
                f"ingest.diameter.tls: {exc.reason.removeprefix('diameter.tls: ')} "
                f"(cert {resolved.cert}, key {resolved.key}{'' if resolved.ca is None else f', ca {resolved.ca}'})",
                *where,
            ) from None
    ingest = config.ingest.model_copy(update={"diameter": diameter.model_copy(update={"tls": resolved})})
    return config.model_copy(update={"ingest": ingest})


def load_gateway_config(path: str | Path) -> LoadedConfig:
    """Read and check the config at ``path`` and every file it names; ``ConfigError`` (file, line,
    reason) at the first mistake, before anything starts."""
    file = Path(path)
    config = load_yaml_model(file, GatewayConfig)
    base = file.resolve().parent
    menus = _resolve(base, config.ussd.menus)
    campaigns_dir = _resolve(base, config.campaigns.dir)
    state_dir = _resolve(base, config.state_dir)
    try:
        profile = get_profile(config.ussd.profile)
    except ConfigError as exc:
        raise ConfigError(f"ussd.profile: {exc.reason}", *_where(file, ("ussd", "profile"))) from None
    _check_state_dir(file, state_dir)
    _check_kind(file, "campaigns.dir", campaigns_dir, "directory")
    _check_kind(file, "ussd.menus", menus, "file")
    key_file = None if config.sim_keys is None else _resolve(base, config.sim_keys)
    if key_file is not None:
        _check_kind(file, "sim_keys", key_file, "file")
        try:  # the cards answer our DSTK offers to the short code: it must be an address they can dial
            check_reply_to(config.smsc.short_code)
        except ConfigError as exc:
            raise ConfigError(
                f"smsc.short_code: {exc.reason}", *_where(file, ("smsc", "short_code"))
            ) from None
    _check_listeners(file, config)
    config = _with_tls(file, base, config)
    keys = None if key_file is None else KeyStore.load(key_file)
    handlers = ("buy_package", "balance", "gift_data")
    load_menus(menus, profile=profile, handlers=handlers, providers=("my_offers",))
    campaigns = load_campaign_dir(
        campaigns_dir, ussd_menus=menus, sim_keys=key_file, reply_to=config.smsc.short_code
    )
    return LoadedConfig(
        path=file,
        config=config,
        state_dir=state_dir,
        campaigns_dir=campaigns_dir,
        ussd_menus=menus,
        campaigns=campaigns,
        sim_keys=keys,
    )

"""A campaign set built in code for the engine tests (imported as ``from engine_fixtures import ...``;
the shipped YAML files are tested by the loader's tests).

Catalogue of the reference case (issue #7): 100/200/500/1000 MB at 50/90/200/350 KES, bought with
``*123*<mb>#``. Policy: 2 promotional SMS and 1 DSTK push a day, quiet hours 21:00-08:00 in
Africa/Nairobi (UTC+3, no DST), deferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from campaign_core.config import (
    CampaignConfig,
    CampaignSet,
    CatalogueConfig,
    ExperimentConfig,
    PolicyConfig,
)
from campaign_core.engine import Engine
from campaign_core.model import Command, Record, RecordKind, TriggerKind, TriggerRaised

CATALOGUE: dict[str, Any] = {
    "kind": "catalogue",
    "currency": "KES",
    "packages": [
        {"id": "data-100mb", "volume_mb": 100, "price": "50", "ussd_code": "*123*100#"},
        {"id": "data-200mb", "volume_mb": 200, "price": "90", "ussd_code": "*123*200#"},
        {"id": "data-500mb", "volume_mb": 500, "price": "200", "ussd_code": "*123*500#"},
        {"id": "data-1gb", "volume_mb": 1000, "price": "350", "ussd_code": "*123*1000#"},
    ],
}

POLICY: dict[str, Any] = {
    "kind": "policy",
    "version": 3,
    "default_timezone": "Africa/Nairobi",
    "caps": [
        {"channel": "sms", "purpose": "promotional", "max": 2, "per": "day"},
        {"channel": "stk", "purpose": "promotional", "max": 1, "per": "day"},
    ],
    "quiet_hours": {"start": "21:00", "end": "08:00", "action": "defer"},
    "do_not_disturb": ["254700000999"],
}

OFFER_PACKAGES = ["data-100mb", "data-200mb", "data-500mb", "data-1gb"]

NEW_UPSELL: dict[str, Any] = {
    "kind": "campaign",
    "id": "upsell-exhaustion",
    "priority": 10,
    "trigger": {"kind": "exhausted"},
    "scoring": {"timeout": "5s"},
    "offer": {"packages": OFFER_PACKAGES, "expires_after": "24h"},
    "journey": [
        {"channel": "stk", "options": "largest", "style": "confirm", "text": "Out of data? Get {volume_mb} MB now, pay later: {price} {currency}", "wait": "10m", "hard_cap": "30m"},
        {"channel": "sms", "options": "all", "text": "Out of data? Dial:\n{options}", "max_parts": 2},
    ],
}  # fmt: skip

OLD_UPSELL: dict[str, Any] = {
    "kind": "campaign",
    "id": "upsell-threshold-old",
    "priority": 5,
    "trigger": {"kind": "threshold", "level": 90},
    "scoring": {"timeout": "5s"},
    "offer": {"packages": OFFER_PACKAGES, "payment": "credit", "expires_after": "24h"},
    "journey": [
        {"channel": "sms", "options": "none", "text": "You have used 90% of your data."},
        {"channel": "sms", "options": "largest", "after": "24h", "text": "Get {volume_mb} MB on credit: dial {ussd_code}"},
    ],
}  # fmt: skip

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC).timestamp()  # 12:00 in Nairobi: outside quiet hours
MSISDN = "254700000001"


def campaign_set(
    campaigns: Sequence[dict[str, Any]] = (NEW_UPSELL,),
    experiments: Sequence[dict[str, Any]] = (),
    policy: dict[str, Any] | None = None,
) -> CampaignSet:
    return CampaignSet(
        catalogue=CatalogueConfig.model_validate(CATALOGUE),
        policy=PolicyConfig.model_validate(policy or POLICY),
        campaigns=tuple(CampaignConfig.model_validate(c) for c in campaigns),
        experiments=tuple(ExperimentConfig.model_validate(e) for e in experiments),
    )


def engine(**kwargs: Any) -> Engine:
    return Engine(campaign_set(**kwargs))


def exhausted(msisdn: str = MSISDN, at: float = T0, trigger_id: str | None = None) -> TriggerRaised:
    return TriggerRaised(
        trigger_id or f"{msisdn}/data-1gb/p1/100",
        TriggerKind.EXHAUSTED,
        msisdn,
        at,
        package_id="data-1gb",
        level=100,
    )


def records(commands: Sequence[Command], kind: RecordKind | None = None) -> list[Record]:
    return [c for c in commands if isinstance(c, Record) and (kind is None or c.kind is kind)]


def actions(commands: Sequence[Command]) -> list[Command]:
    return [c for c in commands if not isinstance(c, Record)]


def dec(text: str) -> Decimal:
    return Decimal(text)

"""Experiment assignment and arbitration (campaign_core.experiments)."""

from __future__ import annotations

import hashlib
from collections import Counter

from engine_fixtures import NEW_UPSELL, campaign_set

from campaign_core.config import CampaignConfig, ExperimentConfig
from campaign_core.experiments import BUCKETS, Candidate, arbitrate, assign, bucket, offer_value

EXPERIMENT = ExperimentConfig.model_validate(
    {
        "kind": "experiment",
        "id": "ab",
        "salt": "ab-2026",
        "arms": [
            {"name": "a", "share": 25, "campaign": "upsell-exhaustion"},
            {"name": "b", "share": 50, "campaign": "upsell-exhaustion", "delay": "48h"},
            {"name": "control", "share": 25, "control": True},
        ],
    }
)


def test_bucket_is_blake2b_of_salt_and_msisdn() -> None:
    digest = hashlib.blake2b(b"ab-2026:254700000001", digest_size=8).digest()
    assert bucket("ab-2026", "254700000001") == int.from_bytes(digest, "big") % BUCKETS


def test_shares_are_honoured_and_salts_split_independently() -> None:
    msisdns = [f"2547{i:08d}" for i in range(20_000)]
    arms = Counter(assign(EXPERIMENT, m).name for m in msisdns)
    assert abs(arms["a"] / 20_000 - 0.25) < 0.02
    assert abs(arms["b"] / 20_000 - 0.50) < 0.02
    assert abs(arms["control"] / 20_000 - 0.25) < 0.02
    other = EXPERIMENT.model_copy(update={"salt": "another"})
    same = sum(assign(EXPERIMENT, m).name == assign(other, m).name for m in msisdns)
    # independent splits agree about 0.25^2 + 0.5^2 + 0.25^2 = 37.5 % of the time
    assert abs(same / 20_000 - 0.375) < 0.03


def test_arbitration_priority_then_value_then_id() -> None:
    catalogue = campaign_set().catalogue

    def campaign(campaign_id: str, priority: int, packages: list[str]) -> CampaignConfig:
        data = {**NEW_UPSELL, "id": campaign_id, "priority": priority, "offer": {"packages": packages}}
        return CampaignConfig.model_validate(data)

    cheap = campaign("cheap", 5, ["data-100mb"])
    dear = campaign("dear", 5, ["data-1gb"])
    urgent = campaign("urgent", 9, ["data-100mb"])
    twin = campaign("a-twin", 5, ["data-1gb"])
    candidates = [Candidate(c, offer_value(c, catalogue)) for c in (cheap, dear, twin)]
    winner = arbitrate(candidates)
    assert winner is not None and winner.campaign.id == "a-twin"  # same priority and value: smallest id
    winner = arbitrate([*candidates, Candidate(urgent, offer_value(urgent, catalogue))])
    assert winner is not None and winner.campaign.id == "urgent"
    assert offer_value(dear, catalogue) > offer_value(cheap, catalogue)
    assert arbitrate([]) is None

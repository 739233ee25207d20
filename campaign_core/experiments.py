"""Experiments: deterministic arm assignment and arbitration between campaigns.

Assignment: the arm of a subscriber is a function of the experiment's salt and the MSISDN only, so it
is the same on every node, after every restart and in every replay, and nothing needs storing to keep
it. The first 8 octets of SHA-256(salt ":" msisdn), big-endian, taken modulo 10,000, give a bucket in
0..9999; the arms, in file order, own consecutive ranges of ``share * 100`` buckets. A hash rather than
``random`` (seeded or not) is what makes it reproducible per subscriber; SHA-256 rather than Python's
``hash`` because that one is salted per process.

Arbitration, when one trigger qualifies a subscriber for several campaigns: the highest ``priority``
wins, then the highest value (the dearest package the offer could sell), then the campaign id, so the
outcome never depends on file order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from campaign_core.config import CampaignConfig, CatalogueConfig, ExperimentArm, ExperimentConfig

__all__ = ["Candidate", "arbitrate", "assign", "bucket", "offer_value"]

BUCKETS = 10_000


def bucket(salt: str, msisdn: str) -> int:
    """The subscriber's bucket (0..9999) in an experiment salted ``salt``."""
    digest = hashlib.blake2b(f"{salt}:{msisdn}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def assign(experiment: ExperimentConfig, msisdn: str) -> ExperimentArm:
    """The arm ``msisdn`` belongs to (shares add up to 100, checked when the file is loaded)."""
    position = bucket(experiment.salt, msisdn)
    upper = 0
    for arm in experiment.arms:
        upper += arm.share * (BUCKETS // 100)
        if position < upper:
            return arm
    return experiment.arms[-1]  # unreachable with shares adding up to 100


def offer_value(campaign: CampaignConfig, catalogue: CatalogueConfig) -> int:
    """The dearest package the campaign's offer could sell, in 1/10000 of the currency (0 without an offer)."""
    if campaign.offer is None:
        return 0
    prices = {package.id: package.price for package in catalogue.packages}
    return max((int(prices[p] * 10_000) for p in campaign.offer.packages if p in prices), default=0)


@dataclass(frozen=True, slots=True)
class Candidate:
    campaign: CampaignConfig
    value: int


def arbitrate(candidates: Sequence[Candidate]) -> Candidate | None:
    """The winner: priority, then value, then campaign id (smallest)."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-c.campaign.priority, -c.value, c.campaign.id))

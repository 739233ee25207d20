"""Experiments: deterministic arm assignment and arbitration between campaigns.

Assignment: the arm of a subscriber is a function of the experiment's salt and the MSISDN only, so it
is the same on every node, after every restart and in every replay, and nothing needs storing to keep
it. BLAKE2b-64 of salt ":" msisdn (RFC 7693), big-endian, taken modulo 10,000, gives a bucket in
0..9999; the arms, in file order, own consecutive ranges of ``share * 100`` buckets. A hash rather than
``random`` (seeded or not) is what makes it reproducible per subscriber; BLAKE2b rather than Python's
``hash`` because that one is salted per process.

Arbitration, when one trigger qualifies a subscriber for several campaigns: the highest ``priority``
wins, then the highest value (the dearest package the offer could sell), then the campaign id, so the
outcome never depends on file order.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from campaign_core.config import CampaignConfig, CatalogueConfig, ExperimentArm, ExperimentConfig

__all__ = ["Assigner", "Candidate", "arbitrate", "assign", "bucket", "offer_value"]

BUCKETS = 10_000
_from_bytes = int.from_bytes


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


class Assigner:
    """``assign`` for one experiment with what does not change decided once (the engine keeps one per
    experiment): the salt as the hash input's prefix and the arms' upper bucket bounds. Same arm as
    ``assign`` for every MSISDN (tests/campaign/test_engine_fast_paths.py)."""

    __slots__ = ("_arms", "_salted", "_uppers", "arm_fields", "experiment", "experiment_id", "salt")

    def __init__(self, experiment: ExperimentConfig) -> None:
        self.experiment = experiment
        self.experiment_id = experiment.id
        self.salt = f"{experiment.salt}:".encode()  # bucket()'s hash input before the MSISDN
        # the hash state after ``salt ":"``: a copy of it, updated with the MSISDN, gives bucket()'s digest
        self._salted = hashlib.blake2b(self.salt, digest_size=8)
        self._arms = experiment.arms
        # (campaign, control, name, delay) of each arm, read without the model's attribute lookups
        # (campaign_core/_journey.c)
        self.arm_fields = tuple((arm.campaign, arm.control, arm.name, arm.delay) for arm in experiment.arms)
        uppers: list[int] = []
        upper = 0
        for arm in experiment.arms:
            upper += arm.share * (BUCKETS // 100)
            uppers.append(upper)
        self._uppers = tuple(uppers)

    def __call__(self, msisdn: str) -> ExperimentArm:
        hashed = self._salted.copy()
        hashed.update(msisdn.encode())
        # the first arm whose upper bound is above the bucket (arms with share 0 own no bucket)
        index = bisect_right(self._uppers, _from_bytes(hashed.digest(), "big") % BUCKETS)
        arms = self._arms
        return arms[index] if index < len(arms) else arms[-1]


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

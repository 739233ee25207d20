"""The gateway's billing client: credit scoring and idempotent activations over HTTP (issue #8).

``BillingClient`` turns the campaign engine's ``QueryCredit`` and ``Activate`` commands into calls of
billing's HTTP API (the simulator's is ``simulators.billing``) and answers with the engine's events.
"""

from gateway.billing.client import BillingClient, BillingClientStats, BillingUnavailable

__all__ = ["BillingClient", "BillingClientStats", "BillingUnavailable"]

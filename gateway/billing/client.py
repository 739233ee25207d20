"""The gateway's billing client: ``QueryCredit`` -> credit scoring, ``Activate`` -> an idempotent activation.

HTTP/1.1 with JSON bodies (RFC 9110, RFC 8259) over one aiohttp ``ClientSession``, against billing's API
(``simulators.billing`` serves it): ``GET /v1/subscribers/{msisdn}/credit``, ``POST /v1/activations``
with the header ``Idempotency-Key: <offer id>``, and ``GET /v1/subscribers/{msisdn}`` for the profile
eligibility reads (``profile``). Money travels as decimal strings and becomes ``Decimal``.

Retries
    A connection error, a timeout, an HTTP 5xx or 429 is retried, up to ``retries`` more attempts, after
    an exponential back-off with jitter: attempt n (from 0) waits a uniform share of 50-100 % of
    ``min(backoff_max, backoff_initial * 2**n)``, or longer when the answer carried ``Retry-After``
    (delay-seconds; capped at ``max_retry_after``; an HTTP-date is ignored, the client reads no wall
    clock). Any other 4xx is final. Every retry of an activation carries the SAME ``Idempotency-Key``, so
    billing applies it once and answers a retry with the stored outcome, also when an earlier answer
    was lost with its connection. Waits use ``asyncio.sleep`` and budgets the loop's clock, so the
    client follows a loop that runs on simulated time.
Budgets
    ``timeout`` bounds each attempt. ``score`` also keeps to ``QueryCredit.timeout`` as the budget of the
    whole call, retries and back-off included; ``activate`` has no overall budget beyond its attempts.
Results
    ``score`` answers ``CreditScored`` or ``CreditFailed``, ``activate`` ``Activated`` or
    ``ActivationFailed``; they never raise for billing's or the network's failures. When the retries
    are exhausted the reason says so and, for an activation, that its outcome is unknown (retrying the
    same offer id is safe), which ``ActivationFailed.outcome_known`` (False) tells the caller; so does a
    200/201 whose body cannot be read (billing has applied it; the same key gets its stored answer
    again). Internally an exhausted call is ``BillingUnavailable`` (a ``TransportError``); a malformed
    answer is a ``RemoteProtocolError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    ActivePackage,
    CreditFailed,
    CreditScored,
    Payment,
    Profile,
    QueryCredit,
)
from protocols.errors import ConfigError, LocalProtocolError, RemoteProtocolError, TransportError

__all__ = ["BillingClient", "BillingClientStats", "BillingUnavailable"]

log = logging.getLogger(__name__)

_MAX_BODY = 1 << 20  # the largest answer read


class BillingUnavailable(TransportError):
    """Billing could not be reached or kept failing (5xx, 429) through every attempt or the budget."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class _Refused(Exception):
    """Billing answered with a final refusal (a 4xx other than 429)."""


@dataclass(slots=True)
class BillingClientStats:
    """Counters: HTTP attempts sent, retries made, back-off slept (loop seconds), calls that failed."""

    requests: int = 0
    retries: int = 0
    slept: float = 0.0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Mapping[str, Any] | None  # None: not a JSON object
    retry_after: float | None

    def error(self) -> str:
        reason = None if self.body is None else self.body.get("error")
        return f"HTTP {self.status}" + (f": {reason}" if isinstance(reason, str) and reason else "")


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(value: str | None) -> float | None:
    """Delay-seconds of a ``Retry-After`` header (RFC 9110 section 10.2.3); None for a date or junk."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _decimal(body: Mapping[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if not isinstance(value, str):
        raise RemoteProtocolError(f"billing's answer has no decimal string {name!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise RemoteProtocolError(f"billing's {name!r} is not a decimal: {value!r}") from None
    if not amount.is_finite():
        raise RemoteProtocolError(f"billing's {name!r} is not finite: {value!r}")
    return amount


def _profile(msisdn: str, body: Mapping[str, Any]) -> Profile:
    tenure = body.get("tenure_days")
    zone = body.get("zone")
    packages = body.get("packages")
    if isinstance(tenure, bool) or not isinstance(tenure, int) or tenure < 0:
        raise RemoteProtocolError("billing's subscriber answer has no valid tenure_days")
    if zone is not None and not isinstance(zone, str):
        raise RemoteProtocolError("billing's subscriber answer has a zone that is not a string")
    if not isinstance(packages, list):
        raise RemoteProtocolError("billing's subscriber answer has no package list")
    held: list[ActivePackage] = []
    for item in packages:
        if not isinstance(item, dict):
            raise RemoteProtocolError("billing's subscriber answer has a package that is not an object")
        if not item.get("active", True):
            continue
        fields = (item.get("package_id"), item.get("start_date"), item.get("end_date"))
        if not all(isinstance(f, str) for f in fields):
            raise RemoteProtocolError("billing's subscriber answer has a package without id or dates")
        package_id, start, end = (str(f) for f in fields)
        held.append(
            ActivePackage(package_id, start, end, item.get("recurring") is True, item.get("trial") is True)
        )
    return Profile(msisdn, tenure_days=tenure, timezone=zone, packages=tuple(held))


class BillingClient:
    """Billing at ``base_url`` (e.g. ``http://127.0.0.1:8700``); see the module docstring.

    Use it as an async context manager or call ``close()``; the session opens at the first call."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        rng_seed: int | None = None,
        max_retry_after: float = 30.0,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self._keepalive_timeout = keepalive_timeout  # idle connections are kept this long
        if timeout <= 0:
            raise ConfigError(f"billing client: timeout must be > 0 s, got {timeout}")
        if retries < 0:
            raise ConfigError(f"billing client: retries must be >= 0, got {retries}")
        if not 0 < backoff_initial <= backoff_max:
            raise ConfigError("billing client: 0 < backoff_initial <= backoff_max is needed")
        if max_retry_after < 0:
            raise ConfigError("billing client: max_retry_after must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.stats = BillingClientStats()
        self._rng = random.Random(rng_seed)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise LocalProtocolError("the billing client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(keepalive_timeout=self._keepalive_timeout)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    # --- the engine's commands ---

    async def score(self, cmd: QueryCredit) -> CreditScored | CreditFailed:
        """Billing's balance and credit limit for ``cmd.msisdn``, within ``cmd.timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + cmd.timeout
        path = f"/v1/subscribers/{quote(cmd.msisdn, safe='')}/credit"
        try:
            answer = await self._call("GET", path, deadline=deadline)
            if answer.status != 200:
                raise _Refused(f"billing refused the credit query ({answer.error()})")
            if answer.body is None:
                raise RemoteProtocolError("billing's credit answer is not a JSON object")
            balance = _decimal(answer.body, "balance")
            limit = _decimal(answer.body, "credit_limit")
        except (BillingUnavailable, RemoteProtocolError, _Refused) as exc:
            self.stats.failures += 1
            return CreditFailed(cmd.request_id, cmd.msisdn, str(exc))
        return CreditScored(cmd.request_id, cmd.msisdn, balance, limit)

    async def activate(self, cmd: Activate) -> Activated | ActivationFailed:
        """Activate ``cmd.package_id``, keyed by ``cmd.offer_id``: never twice, however often retried."""
        body = {
            "msisdn": cmd.msisdn,
            "package_id": cmd.package_id,
            "payment": cmd.payment.value,
            "price": f"{cmd.price:f}",
        }
        headers = {"Idempotency-Key": cmd.offer_id}
        try:
            answer = await self._call("POST", "/v1/activations", json_body=body, headers=headers)
            if answer.status not in (200, 201):
                raise _Refused(f"billing refused the activation ({answer.error()})")
            if answer.body is None:
                raise RemoteProtocolError("billing's activation answer is not a JSON object")
            package_id = answer.body.get("package_id")
            if not isinstance(package_id, str):
                raise RemoteProtocolError("billing's activation answer has no package_id")
            try:
                payment = Payment(str(answer.body.get("payment")))
            except ValueError:
                raise RemoteProtocolError("billing's activation answer has no valid payment") from None
            price = _decimal(answer.body, "price")
        except BillingUnavailable as exc:
            self.stats.failures += 1
            return ActivationFailed(
                cmd.offer_id,
                f"{exc} (outcome unknown: retrying the same offer id is safe)",
                outcome_known=False,
            )
        except RemoteProtocolError as exc:
            # billing said 200/201, so it has applied the activation; only its answer is unreadable.
            # "failed" would tell the subscriber they were not charged: the outcome is unknown, and
            # asking again with the same key returns billing's stored answer.
            self.stats.failures += 1
            return ActivationFailed(
                cmd.offer_id,
                f"billing answered {answer.status} but {exc}"
                " (outcome unknown: retrying the same offer id is safe)",
                outcome_known=False,
            )
        except _Refused as exc:
            self.stats.failures += 1
            return ActivationFailed(cmd.offer_id, str(exc))
        return Activated(cmd.offer_id, package_id, payment, price)

    async def profile(self, msisdn: str) -> Profile | None:
        """Billing's view of ``msisdn`` (tenure, zone, the packages active today) for eligibility.

        None when billing does not know the subscriber, and also (logged) when billing cannot be
        reached or answers nonsense: a trigger goes on without a fresh profile rather than not at all.
        ``segment`` and ``stk_capable`` are not billing's to know and keep their defaults."""
        try:
            answer = await self._call("GET", f"/v1/subscribers/{quote(msisdn, safe='')}")
            if answer.status == 404:
                return None
            if answer.status != 200:
                raise _Refused(f"billing refused the subscriber query ({answer.error()})")
            if answer.body is None:
                raise RemoteProtocolError("billing's subscriber answer is not a JSON object")
            return _profile(msisdn, answer.body)
        except (BillingUnavailable, RemoteProtocolError, _Refused) as exc:
            self.stats.failures += 1
            log.warning("no profile of %s from billing: %s", msisdn, exc)
            return None

    # --- retries ---

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling: float = min(self.backoff_max, self.backoff_initial * 2.0 ** min(attempt, 60))
        delay = ceiling * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> _Answer:
        """The first answer that is not retryable; ``BillingUnavailable`` when none came."""
        loop = asyncio.get_running_loop()
        attempts = self.retries + 1
        last = "no attempt was made"
        for attempt in range(attempts):
            budget = self.timeout
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise BillingUnavailable(
                        f"billing did not answer within the time budget: {last}", attempt
                    )
                budget = min(budget, remaining)
            retry_after = None
            try:
                answer = await self._attempt(method, path, json_body, headers, budget)
            except TransportError as exc:
                last = str(exc)
            else:
                if not _retryable(answer.status):
                    return answer
                last = answer.error()
                retry_after = answer.retry_after
            if attempt + 1 == attempts:
                break
            delay = self._delay(attempt, retry_after)
            if deadline is not None and loop.time() + delay >= deadline:
                raise BillingUnavailable(
                    f"billing did not answer within the time budget after {attempt + 1} attempts: {last}",
                    attempt + 1,
                )
            self.stats.retries += 1
            self.stats.slept += delay
            await asyncio.sleep(delay)
        raise BillingUnavailable(f"billing unavailable after {attempts} attempts: {last}", attempts)

    async def _attempt(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        budget: float,
    ) -> _Answer:
        session = self._open()
        self.stats.requests += 1
        url = self.base_url + path
        try:
            async with session.request(
                method, url, json=json_body, headers=headers, timeout=aiohttp.ClientTimeout(total=budget)
            ) as response:
                raw = b""
                while len(raw) <= _MAX_BODY:  # read() returns what has arrived: read to EOF, capped
                    chunk = await response.content.read(_MAX_BODY + 1 - len(raw))
                    if not chunk:
                        break
                    raw += chunk
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise TransportError(f"{method} {url}: no answer within {budget:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        if len(raw) > _MAX_BODY:
            raise TransportError(f"{method} {url}: the answer is over {_MAX_BODY} octets")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return _Answer(status, body if isinstance(body, dict) else None, retry_after)

"""Campaign KPIs from the decision trail (issue #7, "KPIs per campaign and variant").

``compute_kpis(records)`` counts the engine's ``Record``\\ s (``campaign_core.model.RecordKind``), in the
order the engine wrote them, into one ``KpiRow`` per (campaign, variant); ``render_kpi_table`` prints them.
Pure and deterministic: the same records give the same rows, in the same order (by campaign id, then
variant), so ``tgw replay`` output can be compared byte for byte.

What each column counts
    ``triggers``: offers started (``ELIGIBLE``: the trigger qualified and the campaign won arbitration).
    A control arm's row is keyed by the experiment id and the arm's name (``ASSIGNED`` records with
    ``control: true``, written by the engine only when the subscriber was eligible), and its triggers are
    those assignments.
    ``offers``: offers with at least one ``CONTACT`` that carried options (an informational SMS is not
    an offer).
    ``contacts``: ``CONTACT`` records per channel (``stk``, ``sms``), informational ones included;
    confirmations of an activation are transactional and not counted.
    ``responses``: ``RESPONSE`` records: accepted answers and declines (``declined`` counts the latter);
    rejected answers (expired, duplicate, not offered) are not responses.
    ``activations``: ``FULFILLED`` records (billing activated the package); ``revenue`` is the sum of their
    prices, ``credit_volume`` the sum of the prices paid on credit (what billing lent).
    ``conversion``: activations / triggers (None without triggers).
    ``latency_p50`` / ``p90`` / ``p99``: trigger-to-send latency, the ``latency`` of each offer's first
    ``CONTACT`` (seconds from the network's event time), nearest-rank percentiles (the smallest value
    with at least p % of the values at or below it; no interpolation).

Control arm and uplift (the attribution rule)
    A control subscriber is never contacted, so their conversions are the purchases billing reports
    outside our offers (``PURCHASE`` records, ``Purchased`` events). A control assignment converts when
    the same subscriber has a purchase whose time (the record's ``detail["at"]``, billing's time, else
    the record time) is at or after the assignment's time and at most ``window`` seconds after it, where
    ``window`` is the experiment's entry in ``windows`` (the callers pass the longest ``expires_after`` of
    the campaigns in the experiment's arms: the time a treated subscriber has to convert) or
    ``default_window``. Each assignment converts at most once, with its first such purchase; that
    purchase's price is the control row's revenue. A purchase may convert several assignments when they
    overlap (a second trigger within the window): each assignment is one trial.
    ``uplift`` of a treatment row: its conversion minus the conversion of the control arm of the same
    experiment (the experiment comes from the row's ``ASSIGNED`` records); None without an experiment,
    without a control arm or when either conversion is None. Purchases of treated subscribers outside
    the offer are not counted as their conversions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from campaign_core.model import Payment, Record, RecordKind

__all__ = ["DEFAULT_WINDOW", "KpiRow", "compute_kpis", "percentile", "render_kpi_table"]

DEFAULT_WINDOW = 86400.0
"""The control arm's attribution window when the experiment has no entry in ``windows`` (24 h)."""

_ROW_KINDS = frozenset(
    {
        RecordKind.ASSIGNED,
        RecordKind.ELIGIBLE,
        RecordKind.SUPPRESSED,
        RecordKind.CONTACT,
        RecordKind.RESPONSE,
        RecordKind.FULFILLED,
    }
)
"""Records that make a (campaign, variant) row appear even when it counts nothing (e.g. only suppressions).
Not ``REJECTED_RESPONSE``: the engine writes those without the variant."""


@dataclass(frozen=True, slots=True)
class KpiRow:
    """The KPIs of one campaign variant (``variant`` None: the campaign is in no experiment), or of an
    experiment's control arm (``control``: ``campaign_id`` is the experiment id)."""

    campaign_id: str
    variant: str | None
    control: bool = False
    experiment: str | None = None
    triggers: int = 0
    offers: int = 0
    contacts: Mapping[str, int] = field(default_factory=dict)
    responses: int = 0
    declined: int = 0
    activations: int = 0
    revenue: Decimal = Decimal(0)
    credit_volume: Decimal = Decimal(0)
    conversion: float | None = None
    uplift: float | None = None
    latency_p50: float | None = None
    latency_p90: float | None = None
    latency_p99: float | None = None

    def to_json(self) -> dict[str, object]:
        """Plain JSON data (Decimals as strings), for ``--json`` output."""
        return {
            "campaign_id": self.campaign_id,
            "variant": self.variant,
            "control": self.control,
            "experiment": self.experiment,
            "triggers": self.triggers,
            "offers": self.offers,
            "contacts": dict(sorted(self.contacts.items())),
            "responses": self.responses,
            "declined": self.declined,
            "activations": self.activations,
            "revenue": str(self.revenue),
            "credit_volume": str(self.credit_volume),
            "conversion": self.conversion,
            "uplift": self.uplift,
            "latency_p50": self.latency_p50,
            "latency_p90": self.latency_p90,
            "latency_p99": self.latency_p99,
        }


class _Tally:
    __slots__ = (
        "activations",
        "contacts",
        "control",
        "credit_volume",
        "declined",
        "experiment",
        "first_contact",
        "offered",
        "responses",
        "revenue",
        "triggers",
    )

    def __init__(self) -> None:
        self.control = False
        self.experiment: str | None = None
        self.triggers = 0
        self.offered: set[str] = set()
        self.contacts: dict[str, int] = {}
        self.responses = 0
        self.declined = 0
        self.activations = 0
        self.revenue = Decimal(0)
        self.credit_volume = Decimal(0)
        self.first_contact: dict[str, float] = {}  # offer id -> latency of its first contact


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (need not be sorted); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _decimal(value: object) -> Decimal:
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return Decimal(0)
        return number if number.is_finite() else Decimal(0)
    return Decimal(0)


def compute_kpis(
    records: Iterable[Record],
    *,
    windows: Mapping[str, float] | None = None,
    default_window: float = DEFAULT_WINDOW,
) -> list[KpiRow]:
    """One row per (campaign, variant) and per control arm; see the module docstring for each column.

    ``windows`` maps an experiment id to its control arm's attribution window in seconds."""
    tallies: dict[tuple[str, str | None], _Tally] = {}
    # control assignments: (experiment, arm) -> [(msisdn, at)]; purchases: msisdn -> [(at, price)]
    assignments: dict[tuple[str, str | None], list[tuple[str, float]]] = {}
    purchases: dict[str, list[tuple[float, Decimal]]] = {}

    def tally(key: tuple[str, str | None]) -> _Tally:
        found = tallies.get(key)
        if found is None:
            found = tallies[key] = _Tally()
        return found

    for record in records:
        kind = record.kind
        detail = record.detail
        if kind is RecordKind.PURCHASE:
            at = _number(detail.get("at"))
            purchases.setdefault(record.msisdn, []).append(
                (record.at if at is None else at, _decimal(detail.get("price")))
            )
            continue
        if kind is RecordKind.ASSIGNED and detail.get("control") is True:
            experiment = detail.get("experiment")
            if isinstance(experiment, str):
                key = (experiment, record.variant)
                row = tally(key)
                row.control = True
                row.experiment = experiment
                row.triggers += 1
                assignments.setdefault(key, []).append((record.msisdn, record.at))
            continue
        if record.campaign_id is None:
            continue
        key = (record.campaign_id, record.variant)
        if kind not in _ROW_KINDS and key not in tallies:
            continue
        row = tally(key)
        if kind is RecordKind.ASSIGNED:
            experiment = detail.get("experiment")
            if isinstance(experiment, str):
                row.experiment = experiment
        elif kind is RecordKind.ELIGIBLE:
            row.triggers += 1
        elif kind is RecordKind.CONTACT:
            channel = str(detail.get("channel", "?"))
            row.contacts[channel] = row.contacts.get(channel, 0) + 1
            offer = record.offer_id
            if offer is not None:
                options = detail.get("options")
                if isinstance(options, list | tuple) and options:
                    row.offered.add(offer)
                if offer not in row.first_contact:
                    latency = _number(detail.get("latency"))
                    if latency is not None:
                        row.first_contact[offer] = latency
        elif kind is RecordKind.RESPONSE:
            row.responses += 1
            if detail.get("declined") is True:
                row.declined += 1
        elif kind is RecordKind.FULFILLED:
            row.activations += 1
            price = _decimal(detail.get("price"))
            row.revenue += price
            if detail.get("payment") == Payment.CREDIT.value:
                row.credit_volume += price

    windows = windows or {}
    for key, assigned in assignments.items():
        row = tallies[key]
        window = windows.get(key[0], default_window)
        for msisdn, at in assigned:
            bought = [(when, price) for when, price in purchases.get(msisdn, ()) if at <= when <= at + window]
            if bought:
                row.activations += 1
                row.revenue += min(bought)[1]

    def conversion(row: _Tally) -> float | None:
        return row.activations / row.triggers if row.triggers else None

    control_conversion: dict[str, float | None] = {
        row.experiment: conversion(row)
        for row in tallies.values()
        if row.control and row.experiment is not None
    }
    rows: list[KpiRow] = []
    for (campaign_id, variant), row in sorted(
        tallies.items(), key=lambda item: (item[0][0], item[0][1] or "")
    ):
        rate = conversion(row)
        uplift: float | None = None
        if not row.control and row.experiment is not None:
            baseline = control_conversion.get(row.experiment)
            if rate is not None and baseline is not None:
                uplift = rate - baseline
        latencies = list(row.first_contact.values())
        rows.append(
            KpiRow(
                campaign_id=campaign_id,
                variant=variant,
                control=row.control,
                experiment=row.experiment,
                triggers=row.triggers,
                offers=len(row.offered),
                contacts=dict(sorted(row.contacts.items())),
                responses=row.responses,
                declined=row.declined,
                activations=row.activations,
                revenue=row.revenue,
                credit_volume=row.credit_volume,
                conversion=rate,
                uplift=uplift,
                latency_p50=percentile(latencies, 50),
                latency_p90=percentile(latencies, 90),
                latency_p99=percentile(latencies, 99),
            )
        )
    return rows


_HEADER = (
    "campaign",
    "variant",
    "triggers",
    "offers",
    "contacts",
    "responses",
    "activations",
    "revenue",
    "credit",
    "conversion",
    "uplift",
    "latency p50/p90/p99 s",
)


def _percent(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f}pp" if signed else f"{value * 100:.1f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_kpi_table(rows: Sequence[KpiRow]) -> str:
    """A plain-text table of ``rows`` (one line per row under a header), ending with a newline.

    A control row's variant is marked ``(control)``; uplift is in percentage points."""
    lines: list[tuple[str, ...]] = [_HEADER]
    for row in rows:
        contacts = " ".join(f"{channel}={count}" for channel, count in sorted(row.contacts.items()))
        responses = str(row.responses) + (f" ({row.declined} declined)" if row.declined else "")
        variant = row.variant or "-"
        lines.append(
            (
                row.campaign_id,
                f"{variant} (control)" if row.control else variant,
                str(row.triggers),
                str(row.offers),
                contacts or "-",
                responses,
                str(row.activations),
                f"{row.revenue:.2f}",
                f"{row.credit_volume:.2f}",
                _percent(row.conversion),
                _percent(row.uplift, signed=True),
                "/".join(_seconds(v) for v in (row.latency_p50, row.latency_p90, row.latency_p99)),
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(_HEADER))]
    numeric = {2, 3, 5, 6, 7, 8, 9, 10}
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"

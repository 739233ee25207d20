"""The simulation report (issue #8, "The demo"): an HTML page with inline SVG charts, JSON and a text table.

``write_report(data, directory)`` writes three files from one ``ReportData``:

- ``report.html``: self-contained (inline CSS and SVG; no script, no external resource). The KPI table
  per campaign variant (``campaign_core.kpis``), the consistency checks, and next to them the behaviour
  assumptions with the caveat that the demo shows how the engine behaves under them and does not prove
  the source's numbers; then four charts drawn here, without a plotting library: conversion per variant
  and revenue per variant (bars), the trigger-to-offer latency per variant (cumulative distribution on a
  logarithmic time axis), and contacts per channel per simulated day (lines); and a latency percentile
  table. Every text from the data goes through ``html.escape``.
- ``report.json``: the same data (KPI rows as ``KpiRow.to_json``, latency samples, contacts per day,
  checks, assumptions), keys sorted.
- ``report.txt``: what the terminal shows: ``campaign_core.kpis.render_kpi_table`` under a heading, the
  checks and the assumptions.

Deterministic: the same ``ReportData`` gives byte-identical files (fixed number formats, sorted keys, no
clock, no wall time; a capture inside the report directory is named relative to it, so the directory's
own path does not leak in).
"""

from __future__ import annotations

import json
import math
import os
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path

from campaign_core.kpis import KpiRow, percentile, render_kpi_table

__all__ = [
    "DISCLAIMER",
    "Check",
    "ReportData",
    "ReportFiles",
    "VariantResult",
    "render_html",
    "render_text",
    "report_json",
    "variants_from_kpis",
    "write_report",
]

DISCLAIMER = (
    "This demo shows how the engine behaves under the assumptions listed here; "
    "it does not prove the source's numbers."
)

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#8C6D1F")
"""Okabe-Ito colours (readable for colour-blind readers), without the pale yellow, plus a brown."""


@dataclass(frozen=True, slots=True)
class Check:
    """A consistency check of the run: ``passed`` or not, with what was found."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VariantResult:
    """Conversions and revenue of one variant (an experiment arm, or a campaign outside experiments)."""

    label: str
    triggers: int
    conversions: int
    revenue: Decimal

    @property
    def conversion(self) -> float | None:
        return self.conversions / self.triggers if self.triggers else None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report shows. ``latency``: trigger-to-offer seconds per (campaign, variant);
    ``contacts_per_day``: channel -> contacts on each simulated day (day 1 first); ``variants``: empty
    means one per KPI row (``variants_from_kpis``); ``pcap``: the traffic capture's path, if any."""

    scenario: str
    seed: int
    population: int
    days: int
    kpis: tuple[KpiRow, ...]
    latency: Mapping[tuple[str, str | None], Sequence[float]] = field(default_factory=dict)
    contacts_per_day: Mapping[str, Sequence[int]] = field(default_factory=dict)
    variants: tuple[VariantResult, ...] = ()
    assumptions: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    pcap: str | None = None
    currency: str = ""


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files ``write_report`` wrote."""

    html: Path
    json: Path
    text: Path


def variants_from_kpis(rows: Iterable[KpiRow]) -> tuple[VariantResult, ...]:
    """One ``VariantResult`` per KPI row, labelled by its variant (its campaign when it has none, and
    ``campaign / variant`` when two rows would share a label)."""
    rows = list(rows)
    plain = [row.variant or row.campaign_id for row in rows]
    return tuple(
        VariantResult(
            label=label if plain.count(label) == 1 else _series_label(row.campaign_id, row.variant),
            triggers=row.triggers,
            conversions=row.activations,
            revenue=row.revenue,
        )
        for row, label in zip(rows, plain, strict=True)
    )


def _series_label(campaign: str, variant: str | None) -> str:
    return campaign if variant is None else f"{campaign} / {variant}"


def _finite(samples: Iterable[float]) -> list[float]:
    return [float(s) for s in samples if math.isfinite(s)]


def _latency_series(data: ReportData) -> list[tuple[str, str, str | None, list[float], int]]:
    """(label, campaign, variant, finite samples, how many non-finite were dropped), sorted."""
    out = []
    for (campaign, variant), samples in sorted(data.latency.items(), key=lambda i: (i[0][0], i[0][1] or "")):
        values = list(samples)
        finite = _finite(values)
        out.append((_series_label(campaign, variant), campaign, variant, finite, len(values) - len(finite)))
    return out


def _variants(data: ReportData) -> tuple[VariantResult, ...]:
    return data.variants or variants_from_kpis(data.kpis)


# --- JSON ----------------------------------------------------------------------------------------


def report_json(data: ReportData, *, pcap: str | None = None) -> dict[str, object]:
    """The report as plain JSON data (Decimals as strings); ``pcap`` overrides ``data.pcap``."""
    latency = []
    for label, campaign, variant, samples, dropped in _latency_series(data):
        latency.append(
            {
                "label": label,
                "campaign_id": campaign,
                "variant": variant,
                "count": len(samples),
                "non_finite_dropped": dropped,
                "p50": percentile(samples, 50),
                "p90": percentile(samples, 90),
                "p99": percentile(samples, 99),
                "samples": samples,
            }
        )
    return {
        "scenario": data.scenario,
        "seed": data.seed,
        "population": data.population,
        "days": data.days,
        "currency": data.currency,
        "disclaimer": DISCLAIMER,
        "assumptions": list(data.assumptions),
        "kpis": [row.to_json() for row in data.kpis],
        "variants": [
            {
                "label": v.label,
                "triggers": v.triggers,
                "conversions": v.conversions,
                "conversion": v.conversion,
                "revenue": str(v.revenue),
            }
            for v in _variants(data)
        ],
        "latency": latency,
        "contacts_per_day": {
            channel: list(counts) for channel, counts in sorted(data.contacts_per_day.items())
        },
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in data.checks],
        "pcap": data.pcap if pcap is None else pcap,
    }


# --- text ----------------------------------------------------------------------------------------


def _heading(data: ReportData) -> str:
    days = "1 day" if data.days == 1 else f"{data.days} days"
    return f"Scenario {data.scenario}: seed {data.seed}, {data.population} subscribers, {days}"


def render_text(data: ReportData, *, pcap: str | None = None) -> str:
    """The terminal report: heading, KPI table, checks, capture and assumptions; ends with a newline."""
    lines = [_heading(data), "", render_kpi_table(data.kpis).rstrip("\n"), ""]
    if data.checks:
        passed = sum(1 for c in data.checks if c.passed)
        lines.append(f"Consistency checks: {passed} of {len(data.checks)} passed")
        for check in data.checks:
            detail = f": {check.detail}" if check.detail else ""
            lines.append(f"  {'ok  ' if check.passed else 'FAIL'}  {check.name}{detail}")
        lines.append("")
    capture = data.pcap if pcap is None else pcap
    if capture is not None:
        lines += [f"Traffic capture: {capture}", ""]
    if data.assumptions:
        lines.append(f"Assumptions. {DISCLAIMER}")
        lines += [f"  - {text}" for text in data.assumptions]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- SVG -----------------------------------------------------------------------------------------

_WIDTH = 760
_HEIGHT = 340
_LEFT = 72
_RIGHT = _WIDTH - 210  # the legend sits right of the plot
_TOP = 44
_BOTTOM = _HEIGHT - 64
_LEGEND_ROW = 18


def _f(value: float) -> str:
    """A coordinate: one decimal, no negative zero."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _tints(colours: Sequence[str] | None, count: int) -> list[str]:
    """``colours`` when given (one per series), else the palette in order."""
    return list(colours) if colours is not None else [_colour(i) for i in range(count)]


def _colour_map(keys: Iterable[str]) -> dict[str, str]:
    """A colour per distinct key, in order of first appearance, so a variant has one colour in every chart."""
    colours: dict[str, str] = {}
    for key in keys:
        if key not in colours:
            colours[key] = _colour(len(colours))
    return colours


_TEXT = {
    "title": 'font-size="15" font-weight="bold" fill="#1a1a1a"',
    "label": 'font-size="12" fill="#333333"',
    "tick": 'font-size="11" fill="#333333"',
    "legend": 'font-size="11" fill="#333333"',
    "value": 'font-size="11" fill="#1a1a1a"',
    "note": 'font-size="13" fill="#777777"',
}
"""Presentation attributes (not CSS) so a chart looks the same inside the page and saved on its own."""
_LINE = {"axis": 'stroke="#333333" stroke-width="1"', "grid": 'stroke="#e3e3e3" stroke-width="1"'}
_FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


def _nice_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], int]:
    """Ticks covering [low, high] at a 1-2-5 step, and the decimals their labels need."""
    if not high > low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [n * step for n in range(first, last + 1)], decimals


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"


class _Svg:
    """An SVG document built element by element; every text is escaped here."""

    def __init__(self, title: str, height: int) -> None:
        self.height = height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}"'
            f' height="{height}" role="img" aria-label="{escape(title)}" font-family="{_FONT}">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
            f'<text x="{(_LEFT + _RIGHT) / 2:.0f}" y="22" text-anchor="middle" {_TEXT["title"]}>{escape(title)}</text>',
        ]

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", cls: str, tip: str = "") -> None:
        hint = f"<title>{escape(tip)}</title>" if tip else ""
        self.parts.append(
            f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" {_TEXT[cls]}>{hint}{escape(text)}</text>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str) -> None:
        self.parts.append(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" {_LINE[cls]}/>')

    def legend(self, entries: Sequence[tuple[str, str, bool]], *, swatch: str) -> None:
        """Entries (label, colour, has data) right of the plot; ``swatch`` "box" or "line"."""
        x = _RIGHT + 18
        for index, (label, colour, present) in enumerate(entries):
            y = _TOP + 6 + index * _LEGEND_ROW
            if swatch == "box":
                self.add(f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="12" height="12" fill="{colour}"/>')
            else:
                self.add(
                    f'<line x1="{_f(x)}" y1="{_f(y - 3)}" x2="{_f(x + 14)}" y2="{_f(y - 3)}"'
                    f' stroke="{colour}" stroke-width="3"/>'
                )
            shown = label if present else f"{label} (no data)"
            self.text(x + 20, y + 2, _short(shown, 24), cls="legend", tip=shown)

    def axes(self, x_label: str, y_label: str) -> None:
        self.line(_LEFT, _TOP, _LEFT, _BOTTOM, "axis")
        self.line(_LEFT, _BOTTOM, _RIGHT, _BOTTOM, "axis")
        self.text((_LEFT + _RIGHT) / 2, _BOTTOM + 44, x_label, anchor="middle", cls="label")
        middle = (_TOP + _BOTTOM) / 2
        self.add(
            f'<text x="18" y="{_f(middle)}" text-anchor="middle" {_TEXT["label"]}'
            f' transform="rotate(-90 18 {_f(middle)})">{escape(y_label)}</text>'
        )

    def y_ticks(self, ticks: Sequence[float], labels: Sequence[str], to_y: _Scale) -> None:
        for value, label in zip(ticks, labels, strict=True):
            y = to_y(value)
            self.line(_LEFT, y, _RIGHT, y, "grid")
            self.line(_LEFT - 5, y, _LEFT, y, "axis")
            self.text(_LEFT - 8, y + 4, label, anchor="end", cls="tick")

    def x_ticks(self, ticks: Sequence[float], labels: Sequence[str], to_x: _Scale) -> None:
        """Ticks on the x axis; a label closer than 40 px to the one before is left out."""
        last = -math.inf
        for value, label in zip(ticks, labels, strict=True):
            x = to_x(value)
            self.line(x, _BOTTOM, x, _BOTTOM + 5, "axis")
            if x - last >= 40:
                self.text(x, _BOTTOM + 18, label, anchor="middle", cls="tick")
                last = x

    def note(self, text: str) -> None:
        self.text((_LEFT + _RIGHT) / 2, (_TOP + _BOTTOM) / 2, text, anchor="middle", cls="note")

    def render(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


class _Scale:
    """Maps data values linearly (or on log10) from [low, high] onto [start, end] pixels."""

    def __init__(self, low: float, high: float, start: float, end: float, *, log: bool = False) -> None:
        self.log = log
        self.low = math.log10(low) if log else low
        self.high = math.log10(high) if log else high
        self.start = start
        self.end = end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        span = self.high - self.low
        fraction = (v - self.low) / span if span else 0.0
        return self.start + (self.end - self.start) * min(1.0, max(0.0, fraction))


def _chart_height(entries: int) -> int:
    return max(_HEIGHT, _TOP + 16 + entries * _LEGEND_ROW)


def _bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    y_label: str,
    value_text: Sequence[str],
    tick_suffix: str = "",
    colours: Sequence[str] | None = None,
) -> str:
    tint = _tints(colours, len(labels))
    svg = _Svg(title, _chart_height(len(labels)))
    present = [v for v in values if v is not None]
    low = min([0.0, *present])
    high = max([0.0, *present])
    ticks, decimals = _nice_ticks(low, high if high > low else low + 1)
    to_y = _Scale(ticks[0], ticks[-1], _BOTTOM, _TOP)
    svg.y_ticks(ticks, [f"{t:.{decimals}f}{tick_suffix}" for t in ticks], to_y)
    svg.axes("variant", y_label)
    if not labels:
        svg.note("no variants")
    band = (_RIGHT - _LEFT) / max(1, len(labels))
    width = band * 0.6
    zero = to_y(0.0)
    for index, (label, value, text) in enumerate(zip(labels, values, value_text, strict=True)):
        x = _LEFT + band * index + (band - width) / 2
        colour = tint[index]
        if value is not None:
            top = to_y(value)
            y, height = min(top, zero), abs(zero - top)
            svg.add(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(width)}" height="{_f(height)}" fill="{colour}">'
                f"<title>{escape(label)}: {escape(text)}</title></rect>"
            )
            svg.text(x + width / 2, min(top, zero) - 5, text, anchor="middle", cls="value")
        else:
            svg.text(x + width / 2, zero - 5, text, anchor="middle", cls="value")
        svg.text(
            x + width / 2,
            _BOTTOM + 18,
            _short(label, max(3, int(band / 7))),
            anchor="middle",
            cls="tick",
            tip=label,
        )
    svg.legend(
        [(label, tint[i], v is not None) for i, (label, v) in enumerate(zip(labels, values, strict=True))],
        swatch="box",
    )
    return svg.render()


_DURATION_TICKS = (
    (0.001, "1 ms"),
    (0.01, "10 ms"),
    (0.1, "0.1 s"),
    (1.0, "1 s"),
    (10.0, "10 s"),
    (60.0, "1 min"),
    (600.0, "10 min"),
    (3600.0, "1 h"),
    (6 * 3600.0, "6 h"),
    (86400.0, "1 d"),
    (2 * 86400.0, "2 d"),
    (7 * 86400.0, "1 wk"),
    (30 * 86400.0, "30 d"),
    (365 * 86400.0, "1 yr"),
)
_CDF_POINTS = 240


def _cdf_chart(
    title: str, series: Sequence[tuple[str, list[float]]], colours: Sequence[str] | None = None
) -> str:
    """Cumulative share of offers sent within x seconds of the trigger, x on a log axis."""
    tint = _tints(colours, len(series))
    svg = _Svg(title, _chart_height(len(series)))
    positive = [s for _, samples in series for s in samples if s > 0]
    if positive:
        smallest, largest = min(positive), max(positive)
    else:
        smallest, largest = 1.0, 86400.0
    low = max((t for t, _ in _DURATION_TICKS if t <= smallest), default=_DURATION_TICKS[0][0])
    high = min((t for t, _ in _DURATION_TICKS if t >= largest), default=_DURATION_TICKS[-1][0])
    if high <= low:
        high = next((t for t, _ in _DURATION_TICKS if t > low), low * 10)
    to_x = _Scale(low, high, _LEFT, _RIGHT, log=True)
    to_y = _Scale(0.0, 100.0, _BOTTOM, _TOP)
    svg.y_ticks([0, 25, 50, 75, 100], ["0 %", "25 %", "50 %", "75 %", "100 %"], to_y)
    shown = [(t, label) for t, label in _DURATION_TICKS if low <= t <= high]
    svg.x_ticks([t for t, _ in shown], [label for _, label in shown], to_x)
    svg.axes("time from trigger to first offer contact (log scale)", "offers sent by then")
    if not any(samples for _, samples in series):
        svg.note("no latency samples")
    ratio = high / low
    grid = [low * ratio ** (k / (_CDF_POINTS - 1)) for k in range(_CDF_POINTS)]
    for index, (label, samples) in enumerate(series):
        if not samples:
            continue
        ordered = sorted(samples)
        count = len(ordered)
        path = [f"M{_f(to_x(low))},{_f(to_y(100.0 * bisect_right(ordered, low) / count))}"]
        for x in grid[1:]:
            y = 100.0 * bisect_right(ordered, x) / count
            path.append(f"H{_f(to_x(x))}V{_f(to_y(y))}")
        svg.add(
            f'<path d="{"".join(path)}" fill="none" stroke="{tint[index]}" stroke-width="2">'
            f"<title>{escape(label)}</title></path>"
        )
    svg.legend([(label, tint[i], bool(samples)) for i, (label, samples) in enumerate(series)], swatch="line")
    if any(s <= 0 for _, samples in series for s in samples) or any(
        s < low for _, samples in series for s in samples
    ):
        svg.text(_RIGHT, _TOP - 6, f"values under {shown[0][1]} are drawn at it", anchor="end", cls="tick")
    return svg.render()


def _line_chart(
    title: str, series: Sequence[tuple[str, Sequence[int]]], *, x_label: str, y_label: str
) -> str:
    tint = _tints(None, len(series))
    svg = _Svg(title, _chart_height(len(series)))
    length = max([1, *(len(values) for _, values in series)])
    peak = max([0, *(v for _, values in series for v in values)])
    y_ticks, y_decimals = _nice_ticks(0.0, float(peak) if peak > 0 else 1.0)
    to_y = _Scale(y_ticks[0], y_ticks[-1], _BOTTOM, _TOP)
    to_x = _Scale(1.0, float(max(2, length)), _LEFT + 10, _RIGHT - 10)
    svg.y_ticks(y_ticks, [f"{t:.{y_decimals}f}" for t in y_ticks], to_y)
    x_ticks, _ = _nice_ticks(1.0, float(max(2, length)), 8)
    x_ticks = [t for t in x_ticks if 1 <= t <= max(2, length) and t == int(t)] or [1.0]
    svg.x_ticks(x_ticks, [f"{t:.0f}" for t in x_ticks], to_x)
    svg.axes(x_label, y_label)
    if not any(values for _, values in series):
        svg.note("no contacts")
    for index, (label, values) in enumerate(series):
        if not values:
            continue
        colour = tint[index]
        points = " ".join(f"{_f(to_x(day + 1))},{_f(to_y(v))}" for day, v in enumerate(values))
        svg.add(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(label)}</title></polyline>"
        )
        if len(values) <= 62:
            for day, v in enumerate(values):
                svg.add(
                    f'<circle cx="{_f(to_x(day + 1))}" cy="{_f(to_y(v))}" r="3" fill="{colour}">'
                    f"<title>{escape(label)}, day {day + 1}: {v}</title></circle>"
                )
    svg.legend([(label, tint[i], bool(values)) for i, (label, values) in enumerate(series)], swatch="line")
    return svg.render()


# --- HTML ----------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #1a1a1a; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.meta { color: #444; }
.caveat { background: #fff4d6; border-left: 4px solid #E69F00; padding: 0.6em 0.8em; }
.side { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.side > section { flex: 1 1 480px; min-width: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
.pass { color: #00703c; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
ol.assumptions li { margin-bottom: 0.4em; }
figure { margin: 1.5em 0; } figcaption { color: #444; font-size: 0.9em; max-width: 760px; }
svg { max-width: 100%; height: auto; background: #fff; }
"""

_KPI_COLUMNS = (
    ("campaign", False),
    ("variant", False),
    ("triggers", True),
    ("offers", True),
    ("contacts", False),
    ("responses", True),
    ("declined", True),
    ("activations", True),
    ("revenue", True),
    ("credit", True),
    ("conversion", True),
    ("uplift", True),
    ("latency p50 / p90 / p99", True),
)


def _percent(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f} pp" if signed else f"{value * 100:.1f} %"


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 120:
        return f"{value:.1f} s"
    if abs(value) < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _cell(text: str, numeric: bool) -> str:
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _kpi_table(rows: Sequence[KpiRow]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in _KPI_COLUMNS)
    body = []
    for row in rows:
        variant = row.variant or "-"
        cells = (
            row.campaign_id,
            f"{variant} (control)" if row.control else variant,
            str(row.triggers),
            str(row.offers),
            " ".join(f"{channel}={count}" for channel, count in sorted(row.contacts.items())) or "-",
            str(row.responses),
            str(row.declined),
            str(row.activations),
            f"{row.revenue:.2f}",
            f"{row.credit_volume:.2f}",
            _percent(row.conversion),
            _percent(row.uplift, signed=True),
            " / ".join(_duration(v) for v in (row.latency_p50, row.latency_p90, row.latency_p99)),
        )
        body.append(
            "<tr>"
            + "".join(_cell(text, numeric) for text, (_, numeric) in zip(cells, _KPI_COLUMNS, strict=True))
            + "</tr>"
        )
    if not body:
        body.append(f'<tr><td colspan="{len(_KPI_COLUMNS)}">no campaign recorded anything</td></tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _checks_table(checks: Sequence[Check]) -> str:
    if not checks:
        return "<p>No consistency checks were run.</p>"
    rows = "".join(
        f'<tr><td class="{"pass" if c.passed else "fail"}">{"passed" if c.passed else "FAILED"}</td>'
        f"<td>{escape(c.name)}</td><td>{escape(c.detail)}</td></tr>"
        for c in checks
    )
    return f"<table><thead><tr><th>result</th><th>check</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>"


def _latency_table(series: Sequence[tuple[str, str, str | None, list[float], int]]) -> str:
    if not series:
        return "<p>No offer was sent, so there is no latency to show.</p>"
    rows = "".join(
        "<tr>"
        + _cell(label, False)
        + _cell(str(len(samples)), True)
        + "".join(_cell(_duration(percentile(samples, p)), True) for p in (50, 90, 99))
        + "</tr>"
        for label, _, _, samples, _ in series
    )
    return (
        "<table><thead><tr><th>campaign / variant</th><th>offers</th><th>p50</th><th>p90</th><th>p99</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>\n{svg}\n<figcaption>{escape(caption)}</figcaption>\n</figure>"


def render_html(data: ReportData, *, pcap: str | None = None) -> str:
    """The report page (see the module docstring); ``pcap`` overrides ``data.pcap`` (as shown and linked)."""
    currency = f" ({data.currency})" if data.currency else ""
    variants = _variants(data)
    labels = [v.label for v in variants]
    conversion = [None if v.conversion is None else v.conversion * 100 for v in variants]
    revenue = [float(v.revenue) for v in variants]
    latency = _latency_series(data)
    contacts = sorted(data.contacts_per_day.items())
    # a variant keeps its colour from the bars to the latency lines (matched by its variant's name)
    colours = _colour_map([*labels, *(variant or campaign for _, campaign, variant, _, _ in latency)])
    capture = data.pcap if pcap is None else pcap
    days = "1 simulated day" if data.days == 1 else f"{data.days} simulated days"
    meta = f"Seed {data.seed} &middot; {data.population} subscribers &middot; {days}" + (
        f" &middot; prices in {escape(data.currency)}" if data.currency else ""
    )
    capture_html = (
        f'<p>Traffic capture (opens in Wireshark): <a href="{escape(capture)}">{escape(capture)}</a></p>'
        if capture is not None
        else ""
    )
    assumptions = (
        '<ol class="assumptions">'
        + "".join(f"<li>{escape(text)}</li>" for text in data.assumptions)
        + "</ol>"
        if data.assumptions
        else "<p>No behaviour assumptions were given.</p>"
    )
    charts = [
        _figure(
            _bar_chart(
                "Conversion per variant",
                labels,
                conversion,
                y_label="conversion (%)",
                value_text=[_percent(v.conversion) for v in variants],
                tick_suffix=" %",
                colours=[colours[label] for label in labels],
            ),
            "Activations (for a control arm: purchases on the subscriber's own within the window) per trigger.",
        ),
        _figure(
            _bar_chart(
                "Revenue per variant" + currency,
                labels,
                revenue,
                y_label="revenue" + currency,
                value_text=[f"{v.revenue:.2f}" for v in variants],
                colours=[colours[label] for label in labels],
            ),
            "Sum of the prices of the packages activated (for a control arm: bought on the subscriber's own).",
        ),
        _figure(
            _cdf_chart(
                "Trigger-to-offer latency per variant",
                [(label, samples) for label, _, _, samples, _ in latency],
                [colours[variant or campaign] for _, campaign, variant, _, _ in latency],
            ),
            "Share of offers whose first contact was sent within the time on the x axis of the network's "
            "event (a line further left is faster).",
        ),
        _figure(
            _line_chart(
                "Contacts per channel per simulated day",
                [(channel, list(counts)) for channel, counts in contacts],
                x_label="simulated day",
                y_label="contacts",
            ),
            "Messages sent to subscribers each day, per channel.",
        ),
    ]
    title = f"Simulation report: {data.scenario}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="meta">{meta}</p>',
            f'<p class="caveat"><strong>{escape(DISCLAIMER)}</strong></p>',
            '<div class="side">',
            "<section>",
            "<h2>KPIs per campaign variant</h2>",
            _kpi_table(data.kpis),
            "<h2>Consistency checks</h2>",
            _checks_table(data.checks),
            capture_html,
            "</section>",
            "<section>",
            "<h2>Behaviour assumptions</h2>",
            f"<p>{escape(DISCLAIMER)}</p>",
            assumptions,
            "</section>",
            "</div>",
            "<h2>Charts</h2>",
            *charts,
            "<h2>Trigger-to-offer latency percentiles</h2>",
            _latency_table(latency),
            "</body>",
            "</html>",
            "",
        ]
    )


# --- files ---------------------------------------------------------------------------------------


def _capture_name(pcap: str | None, directory: Path) -> str | None:
    """The capture's path as the report names it: relative to the report directory when inside it."""
    if pcap is None:
        return None
    path = Path(pcap)
    try:
        inside = path.resolve().is_relative_to(directory.resolve())
    except OSError:
        inside = False
    return Path(os.path.relpath(path.resolve(), directory.resolve())).as_posix() if inside else pcap


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(text)


def write_report(data: ReportData, directory: str | Path) -> ReportFiles:
    """Write ``report.html``, ``report.json`` and ``report.txt`` into ``directory`` (created if needed)."""
    where = Path(directory)
    where.mkdir(parents=True, exist_ok=True)
    capture = _capture_name(data.pcap, where)
    files = ReportFiles(html=where / "report.html", json=where / "report.json", text=where / "report.txt")
    _write(files.html, render_html(data, pcap=capture))
    document = report_json(data, pcap=capture)
    _write(
        files.json, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    )
    _write(files.text, render_text(data, pcap=capture))
    return files

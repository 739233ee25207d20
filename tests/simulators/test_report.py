"""The simulation report (simulators/report.py, issue #8): files, determinism, HTML structure, escaping.

The HTML is checked with the standard library's ``html.parser``: every non-void element closes in
order, and there is one ``<svg>`` per chart (conversion, revenue, latency, contacts). A campaign name full
of markup must come out as text, and a run without samples (a variant that never sent an offer, no
contacts, no rows at all) must still give a report.
"""

from __future__ import annotations

import json
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from campaign_core.kpis import KpiRow, render_kpi_table
from simulators.report import (
    DISCLAIMER,
    Check,
    ReportData,
    VariantResult,
    render_html,
    render_text,
    variants_from_kpis,
    write_report,
)

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
SVG_LEAVES = frozenset({"rect", "line", "path", "circle", "polyline"})  # written self-closing


class Structure(HTMLParser):
    """Collects start tags and checks that every element closes, innermost first."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.starts: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def rows() -> tuple[KpiRow, ...]:
    return (
        KpiRow(
            "upsell_ab",
            "control",
            control=True,
            experiment="upsell_ab",
            triggers=40,
            activations=3,
            revenue=Decimal("360.00"),
            conversion=3 / 40,
        ),
        KpiRow(
            "upsell_new",
            "new",
            experiment="upsell_ab",
            triggers=120,
            offers=118,
            contacts={"stk": 90, "sms": 50},
            responses=60,
            declined=12,
            activations=45,
            revenue=Decimal("5120.00"),
            credit_volume=Decimal("2000.00"),
            conversion=45 / 120,
            uplift=45 / 120 - 3 / 40,
            latency_p50=1.1,
            latency_p90=2.0,
            latency_p99=3.5,
        ),
        KpiRow(
            "upsell_new",
            "new_delayed",
            experiment="upsell_ab",
            triggers=110,
            offers=100,
            contacts={"stk": 80, "sms": 70},
            responses=6,
            activations=3,
            revenue=Decimal("300.00"),
            conversion=3 / 110,
            latency_p50=172800.0,
            latency_p90=172830.0,
            latency_p99=172860.0,
        ),
        KpiRow(
            "upsell_old",
            "old",
            experiment="upsell_ab",
            triggers=125,
            offers=110,
            contacts={"sms": 230},
            responses=15,
            activations=14,
            revenue=Decimal("2520.00"),
            conversion=14 / 125,
            latency_p50=86400.0,
        ),
    )


def data(**changes: object) -> ReportData:
    base = {
        "scenario": "small",
        "seed": 7,
        "population": 200,
        "days": 7,
        "kpis": rows(),
        "latency": {
            ("upsell_new", "new"): [0.8 + i / 100 for i in range(118)],
            ("upsell_new", "new_delayed"): [172800.0 + i for i in range(100)],
            ("upsell_old", "old"): [86400.0 + i for i in range(110)],
        },
        "contacts_per_day": {"sms": [50, 60, 40, 70, 55, 45, 30], "stk": [30, 25, 20, 35, 25, 20, 15]},
        "assumptions": ("62 % of subscribers who see a DSTK dialog press OK", "18 % dial a code"),
        "checks": (
            Check("every activation traces to an offer and a response", True, "62 of 62"),
            Check("control got no contact", True),
        ),
        "pcap": None,
        "currency": "KES",
    }
    base.update(changes)
    return ReportData(**base)  # type: ignore[arg-type]


def test_the_three_files_are_written(tmp_path: Path) -> None:
    files = write_report(data(), tmp_path / "out")
    assert files.html == tmp_path / "out" / "report.html"
    assert files.json == tmp_path / "out" / "report.json"
    assert files.text == tmp_path / "out" / "report.txt"
    html = files.html.read_text(encoding="utf-8")
    document = json.loads(files.json.read_text(encoding="utf-8"))
    text = files.text.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert document["scenario"] == "small"
    assert document["kpis"] == [row.to_json() for row in rows()]
    assert document["contacts_per_day"]["sms"] == [50, 60, 40, 70, 55, 45, 30]
    assert [v["label"] for v in document["variants"]] == ["control", "new", "new_delayed", "old"]
    new = next(item for item in document["latency"] if item["variant"] == "new")
    assert new["count"] == 118
    assert new["samples"][0] == pytest.approx(0.8)
    assert document["assumptions"][0].startswith("62 %")
    assert document["disclaimer"] == DISCLAIMER
    assert render_kpi_table(rows()) in text
    assert DISCLAIMER in text
    assert "Consistency checks: 2 of 2 passed" in text


def test_the_same_data_gives_byte_identical_files(tmp_path: Path) -> None:
    first = write_report(data(pcap=str(tmp_path / "a" / "traffic.pcap")), tmp_path / "a")
    second = write_report(data(pcap=str(tmp_path / "b" / "traffic.pcap")), tmp_path / "b")
    for a, b in ((first.html, second.html), (first.json, second.json), (first.text, second.text)):
        assert a.read_bytes() == b.read_bytes()
    # the capture inside the report directory is named relative to it (and linked so)
    assert json.loads(first.json.read_text(encoding="utf-8"))["pcap"] == "traffic.pcap"
    assert "traffic.pcap" in parse(first.html.read_text(encoding="utf-8")).hrefs
    # and again into the same directory: the same bytes
    html = first.html.read_bytes()
    write_report(data(pcap=str(tmp_path / "a" / "traffic.pcap")), tmp_path / "a")
    assert first.html.read_bytes() == html


def test_a_capture_elsewhere_keeps_its_path(tmp_path: Path) -> None:
    files = write_report(data(pcap="/var/captures/run.pcap"), tmp_path)
    assert json.loads(files.json.read_text(encoding="utf-8"))["pcap"] == "/var/captures/run.pcap"
    assert "Traffic capture: /var/captures/run.pcap" in files.text.read_text(encoding="utf-8")


def test_the_html_parses_with_one_svg_per_chart() -> None:
    html = render_html(data())
    structure = parse(html)
    assert structure.starts.count("svg") == 4
    assert structure.starts.count("table") == 3  # KPIs, checks, latency percentiles
    assert structure.starts.count("figure") == 4
    text = " ".join(structure.text)
    for title in (
        "Conversion per variant",
        "Revenue per variant (KES)",
        "Trigger-to-offer latency per variant",
        "Contacts per channel per simulated day",
    ):
        assert title in text
    assert DISCLAIMER in text
    assert "62 % of subscribers who see a DSTK dialog press OK" in text
    assert "37.5 %" in text  # the new arm's conversion, on its bar and in the table


def test_the_page_is_self_contained() -> None:
    html = render_html(data())
    structure = parse(html)
    assert "script" not in structure.starts
    assert "link" not in structure.starts
    assert "img" not in structure.starts
    assert all(not href.startswith(("http:", "https:", "//")) for href in structure.hrefs)
    # the only URL is the SVG namespace, which is a name, not a fetch
    assert html.count("http") == html.count('xmlns="http://www.w3.org/2000/svg"')


def test_hostile_names_are_text(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    kpis = (*rows(), KpiRow(evil, "a&b<i>", triggers=3, contacts={"<b>sms</b>": 1}, conversion=0.0))
    report = data(
        kpis=kpis,
        latency={(evil, "a&b<i>"): [1.0, 2.0]},
        contacts_per_day={"<img src=x onerror=alert(1)>": [1, 2]},
        assumptions=("<iframe src=evil>",),
        checks=(Check("<marquee>", False, "</table>"),),
        scenario="</title><script>",
        currency="<u>",
    )
    files = write_report(report, tmp_path)
    html = files.html.read_text(encoding="utf-8")
    structure = parse(html)
    for tag in ("script", "i", "img", "iframe", "marquee", "u"):
        assert tag not in structure.starts, tag
    assert structure.starts.count("b") == 0
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert evil in " ".join(structure.text)  # shown, as text
    assert "a&amp;b&lt;i&gt;" in html
    assert json.loads(files.json.read_text(encoding="utf-8"))["kpis"][-1]["campaign_id"] == evil
    assert structure.starts.count("svg") == 4


def test_empty_variants_and_an_empty_run_do_not_crash(tmp_path: Path) -> None:
    no_samples = data(latency={("upsell_new", "new"): [], ("upsell_old", "old"): []}, contacts_per_day={})
    html = render_html(no_samples)
    structure = parse(html)
    assert structure.starts.count("svg") == 4
    text = " ".join(structure.text)
    assert "no latency samples" in text
    assert "no contacts" in text
    assert "new (no data)" in text  # the legend says which variant had nothing

    empty = ReportData(scenario="empty", seed=0, population=0, days=1, kpis=())
    files = write_report(empty, tmp_path)
    structure = parse(files.html.read_text(encoding="utf-8"))
    assert structure.starts.count("svg") == 4
    assert "no variants" in " ".join(structure.text)
    document = json.loads(files.json.read_text(encoding="utf-8"))
    assert document["kpis"] == [] and document["latency"] == [] and document["pcap"] is None
    assert files.text.read_text(encoding="utf-8").startswith("Scenario empty: seed 0, 0 subscribers, 1 day\n")


def test_odd_samples_stay_out_of_the_json_and_the_chart() -> None:
    report = data(
        latency={("upsell_new", "new"): [float("nan"), 0.0, -1.0, float("inf"), 2.5]},
        contacts_per_day={"sms": [0]},
    )
    document = json.loads(json.dumps(json.loads(_json_text(report))))
    (series,) = document["latency"]
    assert series["samples"] == [0.0, -1.0, 2.5]
    assert series["non_finite_dropped"] == 2
    html = render_html(report)
    parse(html)
    assert "are drawn at it" in html  # values at or under zero sit at the axis' start, said so


def _json_text(report: ReportData) -> str:
    from simulators.report import report_json

    return json.dumps(report_json(report), allow_nan=False)


def test_variants_default_to_the_kpi_rows_and_can_be_given() -> None:
    derived = variants_from_kpis(rows())
    assert [(v.label, v.triggers, v.conversions, v.revenue) for v in derived] == [
        ("control", 40, 3, Decimal("360.00")),
        ("new", 120, 45, Decimal("5120.00")),
        ("new_delayed", 110, 3, Decimal("300.00")),
        ("old", 125, 14, Decimal("2520.00")),
    ]
    assert derived[1].conversion == pytest.approx(0.375)
    # two campaigns outside experiments share no label
    plain = variants_from_kpis((KpiRow("a", None), KpiRow("b", "x"), KpiRow("c", "x")))
    assert [v.label for v in plain] == ["a", "b / x", "c / x"]
    assert plain[0].conversion is None
    given = data(
        variants=(
            VariantResult("treatment", 10, 5, Decimal("100")),
            VariantResult("control", 0, 0, Decimal(0)),
        )
    )
    text = " ".join(parse(render_html(given)).text)
    assert "treatment" in text and "50.0 %" in text


def test_failed_checks_are_shown_as_failures() -> None:
    report = data(checks=(Check("revenue equals the ledger", False, "ledger 100.00, KPIs 120.00"),))
    assert "FAIL  revenue equals the ledger: ledger 100.00, KPIs 120.00" in render_text(report)
    assert "FAILED" in " ".join(parse(render_html(report)).text)

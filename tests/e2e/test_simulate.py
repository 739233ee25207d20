"""``tgw simulate`` end to end (issue #8): the gateway and every simulator over loopback on the simulated
clock, a small population of the shipped test scenario, and the report checked for internal consistency.

Nothing is mocked: the gateway's ingest (HTTP and Diameter), campaign runner (SQLite), SMPP ESME, STK
push and USSD service talk to the SMSC simulator, the handsets' SIM applets and the billing simulator
over real sockets, as ``tgw simulate`` runs them.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from campaign_core.model import RecordKind
from simulators.billing import BillingConfig, FaultConfig, LedgerKind
from simulators.simulate import SimulationResult, consistency_checks, simulate_command

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "scenarios" / "upsell_ab.yaml"  # what `make demo` runs, on fewer people
SMALL = ROOT / "configs" / "scenarios" / "small.yaml"
BILLING = ROOT / "configs" / "simulators" / "billing.yaml"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the scenario names its campaign directory relative to the project


def _run(
    out: Path,
    *,
    scenario: Path = DEMO,
    subscribers: int = 400,
    days: int = 7,
    billing: Path | None = BILLING,
) -> SimulationResult:
    result, files = simulate_command(scenario, out, subscribers=subscribers, days=days, billing=billing)
    assert files.html.exists() and files.json.exists() and files.text.exists()
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, Path]:
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)
    out = tmp_path_factory.mktemp("sim")
    try:
        return _run(out), out
    finally:
        mp.undo()


def test_every_consistency_check_passes(run: tuple[SimulationResult, Path]) -> None:
    result, _ = run
    failed = {name: detail for name, (passed, detail) in result.checks.items() if not passed}
    assert not failed
    assert len(result.checks) == 5


def test_the_journeys_ran_over_every_channel(run: tuple[SimulationResult, Path]) -> None:
    result, _ = run
    counters = result.counters
    # usage came in by both ingest paths, and the subscribers saw dialogs and texts and dialled codes
    assert counters.notifications_http > 0 and counters.notifications_diameter > 0
    assert counters.dialogs_shown > 0 and counters.dialogs_answered > 0
    assert counters.sms_received > 0
    rows = {(row.campaign_id, row.variant): row for row in result.rows}
    new = rows[("upsell_new", "new")]
    old = rows[("upsell_old", "old")]
    assert new.contacts.get("stk", 0) > 0  # the new journey opens with the DSTK dialog
    assert set(old.contacts) == {"sms"}  # the old one only texts
    assert new.activations > 0
    kinds = {record.kind for record in result.records}
    assert {RecordKind.TRIGGER, RecordKind.SCORED, RecordKind.CONTACT, RecordKind.FULFILLED} <= kinds


def test_kpis_agree_with_the_trail_and_the_ledger(run: tuple[SimulationResult, Path]) -> None:
    result, _ = run
    fulfilled = [r for r in result.records if r.kind is RecordKind.FULFILLED]
    by_row: dict[tuple[str | None, str | None], Decimal] = {}
    for record in fulfilled:
        key = (record.campaign_id, record.variant)
        by_row[key] = by_row.get(key, Decimal(0)) + Decimal(str(record.detail["price"]))
    for row in result.rows:
        assert row.activations <= row.responses or row.control
        assert row.offers <= row.triggers
        if not row.control:
            assert row.revenue == by_row.get((row.campaign_id, row.variant), Decimal(0))
    treated = sum(row.activations for row in result.rows if not row.control)
    assert treated == len(result.billing.activations()) == len(fulfilled)
    ledger = sum((e.amount for e in result.billing.ledger() if e.kind is LedgerKind.ACTIVATION), Decimal(0))
    assert ledger == sum((row.revenue for row in result.rows if not row.control), Decimal(0))
    control = [row for row in result.rows if row.control]
    assert control and all(not row.contacts and row.offers == 0 for row in control)
    assert result.billing.reconcile() == []  # every balance and debt follows from the ledger


def test_a_broken_trail_fails_the_checks(run: tuple[SimulationResult, Path]) -> None:
    """The checks can fail: drop the responses from the trail and the trace check says so."""
    result, _ = run
    without_responses = [r for r in result.records if r.kind is not RecordKind.RESPONSE]
    checks = consistency_checks(without_responses, result.billing, result.rows)
    passed, detail = checks["every activation traces to an offer and a response"]
    assert not passed and "without an offer or a response" in detail


def test_the_same_seed_gives_the_same_report(run: tuple[SimulationResult, Path], tmp_path: Path) -> None:
    _, first = run
    _run(tmp_path)
    assert (tmp_path / "report.json").read_bytes() == (first / "report.json").read_bytes()
    assert (tmp_path / "report.html").read_bytes() == (first / "report.html").read_bytes()
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["seed"] == 20260601 and data["population"] == 400 and data["days"] == 7
    assert data["assumptions"]  # the behaviour assumptions are stated next to the results


def test_billing_faults_never_activate_twice(tmp_path: Path) -> None:
    """A third of billing's answers are lost or refused: the client retries with the offer id as the
    idempotency key, and billing still holds exactly one activation per fulfilled offer."""
    config = BillingConfig.model_validate(
        {"faults": FaultConfig(seed=3, unavailable=0.2, dropped=0.15, latency=(0.01, 0.2)).model_dump()}
    )
    config_file = tmp_path / "billing.json"
    config_file.write_text(json.dumps(config.model_dump(mode="json")))
    result = _run(
        tmp_path / "out", scenario=SMALL, subscribers=100, days=4, billing=_yaml(config_file, tmp_path)
    )
    failed = {name: detail for name, (passed, detail) in result.checks.items() if not passed}
    assert not failed
    assert result.billing.activations()
    # the faults happened, and the client retried through them
    assert result.billing_server.dropped > 0 and result.billing_server.unavailable > 0
    assert result.billing_client.retries > 0


def _yaml(json_file: Path, tmp_path: Path) -> Path:
    """JSON is YAML: the billing loader reads it as it is."""
    target = tmp_path / "billing.yaml"
    target.write_text(json_file.read_text())
    return target


RENEWING = """\
name: renewing
seed: 11
start: "2026-06-01T00:00:00+03:00"
days: 4
subscribers: 40
first_msisdn: "254711000000"
campaigns: configs/campaigns
timezone: Africa/Nairobi

population:
  packages:
    - package: monthly_1gb      # recurring; this first period ends within a day or two
      share: 100%
      validity_days: 2
  balance: {kind: choice, values: [5000]}   # every renewal is paid
  tenure_days: {kind: uniform, low: 30, high: 2000}
  top_up:
    interval_days: {kind: uniform, low: 3, high: 10}
    amount: {kind: choice, values: [100]}
  stk_capable: 80%
  data_use:
    mb_per_day: {kind: lognormal, mean: 900, sigma: 0.2, max: 2000}   # a period's 90 % within a day or two
    day_sigma: 0.1

behaviour:
  stk_dialog: {ok: 0%, decline: 100%, delay_s: {kind: lognormal, median: 40, sigma: 0.8, max: 900}}
  sms_offer: {dial: 0%, delay_s: {kind: lognormal, median: 1800, sigma: 1.3, max: 86400}}
  choice: {largest: 45%, middle: 35%, smallest: 20%}
  interest_half_life: 12h
  warning: {save: 0%, usage_factor: 0.5}
  self_purchase: {probability: 0%, delay_s: {kind: lognormal, median: 21600, sigma: 1.0, max: 172800}}
  after_purchase: {usage_factor: 1.0}
"""


def test_renewed_packages_trigger_again_on_both_ingest_paths(tmp_path: Path) -> None:
    """Billing renews the recurring packages and the gateway hears of each new period, by DPI JSON for
    one half of the subscribers and by billing's feed for the Diameter (Gy) half, whose reports carry no
    period: the 90 % crossing of the new period triggers again for subscribers of both halves."""
    scenario = tmp_path / "renewing.yaml"
    scenario.write_text(RENEWING)
    result = _run(tmp_path / "out", scenario=scenario, subscribers=40, days=4)
    renewals = [e for e in result.billing.ledger() if e.kind is LedgerKind.RENEWAL]
    assert renewals and result.counters.renewals == len(renewals)
    for renewal in renewals:  # on the scenario's terms: 2-day periods, not the catalogue's 30 days
        first, last = renewal.reference.split(":")[1].split("..")
        assert (date.fromisoformat(last) - date.fromisoformat(first)).days == 1, renewal.reference
    thresholds: dict[str, int] = {}
    for record in result.records:
        if record.kind is RecordKind.TRIGGER and record.detail["kind"] == "threshold":
            thresholds[record.msisdn] = thresholds.get(record.msisdn, 0) + 1
    again = {msisdn for msisdn, count in thresholds.items() if count >= 2}
    halves = {(int(msisdn) - 254711000000) % 2 for msisdn in again}  # even: DPI JSON, odd: Diameter Gy
    assert halves == {0, 1}, f"90 % triggered twice for {sorted(again)}"
    assert all(passed for passed, _ in result.checks.values())


def test_pay_as_you_go_use_is_charged_before_an_activated_package(run: tuple[SimulationResult, Path]) -> None:
    """Billing has the network meter the use up to an activation first: the pay-as-you-go use of a
    subscriber out of data is charged at the activation's time instead of coming out of the new package."""
    result, _ = run
    entries = result.billing.ledger()
    charged_at = {(e.msisdn, e.at) for e in entries if e.kind is LedgerKind.PAYG}
    activations = [e for e in entries if e.kind is LedgerKind.ACTIVATION]
    settled = [e for e in activations if (e.msisdn, e.at) in charged_at]
    assert activations and settled, "no activation had its pay-as-you-go use charged first"
    for entry in settled:  # the charge comes before the package in the ledger
        kinds = [e.kind for e in entries if e.msisdn == entry.msisdn and e.at == entry.at]
        assert kinds.index(LedgerKind.PAYG) < kinds.index(LedgerKind.ACTIVATION)

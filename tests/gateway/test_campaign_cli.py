"""``tgw explain`` and ``tgw replay`` (gateway.campaigns.cli): the decision trail of a subscriber from the
store with every suppression's reason, and a recorded event log replayed through a campaign version,
byte for byte the same each time."""

from __future__ import annotations

import argparse
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from campaign.engine_fixtures import MSISDN, NEW_UPSELL, T0, campaign_set, exhausted

from campaign_core.engine import Engine
from campaign_core.model import (
    Activated,
    CreditScored,
    DeliveryReported,
    Event,
    Payment,
    Profile,
    ProfileUpdated,
    Purchased,
    Responded,
    ResponseChannel,
    Tick,
    offer_id,
)
from gateway.campaigns.cli import event_log_line, explain, read_event_log, register, replay
from gateway.campaigns.store import SqliteCampaignStore
from protocols.errors import ConfigError

CAMPAIGNS = Path(__file__).resolve().parents[2] / "configs" / "campaigns"
OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")
DND = "254700000999"  # on the fixture policy's do-not-disturb list
SMALL = {**NEW_UPSELL, "id": "upsell-small", "priority": 1}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tgw")
    register(top.add_subparsers(dest="command", required=True))
    return top


def journey() -> list[tuple[float, Event]]:
    """The reference journey, with a losing campaign, a trigger while the offer is open, a DND subscriber."""
    return [
        (T0 - 10, ProfileUpdated(Profile(MSISDN, segment="prepaid"))),
        (T0, exhausted(at=T0 - 2.0)),
        (T0 + 0.5, exhausted(trigger_id="again", at=T0)),
        (T0 + 1, CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100))),
        (T0 + 60, DeliveryReported(f"{OFFER}:0", True)),
        (T0 + 660, Tick()),
        (T0 + 700, Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*100#")),
        (T0 + 703, Activated(OFFER, "data-100mb", Payment.CREDIT, Decimal(50))),
        (T0 + 800, exhausted(msisdn=DND)),
        (
            T0 + 801,
            CreditScored(
                f"{offer_id('upsell-exhaustion', f'{DND}/data-1gb/p1/100')}:score",
                DND,
                Decimal(0),
                Decimal(100),
            ),
        ),
    ]


def recorded_store(path: Path) -> None:
    engine = Engine(campaign_set(campaigns=[NEW_UPSELL, SMALL]))
    with SqliteCampaignStore(path) as store:
        for now, event in journey():
            store.append(event, now, engine.handle(event, now))


def test_explain_prints_each_step_with_the_suppression_reasons(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.db"
    recorded_store(path)
    out = io.StringIO()
    with SqliteCampaignStore(path) as store:
        count = explain(store, MSISDN, out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0] == f"decision trail of {MSISDN}: {count} records"
    kinds = [line.split()[1] for line in lines[1:] if line.startswith("20")]
    assert kinds[:5] == ["trigger", "suppressed", "eligible", "trigger", "suppressed"]
    for kind in ("scored", "contact", "delivered", "response", "activation", "fulfilled", "closed"):
        assert kind in kinds, kind
    assert 'reason="arbitration: upsell-exhaustion goes first"' in text  # the losing campaign
    assert f'reason="offer {OFFER} of this campaign is still open"' in text  # the second trigger
    assert "channel=stk" in text and "channel=sms" in text and "outcome=activated" in text
    assert "2026-06-01T09:00:00.000Z" in text  # the trigger's time, UTC
    assert "pending commands: 7" in text  # nothing executed them: this store was written without a runner

    out = io.StringIO()
    with SqliteCampaignStore(path) as store:
        explain(store, DND, out)
    assert out.getvalue().count('reason="do not disturb"') == 2  # the push and the SMS step


def test_explain_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "campaigns.db"
    recorded_store(path)
    args = parser().parse_args(["explain", MSISDN, "--store", str(path), "--json"])
    assert args.func(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records = [line for line in lines if line["type"] == "Record"]
    assert (
        records[0]["kind"] == "trigger" and records[0]["detail"]["trigger_id"] == f"{MSISDN}/data-1gb/p1/100"
    )
    pending = {line["type"] for line in lines if line.get("pending")}
    assert pending == {"QueryCredit", "PushStk", "SendSms", "Activate", "Reply"}
    args = parser().parse_args(["explain", "254711111111", "--store", str(path)])
    assert args.func(args) == 1
    assert "nothing recorded about 254711111111" in capsys.readouterr().err
    args = parser().parse_args(["explain", MSISDN, "--store", str(tmp_path / "missing.db")])
    with pytest.raises(ConfigError, match="no such campaign store"):
        args.func(args)


def write_log(path: Path, events: list[tuple[float, Event]]) -> None:
    path.write_text("".join(event_log_line(event, now) + "\n" for now, event in events), encoding="utf-8")


def test_replay_is_byte_identical_and_matches_the_live_decisions(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    write_log(log, journey())
    campaigns = campaign_set(campaigns=[NEW_UPSELL, SMALL])
    outputs = []
    for as_json in (False, False, True, True):
        out = io.StringIO()
        with log.open(encoding="utf-8") as lines:
            replay(campaigns, read_event_log(lines, str(log)), out, as_json=as_json)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3]
    text = outputs[0]
    assert "line 2: TriggerRaised" in text and "-> QueryCredit" in text and "-> Activate" in text
    assert 'reason="do not disturb"' in text
    table = text.split("\n\n")[-1].splitlines()
    assert table[0].split()[:2] == ["campaign", "variant"]
    (row,) = [line for line in table if line.startswith("upsell-exhaustion")]
    assert "sms=1 stk=1" in row and "50.0%" in row  # the DND subscriber was eligible, never contacted
    # the JSON lines hold exactly the records the live engine wrote to the store
    store_path = tmp_path / "campaigns.db"
    recorded_store(store_path)
    with SqliteCampaignStore(store_path) as store:
        live = [json.loads(json.dumps(_record_json(r))) for r in store.records()]
    replayed = [json.loads(line) for line in outputs[2].splitlines()]
    replayed_records = [{k: v for k, v in line.items() if k not in ("line", "now")} for line in replayed if line["type"] == "Record"]  # fmt: skip
    assert replayed_records == live
    kpis = [line for line in replayed if line["type"] == "KpiRow"]
    assert [(k["campaign_id"], k["triggers"], k["activations"], k["revenue"]) for k in kpis] == [
        ("upsell-exhaustion", 2, 1, "50"),
        ("upsell-small", 1, 0, "0"),  # won the second trigger; its scoring timed out
    ]


def _record_json(record: object) -> object:
    from campaign_core.codec import command_to_json
    from campaign_core.model import Record

    assert isinstance(record, Record)
    return command_to_json(record)


def shipped_log() -> list[tuple[float, Event]]:
    """Exhaustion triggers for 40 subscribers of the shipped upsell_ab experiment, credit scores for
    all, a purchase in the data shop by each one an hour later; no Tick lines (``--auto-tick``)."""
    events: list[tuple[float, Event]] = []
    for index in range(40):
        msisdn = f"2547100{index:05d}"
        trigger = exhausted(msisdn=msisdn, at=T0 + index)
        events.append((T0 + index, trigger))
        for campaign in ("upsell_new", "upsell_old"):
            key = offer_id(campaign, trigger.trigger_id)
            events.append((T0 + index + 0.5, CreditScored(f"{key}:score", msisdn, Decimal(30), Decimal(100))))
    for index in range(40):
        msisdn = f"2547100{index:05d}"
        events.append(
            (T0 + 3600 + index, Purchased(f"p{index}", msisdn, "data_200mb", Decimal(50), T0 + 3600 + index))
        )
    return events


def test_replay_command_line_with_the_shipped_campaigns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    write_log(log, shipped_log())
    runs = []
    for _ in range(2):
        args = parser().parse_args(["replay", str(log), "--campaigns", str(CAMPAIGNS), "--auto-tick"])
        assert args.func(args) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    table = runs[0].split("\n\n")[-1]
    assert "upsell_ab" in table and "control (control)" in table
    assert "tick: Tick" in runs[0]  # the journeys went on at their deadlines without Tick lines
    args = parser().parse_args(["replay", str(log), "--campaigns", str(CAMPAIGNS), "--json", "--auto-tick"])
    assert args.func(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = {(k["campaign_id"], k["variant"]): k for k in lines if k["type"] == "KpiRow"}
    control = rows[("upsell_ab", "control")]
    assert control["control"] and control["triggers"] > 0
    assert control["activations"] == control["triggers"]  # every control subscriber bought within 24 h
    treated = rows[("upsell_new", "new")]
    assert treated["uplift"] == pytest.approx(treated["conversion"] - control["conversion"])


BAD_LINES = [
    ("not json\n", 1, "not JSON"),
    ("\n# a comment\n[1]\n", 3, "expected an object"),
    ('{"now": 1, "event": {"type": "Tick"}, "at": 2}\n', 1, "at: unknown member"),
    ('{"now": "later", "event": {"type": "Tick"}}\n', 1, "now: expected epoch seconds"),
    ('{"now": 2, "event": {"type": "Tick"}}\n{"now": 1, "event": {"type": "Tick"}}\n', 2, "now: 1 is before"),
    ('{"now": 1, "event": {"type": "TriggerRaised", "trigger_id": "t"}}\n', 1, "TriggerRaised.kind: missing"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line", "reason"), BAD_LINES)
def test_a_bad_log_line_is_named(tmp_path: Path, content: str, line: int, reason: str) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(content, encoding="utf-8")
    args = parser().parse_args(["replay", str(log), "--campaigns", str(CAMPAIGNS)])
    with pytest.raises(ConfigError) as info:
        args.func(args)
    assert (info.value.file, info.value.line) == (str(log), line)
    assert reason in info.value.reason


def test_replay_of_a_missing_log(tmp_path: Path) -> None:
    args = parser().parse_args(["replay", str(tmp_path / "nope.jsonl"), "--campaigns", str(CAMPAIGNS)])
    with pytest.raises(ConfigError, match="cannot read the event log"):
        args.func(args)


def test_the_control_arm_gets_as_long_to_convert_as_the_slowest_treated_arm() -> None:
    """The shipped A/B experiment: the delayed arm waits 48 h, then the DSTK dialog (30 min hard cap),
    then the SMS (24 h), and its offer stands 24 h: a control subscriber's purchase counts for that long
    after the assignment, not only within the offer's own 24 h."""
    from campaign_core.kpis import compute_kpis
    from campaign_core.model import Record, RecordKind
    from gateway.campaigns.cli import attribution_windows
    from gateway.campaigns.loader import load_campaign_dir

    campaigns = load_campaign_dir(CAMPAIGNS, ussd_menus=None)
    windows = attribution_windows(campaigns)
    assert windows == {"upsell_ab": 48 * 3600 + 30 * 60 + 24 * 3600 + 24 * 3600}
    assigned = Record(
        RecordKind.ASSIGNED,
        0.0,
        MSISDN,
        "upsell_ab",
        "control",
        None,
        {"experiment": "upsell_ab", "control": True},
    )
    three_days = Record(
        RecordKind.PURCHASE, 3 * 86400.0, MSISDN, None, None, None, {"price": "50.00", "at": 3 * 86400.0}
    )
    rows = compute_kpis([assigned, three_days], windows=windows)
    control = next(row for row in rows if row.control)
    assert control.triggers == 1 and control.activations == 1 and control.revenue == Decimal("50.00")
    assert (
        next(
            r for r in compute_kpis([assigned, three_days], windows={"upsell_ab": 86400.0}) if r.control
        ).activations
        == 0
    )

"""``tgw replay`` and ``tgw validate`` (gateway.campaigns.cli, gateway.campaigns.validate) on hostile input:
every mistake is ``tgw: file:line: reason`` with exit status 64 (replay) or ``file:line: reason`` with 1
(validate), never a traceback. Driven through ``gateway.cli.main``, the ``tgw`` entry point."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "configs" / "campaigns"
MENUS = ROOT / "configs" / "ussd" / "menus.yaml"

HUGE = "1" + "0" * 400  # an integer no float holds
TRIGGER = '{"type": "TriggerRaised", "trigger_id": "t", "kind": "exhausted", "msisdn": "254700000001"'

HOSTILE_LINES = [
    # epoch seconds beyond a float: OverflowError escaped the range check
    (f'{{"now": {HUGE}, "event": {{"type": "Tick"}}}}\n', 1, "now: expected epoch seconds"),
    # a JSON nesting deeper than the decoder's recursion: RecursionError escaped
    ("[" * 100_000 + "]" * 100_000 + "\n", 1, "nested too deeply"),
    # the same in an event's float field: OverflowError escaped campaign_core.codec's float decoder
    (f'{{"now": 1, "event": {TRIGGER}, "event_time": {HUGE}}}}}\n', 1, "event_time: 1000"),
]


@pytest.mark.parametrize(("content", "line", "reason"), HOSTILE_LINES, ids=["huge-now", "deep", "huge-field"])
def test_replay_names_the_hostile_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, line: int, reason: str
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"now": 0, "event": {"type": "Tick"}}\n' * (line - 1) + content, encoding="utf-8")
    status = main(["replay", str(log), "--campaigns", str(CAMPAIGNS)])
    err = capsys.readouterr().err
    assert status == 64, err
    assert err.startswith(f"tgw: {log}:{line}: "), err
    assert reason in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_replay_of_an_empty_log_prints_the_empty_table_twice_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("", encoding="utf-8")
    outputs = []
    for _ in range(2):
        assert main(["replay", str(log), "--campaigns", str(CAMPAIGNS), "--auto-tick"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].strip().startswith("campaign  variant")


def _menus_with_buy_args(tmp_path: Path, args: str) -> Path:
    """The shipped menus with the one-shot purchase code's handler args replaced by ``args``."""
    text = MENUS.read_text(encoding="utf-8")
    original = 'args: {mb: "{mb}", channel: ussd_code}'
    assert original in text
    menus = tmp_path / "menus.yaml"
    menus.write_text(text.replace(original, args), encoding="utf-8")
    return menus


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        # str.isdigit is true for superscripts, which int() refuses: ValueError escaped
        ('args: {mb: "²", channel: ussd_code}', "buys ² MB"),
        # a signalling NaN makes Decimal's != raise InvalidOperation
        ('args: {mb: "{mb}", price: "sNaN", channel: ussd_code}', "costs sNaN"),
    ],
    ids=["superscript-mb", "snan-price"],
)
def test_validate_reports_odd_handler_args(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: str, reason: str
) -> None:
    directory = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS, directory)
    menus = _menus_with_buy_args(tmp_path, args)
    status = main(["validate", str(directory), "--ussd-menus", str(menus)])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines and all(re.match(rf"{re.escape(str(directory))}/\S+\.yaml:\d+: ", x) for x in lines), err
    assert any(reason in x for x in lines), err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not an SQLite database"),
        (b"plain text, no database\n", "not an SQLite database"),
        (None, "no events, outbox, records, schema_version table"),  # another program's SQLite file
    ],
    ids=["empty", "text", "other-sqlite"],
)
def test_explain_refuses_a_file_that_is_no_campaign_store_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, reason: str
) -> None:
    path = tmp_path / "x.db"
    if content is None:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (body TEXT)")
        db.commit()
        db.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    assert main(["explain", "254700000001", "--store", str(path)]) == 64
    assert f"not a campaign store: {reason}" in capsys.readouterr().err
    assert path.read_bytes() == before  # no tables added, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]  # no WAL or journal left either

"""``tgw explain`` and ``tgw replay``: the decision trail of a subscriber, and a campaign version run over
a recorded event log (issue #7). ``register(subparsers)`` adds both to the ``tgw`` parser.

``tgw explain MSISDN --store FILE [--json]``
    prints the subscriber's decision trail from the campaign store (``gateway.campaigns.store``), one line
    per ``Record`` in order: triggers, experiment assignment, eligibility, every suppression with its
    reason, scoring, contacts, receipts, responses, activation, and how each offer closed; then the
    commands for the subscriber still pending in the outbox. Times (the record's, and ``until``,
    ``event_time``, ``at`` in its detail) are ISO 8601 UTC to the millisecond. ``--json``: one JSON
    object per record (``campaign_core.codec``: times stay epoch seconds), then one per pending command. Exit status 0, or 1 when the store holds
    nothing about the MSISDN.

``tgw replay EVENTS.jsonl --campaigns DIR [--json] [--auto-tick]``
    runs the events of EVENTS.jsonl through a fresh engine of the campaign directory DIR (loaded and
    checked like ``tgw validate``, without the USSD menu routing check, which replay does not need) and
    prints what it decided, without contacting anyone: per event, the records and the commands it would
    have sent; then the KPI table (``campaign_core.kpis``). Deterministic: the same log and the same
    directory print the same bytes. Each line of EVENTS.jsonl is ``{"now": <epoch seconds>, "event":
    {...}}`` with the event in ``campaign_core.codec`` form (blank lines and lines starting with ``#``
    are skipped); ``now`` may not go back. ``--auto-tick`` hands the engine a ``Tick`` at each deadline
    that falls before the next event, and after the last event until none is left, for a hand-written
    log without the ``Tick`` lines a gateway records. ``--json``: one JSON object per output
    (``{"line": n, "now": t, ...command}``), then one per KPI row (``{"type": "KpiRow", ...}``). Exit
    status 0; a malformed log line is a usage error naming the file and line (64, from ``tgw``).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from campaign_core.codec import command_to_json, event_from_json, event_to_json
from campaign_core.config import CampaignSet
from campaign_core.engine import Engine
from campaign_core.kpis import compute_kpis, render_kpi_table
from campaign_core.model import Command, Event, Record, Tick
from gateway.campaigns.loader import load_campaign_dir
from gateway.campaigns.store import SqliteCampaignStore
from gateway.storage.sqlite_base import sqlite_uri
from protocols.errors import ConfigError, DecodeError

__all__ = [
    "attribution_windows",
    "detail_value",
    "event_log_line",
    "explain",
    "read_event_log",
    "register",
    "replay",
]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``explain`` and ``replay`` to the ``tgw`` sub-commands (each sets ``func(args) -> int``)."""
    explain_cmd = subparsers.add_parser(
        "explain", help="print the decision trail of one subscriber from the campaign store"
    )
    explain_cmd.add_argument("msisdn", metavar="MSISDN")
    explain_cmd.add_argument("--store", required=True, metavar="FILE", help="the campaign store (SQLite)")
    explain_cmd.add_argument("--json", action="store_true", help="JSON lines instead of text")
    explain_cmd.set_defaults(func=_explain)

    replay_cmd = subparsers.add_parser(
        "replay", help="run a recorded event log through a campaign directory; print decisions and KPIs"
    )
    replay_cmd.add_argument("events", metavar="EVENTS.jsonl")
    replay_cmd.add_argument("--campaigns", required=True, metavar="DIR", help="the campaign directory")
    replay_cmd.add_argument("--json", action="store_true", help="JSON lines instead of text")
    replay_cmd.add_argument(
        "--auto-tick", action="store_true", help="tick the engine at each deadline (logs without Tick lines)"
    )
    replay_cmd.set_defaults(func=_replay)


# --- shared formatting -----------------------------------------------------------------------------


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _when(at: float) -> str:
    """UTC time of an epoch second, to the millisecond (``2026-06-01T09:00:00.000Z``)."""
    try:
        moment = datetime.fromtimestamp(at, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{at!r}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _value(value: object) -> str:
    if isinstance(value, str) and value and " " not in value and "=" not in value:
        return value
    return _dumps(value)


_TIMES = frozenset({"until", "event_time", "at"})
"""The keys of a record's detail that hold epoch seconds (a deferral's end, the network's or billing's
time of the trigger or purchase): the text shows them as UTC times like the record's own time."""


def detail_value(key: str, value: object) -> str:
    """A record detail's value as the text shows it (times as UTC, words bare, the rest as JSON)."""
    if key in _TIMES and isinstance(value, int | float) and not isinstance(value, bool):
        return _when(value)
    return _value(value)


def _record_line(record: Record) -> str:
    where = record.campaign_id or "-"
    if record.variant is not None:
        where += f"/{record.variant}"
    parts = [_when(record.at), f"{record.kind.value:<17}", where]
    if record.offer_id is not None:
        parts.append(f"offer={record.offer_id}")
    parts.extend(f"{key}={detail_value(key, value)}" for key, value in record.detail.items())
    return "  ".join(parts)


def _command_line(command: Command) -> str:
    data = command_to_json(command)
    name = data.pop("type")
    return f"{name:<17}  " + "  ".join(f"{key}={_value(value)}" for key, value in data.items())


# --- explain ---------------------------------------------------------------------------------------


def explain(store: SqliteCampaignStore, msisdn: str, out: IO[str], *, as_json: bool = False) -> int:
    """Write the decision trail of ``msisdn`` to ``out``; how many records it has."""
    records = store.records_of(msisdn)
    pending = [command for command, done_at, _note in store.outbox_of(msisdn) if done_at is None]
    if as_json:
        for record in records:
            out.write(_dumps(command_to_json(record)) + "\n")
        for command in pending:
            out.write(_dumps({"pending": True, **command_to_json(command)}) + "\n")
        return len(records)
    out.write(f"decision trail of {msisdn}: {len(records)} records\n")
    for record in records:
        out.write(_record_line(record) + "\n")
    if pending:
        out.write(f"pending commands: {len(pending)}\n")
        for command in pending:
            out.write("  " + _command_line(command) + "\n")
    return len(records)


def _explain(args: argparse.Namespace) -> int:
    path = Path(args.store)
    if not path.is_file():
        raise ConfigError("no such campaign store", str(path))
    problem = _not_a_campaign_store(path)
    if problem is not None:
        raise ConfigError(f"not a campaign store: {problem}", str(path))
    with SqliteCampaignStore(path) as store:
        found = explain(store, args.msisdn, sys.stdout, as_json=args.json)
    if not found:
        sys.stderr.write(f"tgw explain: nothing recorded about {args.msisdn}\n")
        return 1
    return 0


_STORE_TABLES = frozenset({"schema_version", "events", "records", "outbox"})


def _not_a_campaign_store(path: Path) -> str | None:
    """Why ``path`` is no campaign store, read without changing it, else None. Opening a store creates
    its tables in a file that has none, so explain must not open an empty file or another program's
    database as one."""
    with path.open("rb") as file:
        if file.read(16) != b"SQLite format 3\x00":
            return "not an SQLite database"
    try:
        db = sqlite3.connect(sqlite_uri(path, "ro"), uri=True, timeout=5.0)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.Error as exc:
        return str(exc)
    missing = sorted(_STORE_TABLES - tables)
    return f"no {', '.join(missing)} table" if missing else None


# --- replay ----------------------------------------------------------------------------------------


def event_log_line(event: Event, now: float) -> str:
    """One line of an EVENTS.jsonl file (without the newline)."""
    return _dumps({"now": now, "event": event_to_json(event)})


def read_event_log(lines: Iterable[str], source: str = "<events>") -> Iterator[tuple[int, float, Event]]:
    """``(line number, now, event)`` of each line of an event log; ``ConfigError`` naming the line."""
    last = float("-inf")
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"not JSON: {exc}", source, number) from None
        except RecursionError:  # the decoder recurses per level of nesting
            raise ConfigError("not JSON that can be read: nested too deeply", source, number) from None
        if not isinstance(data, dict):
            raise ConfigError('expected an object {"now": ..., "event": {...}}', source, number)
        unknown = sorted(set(data) - {"now", "event"})
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown member (expected now and event)", source, number)
        given = data.get("now")
        now = _epoch_seconds(given)
        if now is None:
            raise ConfigError(f"now: expected epoch seconds, got {_shown(given)}", source, number)
        if now < last:
            raise ConfigError(f"now: {given!r} is before the previous line's {last!r}", source, number)
        last = now
        try:
            event = event_from_json(data.get("event"))
        except DecodeError as exc:
            raise ConfigError(str(exc), source, number) from None
        except OverflowError as exc:  # an integer too large for a float field (the codec lets it through)
            raise ConfigError(f"event: a number out of range: {exc}", source, number) from None
        yield number, now, event


def _epoch_seconds(value: object) -> float | None:
    """``value`` as finite float seconds, or None (also for an integer too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def replay(
    campaigns: CampaignSet,
    events: Iterable[tuple[int, float, Event]],
    out: IO[str],
    *,
    as_json: bool = False,
    auto_tick: bool = False,
) -> None:
    """Run ``events`` (``read_event_log``) through a fresh engine of ``campaigns``; write each decision
    and the KPI table to ``out`` (see the module docstring). Contacts no one."""
    engine = Engine(campaigns)
    trail: list[Record] = []

    def emit(line: int, now: float, event: Event, outputs: Sequence[Command]) -> None:
        trail.extend(c for c in outputs if isinstance(c, Record))
        if as_json:
            for command in outputs:
                out.write(_dumps({"line": line, "now": now, **command_to_json(command)}) + "\n")
            return
        if not outputs:
            return
        label = "tick" if isinstance(event, Tick) else f"line {line}"
        out.write(f"{_when(now)}  {label}: {type(event).__name__}\n")
        for command in outputs:
            if isinstance(command, Record):
                out.write("  " + _record_line(command) + "\n")
            else:
                out.write("  -> " + _command_line(command) + "\n")

    def tick_until(line: int, until: float | None) -> None:
        while (due := engine.next_deadline()) is not None and (until is None or due <= until):
            emit(line, due, Tick(), engine.handle(Tick(), due))

    last_line = 0
    for line, now, event in events:
        if auto_tick:
            tick_until(line, now)
        emit(line, now, event, engine.handle(event, now))
        last_line = line
    if auto_tick:
        tick_until(last_line, None)
    rows = compute_kpis(trail, windows=attribution_windows(campaigns))
    if as_json:
        for row in rows:
            out.write(_dumps({"type": "KpiRow", **row.to_json()}) + "\n")
    else:
        out.write("\n" + render_kpi_table(rows))


def attribution_windows(campaigns: CampaignSet) -> dict[str, float]:
    """Per experiment, the control arm's attribution window (``campaign_core.kpis``): the longest time
    a treated subscriber of any arm has to convert after the trigger, i.e. the arm's delay, every
    step's ``after`` and ``hard_cap``, and the offer's ``expires_after``. An arm that waits 48 h, or a
    journey whose credit offer comes a day after a warning, converts later than the trigger's day, and
    the control arm is given as long."""
    windows: dict[str, float] = {}
    for experiment in campaigns.experiments:
        spans = [
            arm.delay
            + sum(step.after + step.hard_cap for step in config.journey)
            + config.offer.expires_after
            for arm in experiment.arms
            if arm.campaign is not None
            and (config := campaigns.campaign(arm.campaign)) is not None
            and config.offer is not None
        ]
        if spans:
            windows[experiment.id] = max(spans)
    return windows


def _replay(args: argparse.Namespace) -> int:
    campaigns = load_campaign_dir(args.campaigns, ussd_menus=None)
    path = Path(args.events)
    try:
        with path.open(encoding="utf-8") as lines:
            events = list(read_event_log(lines, str(path)))  # every line checked before any output
    except OSError as exc:
        raise ConfigError(f"cannot read the event log: {exc.strerror or exc}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", str(path)) from None
    replay(campaigns, events, sys.stdout, as_json=args.json, auto_tick=args.auto_tick)
    return 0

"""Campaign engine benchmark (issue #7): events per second through ``Engine.handle`` on one core for a
population of subscribers, and memory per tracked subscriber.

The engine runs the shipped reference campaign (``configs/campaigns``: catalogue, policy, the new
exhaustion-time upsell and the other shipped campaigns and experiment) on a population of ``--subscribers``
(1M by default). Phases, each timed on its own and all together:

1. ``profiles``: one ``ProfileUpdated`` per subscriber (billing's view: segment, tenure, zone, packages).
2. ``journeys``: for ``--journeys`` of them (default: everyone), the reference journey's events in the
   order the network and billing produce them: the exhaustion trigger, billing's credit score, the
   DSTK push's delivery receipt, a ``Tick`` per simulated minute (the waits expire and the SMS go out),
   the SMS receipts, a USSD answer from ``--answer-rate`` of them and billing's activation. Every phase
   comes at one instant of the simulated clock (a burst: daily packages running out at midnight), so the
   waits of 300k DSTK dialogs end in the same Tick.

Who exhausts first is a seeded shuffle of the subscribers (``--order shuffled``, the default): the
network sees exhaustion in an order of its own, not the order billing described the subscribers in,
which is also the order the engine allocated them in. ``--order sequential`` (what this bench did until
December 2026) walks the engine's memory in order and ran the triggers about 1.3x faster.

Events are built untimed, ``--chunk`` (1,000) at a time, and dropped once handled, as a gateway's
intakes make each as it comes; the collector is paused while a chunk is built, so a collection that falls
due runs inside the clock. (Whole phases built beforehand, ``--chunk 0``, were millions of objects alive
that the heap steward counted as growth: its full passes came for the bench's lists, not the engine's.)

The process's collector is set up as a running gateway's is (``gateway.runtime.settle_heap``: the heap
steward freezes what survives each collection, and makes a full pass once the frozen heap has doubled);
a full pass that falls due during a phase runs at the phase's end and counts in its time, as the gateway
runs it from its loop within a second. The collector's work is printed (collections by generation, the
longest pause, the full passes). Its object heap is on transparent huge pages as a running gateway's is
(``gateway.runtime.use_huge_pages``; ``TGW_HUGE_PAGES=0`` runs it on the default 4 KiB pages), and the
header says which.

Reported: events/s for each phase and overall (goal >= 200k/s on one core), and bytes per tracked
subscriber (``tracemalloc``, everything the engine holds divided by the subscribers: with profiles only,
and with an open offer each, waiting for an answer; goal <= 1 KB). No peer runs this workload; the figures are
absolute, on the machine of the run (``python -VV`` and the CPU are printed).

    .venv/bin/python bench/campaign_engine.py                    # 1M subscribers (about 2-4 minutes)
    .venv/bin/python bench/campaign_engine.py --subscribers 100000 --json
    .venv/bin/python bench/campaign_engine.py --no-memory --repeat 5   # the median of 5 fresh runs
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaign_core.engine import Engine  # noqa: E402
from campaign_core.model import (  # noqa: E402
    Activate,
    Activated,
    ActivePackage,
    CreditScored,
    DeliveryReported,
    Event,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    Responded,
    ResponseChannel,
    SendSms,
    Tick,
    TriggerKind,
    TriggerRaised,
)
from gateway.campaigns.loader import load_campaign_dir  # noqa: E402
from gateway.runtime import HeapSteward, settle_heap, use_huge_pages  # noqa: E402

SEED = 20260601  # the shuffle of who exhausts first: the same in every run
START = 1_780_304_400.0  # 2026-06-01 12:00 in Nairobi: outside the shipped quiet hours


def libpython() -> str:
    """How this interpreter holds libpython: ``shared`` (a libpython*.so mapped, as pyenv's and
    ``--enable-shared`` builds do: every call inside the interpreter goes through the PLT) or ``static``
    (linked into the executable, as Debian's python3 is). The static one ran the journeys 15-20 % faster on
    the same machine; ``unknown`` off Linux."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    return "shared" if "libpython" in maps else "static"


def pin(core: int) -> None:
    try:
        if (os.cpu_count() or 1) > core:
            os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        pass


def msisdn_of(index: int) -> str:
    return f"2547{index:08d}"


def profiles(indexes: range) -> list[tuple[Event, float]]:
    package = (ActivePackage("data_1000mb", "2026-05-15", "2026-06-14"),)
    return [
        (
            ProfileUpdated(Profile(msisdn_of(i), segment="prepaid", tenure_days=400, packages=package)),
            START - 100,
        )
        for i in indexes
    ]


class Journeys:
    """Feeds the reference journey of ``count`` subscribers through ``engine``, answering its commands
    as billing, the SMSC and the subscribers would (a deterministic share answers by USSD).

    Each phase's events are built before the phase runs (the gateway's intakes build them, not the
    engine): the clocks run only around the loop of ``handle`` calls, which also picks out the
    commands the next phase answers."""

    def __init__(
        self,
        engine: Engine,
        count: int,
        answer_rate: float,
        measure: Callable[[], int],
        steward: HeapSteward,
        *,
        chunk: int,
        shuffled: bool,
    ) -> None:
        self.engine = engine
        self.chunk = chunk
        self.shuffled = shuffled
        self.steward = steward
        self.measure = measure
        self.open_offers_memory = 0
        self.count = count
        self.answer_every = max(1, round(1 / answer_rate)) if answer_rate > 0 else 0
        self.events = 0
        self.seconds = 0.0  # wall time in the handle loops
        self.cpu_seconds = 0.0  # this process's CPU time in them
        self.phases: list[tuple[str, int, float]] = []  # (phase, events, wall seconds)

    def profiles(self, count: int) -> tuple[float, float]:
        """The ``ProfileUpdated`` of ``count`` subscribers, timed as the phases are, but counted apart:
        their (wall, CPU) seconds; ``seconds`` and the other totals start again after them."""
        self._phase("profiles", count, profiles)
        timed = self.seconds, self.cpu_seconds
        self.events = 0
        self.seconds = self.cpu_seconds = 0.0
        self.phases.clear()
        return timed

    def _phase(
        self,
        name: str,
        count: int,
        make: Callable[[range], list[tuple[Event, float]]],
        wanted: type | tuple[type, ...] = (),
        fields: tuple[str, ...] = (),
    ) -> list[Any]:
        """``handle`` the ``count`` (event, now) pairs ``make`` builds for each range of indexes, a chunk
        at a time (``chunked``); the ``fields`` of the commands of the ``wanted`` types, in order, one
        after the other in one flat list. The commands themselves are not kept: the gateway writes them
        to its store and lets them go, and a million of them held here would be the collector's work in
        every later phase, not the engine's."""
        handle = self.engine.handle
        kept: list[Any] = []
        keep = kept.extend
        pick = attrgetter(*fields) if len(fields) > 1 else (lambda command: (getattr(command, fields[0]),))
        seconds = cpu_seconds = 0.0
        for events in chunked(count, self.chunk, make):
            cpu, wall = time.process_time(), time.perf_counter()
            for event, now in events:
                for command in handle(event, now):
                    if isinstance(command, wanted):
                        keep(pick(command))
            seconds += time.perf_counter() - wall
            cpu_seconds += time.process_time() - cpu
            del events, event  # before the next chunk is made
        cpu, wall = time.process_time(), time.perf_counter()
        self.steward.maintain()  # the gateway runs it from its loop within a second of it falling due
        seconds += time.perf_counter() - wall
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds + time.process_time() - cpu
        self.events += count
        self.phases.append((name, count, seconds))
        return kept

    def run(self) -> None:
        now = START
        # exhaustion comes to subscribers in an order of its own, not the order billing described them in
        order = list(range(self.count))
        if self.shuffled:
            random.Random(SEED).shuffle(order)
        queries = self._phase(
            "exhaustion triggers",
            self.count,
            lambda indexes: [
                (
                    TriggerRaised(
                        f"{msisdn_of(i)}/data_1000mb/2026-05/100", TriggerKind.EXHAUSTED, msisdn_of(i), now - 2.0,
                        "data_1000mb", 100,
                    ),
                    now,
                )
                for i in map(order.__getitem__, indexes)
            ],
            QueryCredit,
            ("request_id", "msisdn"),
        )  # fmt: skip
        order.clear()
        no_balance, credit = Decimal(0), Decimal(120)  # billing scores each: 120 KES of credit, no balance
        pushes = self._phase(
            "credit scores (DSTK dialogs go out)",
            len(queries) // 2,
            lambda indexes: [
                (CreditScored(queries[2 * i], queries[2 * i + 1], no_balance, credit), now + 1)
                for i in indexes
            ],
            (PushStk, SendSms),
            ("command_id",),
        )
        queries.clear()
        # the DSTK dialogs are delivered
        self._phase(
            "DSTK receipts",
            len(pushes),
            lambda indexes: [(DeliveryReported(pushes[i], True), now + 5) for i in indexes],
        )
        pushes.clear()
        self.open_offers_memory = self.measure()  # every offer open, waiting for an answer
        # nobody answers the dialog: the waits expire, the SMS go out (a Tick a simulated minute)
        sms = self._phase(
            "ticks (the waits expire, the SMS go out)",
            39,
            lambda indexes: [(Tick(), now + 60 * (minute + 1)) for minute in indexes],
            SendSms,
            ("command_id", "msisdn"),
        )
        self._phase(
            "SMS receipts",
            len(sms) // 2,
            lambda indexes: [(DeliveryReported(sms[2 * i], True), now + 2500) for i in indexes],
        )
        answering = range(0, len(sms) // 2, self.answer_every) if self.answer_every else range(0)
        activations = self._phase(
            "USSD answers",
            len(answering),
            lambda indexes: [
                (
                    Responded(
                        f"mo-{answering[i]}",
                        sms[2 * answering[i] + 1],
                        ResponseChannel.USSD,
                        option_id="*123*100#",
                    ),
                    now + 3000,
                )
                for i in indexes
            ],
            Activate,
            ("offer_id", "package_id", "payment", "price"),
        )
        sms.clear()
        self._phase(
            "activations",
            len(activations) // 4,
            lambda indexes: [
                (
                    Activated(*activations[4 * i : 4 * i + 4]),
                    now + 3001,
                )  # offer_id, package_id, payment, price
                for i in indexes
            ],
        )


def chunked(
    count: int, chunk: int, make: Callable[[range], list[tuple[Event, float]]]
) -> Iterator[list[tuple[Event, float]]]:
    """``make``'s events for indexes 0 .. count - 1, ``chunk`` at a time (all at once for 0). The gateway's
    intakes make each event as it comes and drop it once handled; here at most a chunk of them is alive.
    The collector is paused while a chunk is built: a collection due then runs at the next allocation,
    which is inside the clock, so the engine's young objects are walked on its time, not the builder's."""
    step = chunk or max(count, 1)
    for start in range(0, count, step):
        gc.disable()
        try:
            events = make(range(start, min(start + step, count)))
        finally:
            gc.enable()
        yield events
        del events


def run(args: argparse.Namespace) -> dict[str, Any]:
    pin(0)
    heap = use_huge_pages()  # as a running gateway does, before its state is built (TGW_HUGE_PAGES=0: off)
    campaigns = load_campaign_dir(ROOT / "configs" / "campaigns", ussd_menus=None)
    journeys = min(args.journeys or args.subscribers, args.subscribers)
    steward = settle_heap(full_after_growth=args.full_after_growth or None)  # as a running gateway does
    if args.memory:  # before the profiles are made: the engine keeps them
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if args.memory else 0

    def measure() -> int:
        """What is allocated now, since ``base`` (the events' wrappers are gone by then)."""
        return tracemalloc.get_traced_memory()[0] - base if args.memory else 0

    engine = Engine(campaigns, accelerated=args.accelerated)
    feeder = Journeys(
        engine,
        journeys,
        args.answer_rate,
        measure,
        steward,
        chunk=args.chunk,
        shuffled=args.order == "shuffled",
    )
    # billing describes everyone first; the Profiles stay, held by the engine (the wrappers go)
    profile_seconds, profile_cpu = feeder.profiles(args.subscribers)
    profile_memory = measure()
    feeder.run()
    journey_seconds = feeder.seconds
    peak = feeder.open_offers_memory
    total_events = args.subscribers + feeder.events
    return {
        "python": platform.python_version(),
        "engine_path": "C" if engine.accelerated else "Python",  # campaign_core._journey, or not
        "heap_pages": f"2 MiB (kernel mode {heap.mode})" if heap.installed else f"4 KiB ({heap.reason})",
        "libpython": libpython(),
        "machine": platform.processor() or platform.machine(),
        "subscribers": args.subscribers,
        "journeys": journeys,
        "profile_events_per_s": args.subscribers / profile_seconds,
        "journey_events": feeder.events,
        "journey_events_per_s": feeder.events / journey_seconds,
        "events_per_s": total_events / (profile_seconds + journey_seconds),
        "journey_events_per_cpu_s": feeder.events / feeder.cpu_seconds,
        "events_per_cpu_s": total_events / (profile_cpu + feeder.cpu_seconds),
        "bytes_per_subscriber_profiles": profile_memory / args.subscribers if args.memory else None,
        "bytes_per_subscriber_open_offer": peak / args.subscribers if args.memory else None,
        "tracked": len(engine),
        "phases": [
            {
                "phase": name,
                "events": count,
                "seconds": seconds,
                "us_per_event": seconds / count * 1e6 if count else 0.0,
            }
            for name, count, seconds in feeder.phases
        ],
        "memory_traced": args.memory,
        # the collector over the whole run (profiles and journeys), as the gateway's steward saw it
        "gc_collections": list(steward.stats.collections),
        "gc_seconds": sum(steward.stats.pause_seconds)
        + steward.stats.full_pass_seconds
        + steward.stats.count_seconds,
        "gc_longest_pause_s": max([*steward.stats.longest_pause, 0.0]),
        "gc_full_passes": steward.stats.full_passes,
        "gc_full_pass_seconds": steward.stats.full_pass_seconds,
        "gc_passes_skipped": steward.stats.passes_skipped,  # due, but the frozen heap's count said no
        "gc_count_seconds": steward.stats.count_seconds,
    }


def repeated(args: argparse.Namespace) -> dict[str, Any]:
    """``run`` ``args.repeat`` times, each in a fresh interpreter; the run of the median journey rate, with
    every run's journey and overall rates."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--json", "--subscribers", str(args.subscribers)]
    argv += ["--journeys", str(args.journeys), "--answer-rate", str(args.answer_rate)]
    argv += ["--full-after-growth", str(args.full_after_growth)]
    argv += ["--chunk", str(args.chunk), "--order", args.order]
    if not args.accelerated:
        argv.append("--python-engine")
    if not args.memory:
        argv.append("--no-memory")
    runs = [
        json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        for _ in range(args.repeat)
    ]
    runs.sort(key=lambda r: r["journey_events_per_s"])
    median = dict(runs[len(runs) // 2])
    median["journey_events_per_s_runs"] = [r["journey_events_per_s"] for r in runs]
    median["events_per_s_runs"] = [r["events_per_s"] for r in runs]
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument(
        "--journeys", type=int, default=0, help="subscribers who exhaust their package (default all)"
    )
    parser.add_argument("--answer-rate", type=float, default=0.3)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip tracemalloc (it slows the run)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs, each in a fresh process; the median run is shown (a shared machine varies by 20 %% and more)",
    )
    parser.add_argument(
        "--full-after-growth",
        type=float,
        default=2.0,
        help="the heap steward's full pass when the frozen heap grew this much (0: never)",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=1_000,
        help="events built (untimed) and alive at once, as a gateway's intakes hold a few; 0: each phase's all at once",
    )
    parser.add_argument(
        "--order",
        choices=("shuffled", "sequential"),
        default="shuffled",
        help="who exhausts first: a seeded shuffle of the subscribers (default), or billing's order",
    )
    parser.add_argument(
        "--python-engine",
        dest="accelerated",
        action="store_false",
        help="the engine's Python paths only, without its C accelerator (campaign_core._journey)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = repeated(args) if args.repeat > 1 else run(args)
    if args.json:
        print(json.dumps(result))
        return 0
    if args.repeat > 1:
        print(
            f"{args.repeat} runs, journey events/s: "
            + ", ".join(f"{rate:,.0f}" for rate in result["journey_events_per_s_runs"])
            + "; the median run:"
        )
    print(
        f"campaign engine, {result['subscribers']:,} subscribers, {result['journeys']:,} reference journeys "
        f"(Python {result['python']}, libpython {result['libpython']}, engine paths {result['engine_path']}, heap pages {result['heap_pages']}, one core{'; tracemalloc on, which slows it' if args.memory else ''})"
    )
    print(f"  profiles:  {result['profile_events_per_s']:>12,.0f} events/s")
    print(
        f"  journeys:  {result['journey_events_per_s']:>12,.0f} events/s ({result['journey_events']:,} events)"
    )
    print(f"  overall:   {result['events_per_s']:>12,.0f} events/s (goal 200,000)")
    for phase in result["phases"]:  # where the journeys' time goes
        print(
            f"    {phase['phase']:<42} {phase['events']:>10,} events {phase['seconds']:>7.2f} s"
            f" {phase['us_per_event']:>10,.1f} us/event"
        )
    print(
        f"  collector: {result['gc_seconds']:.2f} s in all, collections by generation "
        f"{result['gc_collections']}, longest pause {result['gc_longest_pause_s'] * 1000:.0f} ms, "
        f"{result['gc_full_passes']} full passes ({result['gc_full_pass_seconds']:.2f} s), "
        f"{result['gc_passes_skipped']} skipped after counting the frozen heap ({result['gc_count_seconds']:.2f} s)"
    )
    print(
        f"  per CPU second: journeys {result['journey_events_per_cpu_s']:,.0f}, "
        f"overall {result['events_per_cpu_s']:,.0f} events"
    )
    if args.memory:
        print(
            f"  memory:    {result['bytes_per_subscriber_profiles']:>12,.0f} B per subscriber with its profile, "
            f"{result['bytes_per_subscriber_open_offer']:,.0f} B with an open offer each (goal 1,024)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

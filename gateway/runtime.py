"""Process-wide settings a long-running gateway process applies once it has started.

The cyclic garbage collector (CPython ``gc``): the gateway allocates a few container objects per
usage event and per PDU (the event, its trigger, lists), nearly all of them acyclic and short-lived,
while it holds a large long-lived state (one trigger-detector record per tracked package, the campaign
engine's subscribers and offers: millions of objects at 1M subscribers). With CPython's default
thresholds (700, 10, 10) a young collection runs every few hundred events and the full collections
walk that whole state again and again: 1.3-1.8 us of collector time per event on the batched HTTP
ingest path (bench/ingest.py), a fifth of the server's CPU. ``settle_heap``:

- moves everything alive at that moment (imports, configuration, the state recovered from the
  journal) into the permanent generation (``gc.freeze``), so no collection walks it again;
- raises the young-generation threshold to ``young`` allocations (default 100,000: a few MB of
  young objects at most) and spaces the older collections out;
- installs a ``HeapSteward``, which keeps the state the process grows while it runs out of the older
  generations too (below).

Measured with bench/ingest.py: collector time 1.3-1.8 -> 0.2 us per event.

The steward. Whatever survives a collection is frozen at once (a ``gc.callbacks`` hook), so every
object is walked by the collector once, in the young collection after its birth, and never again. The
middle and full collections then find nothing to walk: at 1M subscribers the engine's growing state
made middle collections of 0.6-1.5 s (bench/campaign_engine.py), each an event loop stall; with the
steward, between full passes, the longest pause is a young collection (30-150 ms). The price: a
reference cycle that was alive at a collection and dies later is not freed while it is frozen. So
once the frozen objects may have grown to ``full_after_growth`` times their number after the last
full pass (2: as often as a growing array is copied), ``maintain()`` unfreezes, collects everything
and freezes again, counting what it reclaimed. The growth is the sum of what each collection froze:
the objects it left in the older generations, which it has just walked itself (counting the whole
frozen heap instead walks every frozen object, and doing that at every collection cost 20-30 % of the
engine's time at 1M subscribers; the earlier bound, collections x the young threshold, overstated the
growth where most new objects die young or are untracked, as the campaign engine's C paths make
them, and ran a pass four times as often as due). The pass walks the whole heap as a full collection does (2-4.5 s at the state of 1M
subscribers), but at most once per doubling: CPython's own rule runs one at every 25 % of growth once
the older thresholds allow. Leaked cycles can at most double the heap before a pass comes. The sum of
what the collections froze also counts a burst that was alive at one and has died since (the commands
of a Tick that sent 300k SMS at once), so before it runs the pass ``maintain()`` counts the frozen heap
(``gc.get_freeze_count()``: one walk of the frozen list, a small part of a pass) and skips the pass
when the heap has not really grown that much (``GcStats.passes_skipped``). Measured on
``tgw simulate`` (gateway and every simulator in one process, 5,000 subscribers, 20 days): the same
255 cyclic objects left at the end with and without the steward, so nothing was kept alive by freezing.

``maintain()`` cannot run inside the collector's callback (``gc.collect`` does nothing during a
collection), so the hook only marks the pass due and the gateway polls ``maintain`` from its loop
(``HeapSteward.watch``). Call ``settle_heap`` after the service has started (recovery done), from
the process's entry point: it changes the whole process, which a library must not do on its own.

``use_huge_pages`` puts pymalloc's arenas on transparent huge pages (``gateway/_hugeheap.c`` says how
and why; the kernel's admin guide, "Transparent Hugepage Support", on the ``madvise`` mode). Call it
first in the entry point, before the state is built: ``tgw run`` and ``tgw ingest`` do.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GcStats",
    "HeapSteward",
    "HugeHeap",
    "current_steward",
    "huge_page_stats",
    "release_heap",
    "settle_heap",
    "thp_mode",
    "use_huge_pages",
]

GENERATIONS = 3
_log = logging.getLogger("tgw.runtime")


@dataclass
class GcStats:
    """What the collector did since the steward was installed, by generation (0 young, 2 full)."""

    collections: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    pause_seconds: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    longest_pause: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    full_passes: int = 0  # maintain(): unfreeze, collect everything, freeze
    full_pass_seconds: float = 0.0
    passes_skipped: int = 0  # due by the survivors' count, but the frozen heap had not grown enough
    count_seconds: float = 0.0  # maintain()'s counts of the frozen heap
    reclaimed: int = 0  # unreachable objects the full passes found


class HeapSteward:
    """Freezes what survives each collection; a full pass when the frozen heap has grown (module
    docstring). ``clock`` is a monotonic clock in seconds (only pauses are measured with it)."""

    def __init__(self, full_after_growth: float | None = 2.0, clock: Callable[[], float] = time.perf_counter):
        if full_after_growth is not None and full_after_growth <= 1.0:
            raise ValueError(
                f"full_after_growth must be above 1 (or None for never), not {full_after_growth}"
            )
        self.full_after_growth = full_after_growth
        self.stats = GcStats()
        self._clock = clock
        self._started = 0.0
        self._baseline = 0  # frozen objects after the last full pass (or the install)
        self._grown = 0  # objects frozen by the collections since then
        self.full_due = False
        self.installed = False

    def install(self) -> None:
        """Freeze what is alive now and hook the collector (idempotent)."""
        if self.installed:
            return
        gc.freeze()
        self._baseline = gc.get_freeze_count()
        gc.callbacks.append(self._on_collection)
        self.installed = True

    def uninstall(self) -> None:
        """Unhook the collector; what is frozen stays frozen (``gc.unfreeze`` is the caller's)."""
        if self.installed:
            gc.callbacks.remove(self._on_collection)
            self.installed = False

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        pause = self._clock() - self._started
        generation = info["generation"]
        stats = self.stats
        stats.collections[generation] += 1
        stats.pause_seconds[generation] += pause
        stats.longest_pause[generation] = max(stats.longest_pause[generation], pause)
        self._grown += _survivors()
        gc.freeze()  # the survivors: no later collection walks them again
        growth = self.full_after_growth
        if growth is not None and self._grown >= (growth - 1) * max(self._baseline, 1):
            self.full_due = True

    def maintain(self) -> int:
        """The full pass if it is due (see the module docstring): the objects reclaimed, else 0."""
        if not self.full_due:
            return 0
        self.full_due = False
        stats = self.stats
        started = self._clock()
        # The survivors' sum counts a burst that was alive at a collection and has died since (one
        # Tick's commands) as growth. One walk of the frozen list says what is frozen now; a pass walks
        # every reference of every object, several times over.
        frozen = gc.get_freeze_count()
        stats.count_seconds += self._clock() - started
        growth = self.full_after_growth
        if growth is not None and frozen < growth * max(self._baseline, 1):
            self._grown = max(frozen - self._baseline, 0)
            stats.passes_skipped += 1
            return 0
        started = self._clock()
        gc.unfreeze()
        # the pass is ours: it must not count as (or freeze from) an ordinary collection
        hooked = self.installed
        if hooked:
            gc.callbacks.remove(self._on_collection)
        try:
            reclaimed = gc.collect()
        finally:
            gc.freeze()
            if hooked:
                gc.callbacks.append(self._on_collection)
        self._baseline = gc.get_freeze_count()  # one walk, after the pass's own walk of everything
        self._grown = 0
        stats.full_passes += 1
        stats.full_pass_seconds += self._clock() - started
        stats.reclaimed += reclaimed
        return reclaimed

    async def watch(self, interval: float = 1.0) -> None:
        """Run ``maintain`` every ``interval`` seconds of the running loop, until cancelled; each full
        pass is logged with what it reclaimed and how long the loop stood still for it."""
        while True:
            await asyncio.sleep(interval)
            if self.full_due:
                passes, seconds = self.stats.full_passes, self.stats.full_pass_seconds
                reclaimed = self.maintain()
                if self.stats.full_passes > passes:
                    _log.info(
                        "full garbage collection: %d objects reclaimed, %d frozen, %.3f s",
                        reclaimed,
                        gc.get_freeze_count(),
                        self.stats.full_pass_seconds - seconds,
                    )


def _survivors() -> int:
    """The objects in the older generations: at the end of a collection, what it left alive (the
    steward froze everything before it), no more than it walked."""
    return sum(len(gc.get_objects(generation)) for generation in range(1, GENERATIONS))


_process: dict[str, HeapSteward] = {}  # "steward": the one settle_heap installed


def current_steward() -> HeapSteward | None:
    """The steward ``settle_heap`` installed in this process (for the metrics), if any."""
    return _process.get("steward")


def settle_heap(
    young: int = 100_000, middle: int = 50, old: int = 100, full_after_growth: float | None = 2.0
) -> HeapSteward:
    """Freeze what is alive now, space the collections out and install the process's ``HeapSteward``
    (see the module docstring); a second call keeps the steward and only sets the thresholds."""
    gc.collect()  # what is garbage now should not be frozen forever
    gc.set_threshold(young, middle, old)
    steward = _process.get("steward")
    if steward is None:
        steward = _process["steward"] = HeapSteward(full_after_growth)
    steward.install()
    return steward


def release_heap() -> None:
    """Undo ``settle_heap``'s hold on the collector: unhook and forget the steward, unfreeze (thresholds
    are the caller's). For tests and for a process that embeds the gateway and leaves it."""
    steward = _process.pop("steward", None)
    if steward is not None:
        steward.uninstall()
    gc.unfreeze()


# -- the object heap on transparent huge pages (gateway/_hugeheap.c) ---------------------------------

try:
    from gateway import _hugeheap
except ImportError:  # built only where a C compiler was at install
    _hugeheap = None  # type: ignore[assignment]

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
DEFAULT_RESERVE = 64 << 30  # address space only (MAP_NORESERVE): nothing is committed until touched
DEFAULT_HOLD = 128 << 20  # freed arenas kept resident for the next burst before blocks go back


@dataclass(frozen=True)
class HugeHeap:
    """What ``use_huge_pages`` did: ``reserved`` bytes of address space now hold pymalloc's arenas
    (0: not installed, ``reason`` says why), and the kernel's transparent huge page ``mode``
    (``always``, ``madvise``, ``never``; ``unknown`` where the setting cannot be read)."""

    reserved: int
    mode: str
    reason: str = ""

    @property
    def installed(self) -> bool:
        return self.reserved > 0


def thp_mode(setting: Path = THP_SETTING) -> str:
    """The kernel's transparent huge page mode: the bracketed word of ``always [madvise] never``."""
    try:
        text = setting.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return "unknown"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "unknown"


def use_huge_pages(
    reserve: int = DEFAULT_RESERVE,
    hold: int = DEFAULT_HOLD,
    environ: Mapping[str, str] = os.environ,
    setting: Path = THP_SETTING,
) -> HugeHeap:
    """Put pymalloc's arenas on transparent huge pages (``gateway/_hugeheap.c`` says how and why), at
    most once per process and for good; ``TGW_HUGE_PAGES=0`` in the environment keeps the default
    allocator. Call it first thing in the entry point of a long-running process, before its state is
    built: arenas already made stay where they are.

    Measured on a shared 2-core VM: random lookups in a 2M-key dict 1.56-1.77 -> 1.36-1.50 us in three
    pairs; bench/campaign_engine.py at 1M subscribers, journey events/s, nine interleaved pairs from
    -13 % to +32 %, median +12 % (the engine's lookups miss the TLB as well as the cache on 4 KiB
    pages)."""
    mode = thp_mode(setting)
    if environ.get("TGW_HUGE_PAGES", "1").strip().lower() in {"0", "no", "off", "false"}:
        return HugeHeap(0, mode, "TGW_HUGE_PAGES is off")
    if mode == "never":
        return HugeHeap(0, mode, "the kernel's transparent huge pages are off (never)")
    if _hugeheap is None:
        return HugeHeap(0, mode, "gateway._hugeheap is not built (no C compiler at install)")
    try:
        reserved = _hugeheap.install(reserve, hold)
    except OSError as exc:
        return HugeHeap(0, mode, f"no range reserved: {exc}")
    if reserved == 0:  # installed before: its range stands
        reserved = int(_hugeheap.stats()["reserved"])
    return HugeHeap(reserved, mode)


def huge_page_stats() -> dict[str, int] | None:
    """The arena allocator's counters (``gateway._hugeheap.stats``), or None if it is not installed."""
    if _hugeheap is None:
        return None
    stats: dict[str, int] = _hugeheap.stats()
    return stats if stats["installed"] else None

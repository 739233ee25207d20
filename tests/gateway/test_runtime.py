"""gateway.runtime: what a started gateway process does to the cyclic collector (settle_heap and its
HeapSteward)."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Iterator

import pytest

from gateway.runtime import HeapSteward, current_steward, release_heap, settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    callbacks = list(gc.callbacks)
    enabled = gc.isenabled()
    gc.disable()  # only the collections a test asks for, so that it can count them
    yield
    if enabled:
        gc.enable()
    release_heap()
    gc.callbacks[:] = callbacks
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self, freed: list[bool]) -> None:
        self.me = self
        weakref.finalize(self, freed.append, True)


class Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_freezes_what_is_alive_and_spaces_collections_out() -> None:
    gc.unfreeze()
    alive = [[index] for index in range(1000)]  # container objects alive when the process settles
    steward = settle_heap(young=50_000, middle=20, old=30)
    assert gc.get_threshold() == (50_000, 20, 30)
    assert gc.get_freeze_count() >= len(alive)
    assert steward.installed and current_steward() is steward
    assert settle_heap() is steward  # once per process
    assert gc.callbacks.count(steward._on_collection) == 1


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_collects_garbage_before_freezing() -> None:
    gc.unfreeze()
    freed: list[bool] = []
    Node(freed)
    settle_heap()
    assert freed == [True]
    assert gc.get_threshold() == (100_000, 50, 100)


@pytest.mark.usefixtures("restore_gc")
def test_release_heap_unhooks_the_steward_and_unfreezes() -> None:
    steward = settle_heap()
    release_heap()
    assert not steward.installed and current_steward() is None
    assert steward._on_collection not in gc.callbacks
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("restore_gc")
def test_what_survives_a_collection_is_frozen_and_never_walked_again() -> None:
    steward = HeapSteward(full_after_growth=None, clock=Clock(0.25))
    steward.install()
    before = gc.get_freeze_count()
    grown = [[index] for index in range(5000)]  # the state the process grows while it runs
    gc.collect(0)
    assert gc.get_freeze_count() >= before + len(grown)
    assert steward.stats.collections[0] == 1
    assert steward.stats.pause_seconds[0] == pytest.approx(0.25)  # the clock's step from start to stop
    assert steward.stats.longest_pause[0] == pytest.approx(0.25)
    # frozen: a full collection does not walk it (a cycle in it dying later is not freed)
    freed: list[bool] = []
    node = Node(freed)
    gc.collect(0)  # alive: frozen with the survivors
    del node
    gc.collect(2)
    assert freed == []
    assert steward.stats.collections == [2, 0, 1]
    assert not steward.full_due  # never, with full_after_growth None
    assert steward.maintain() == 0


@pytest.mark.usefixtures("restore_gc")
def test_a_full_pass_reclaims_frozen_cycles_once_the_frozen_heap_has_grown() -> None:
    steward = HeapSteward(full_after_growth=1.5, clock=Clock(0.5))
    steward.install()
    baseline = gc.get_freeze_count()
    gc.set_threshold(int(baseline * 0.3) + 1)
    assert steward.maintain() == 0 and steward.stats.full_passes == 0  # not due
    freed: list[bool] = []
    node = Node(freed)
    gc.collect(0)  # the cycle is alive: frozen with the survivors
    del node
    assert not steward.full_due  # a few objects more: not grown by half yet
    grown = [[index] for index in range(baseline // 2 + 1000)]
    gc.collect(0)
    assert steward.full_due
    assert freed == []  # the cycle died frozen: nothing frees it before the full pass
    reclaimed = steward.maintain()
    assert freed == [True]
    assert reclaimed >= 2  # the node and its attribute dict, at least
    assert steward.stats.full_passes == 1 and steward.stats.reclaimed == reclaimed
    assert steward.stats.full_pass_seconds == pytest.approx(0.5)
    assert not steward.full_due
    assert steward.stats.collections == [2, 0, 0]  # the pass itself is not an ordinary collection
    assert gc.get_freeze_count() >= len(grown)  # frozen again after the pass
    assert steward._on_collection in gc.callbacks


@pytest.mark.usefixtures("restore_gc")
def test_the_growth_is_what_the_collections_froze_not_how_many_ran() -> None:
    """Collections that leave nothing new alive do not make a full pass due, however many run (the
    earlier bound, collections x the young threshold, did after two of these)."""
    steward = HeapSteward(full_after_growth=1.5)
    steward.install()
    baseline = gc.get_freeze_count()
    gc.set_threshold(int(baseline * 0.3) + 1)
    for _ in range(10):
        short_lived = [[index] for index in range(1000)]
        del short_lived
        gc.collect(0)
    assert steward.stats.collections[0] == 10
    assert not steward.full_due
    kept = [[index] for index in range(baseline // 2 + 1000)]  # half the heap again, alive
    gc.collect(0)
    assert steward.full_due
    assert len(kept) > baseline // 2


@pytest.mark.usefixtures("restore_gc")
def test_no_full_pass_when_what_made_it_due_has_died_since() -> None:
    """A burst alive at a collection is frozen and counted as growth; when it is gone by the time the
    pass would run, ``maintain`` counts the frozen heap, finds it has not grown enough, and skips the
    pass (which walks everything) until the heap has really grown."""
    steward = HeapSteward(full_after_growth=1.5, clock=Clock(0.25))
    steward.install()
    baseline = gc.get_freeze_count()
    gc.set_threshold(int(baseline * 0.3) + 1)
    burst = [[index] for index in range(baseline // 2 + 1000)]  # alive at the collection
    gc.collect(0)
    assert steward.full_due and len(burst) > baseline // 2
    del burst  # the commands of one Tick, say: gone once it returns
    assert steward.maintain() == 0
    assert steward.stats.full_passes == 0 and steward.stats.full_pass_seconds == 0.0
    assert steward.stats.passes_skipped == 1
    assert steward.stats.count_seconds == pytest.approx(0.25)
    assert not steward.full_due
    kept = [[index] for index in range(baseline // 2 + 1000)]  # now the heap grows for real
    gc.collect(0)
    assert steward.full_due
    steward.maintain()
    assert steward.stats.full_passes == 1 and steward.stats.passes_skipped == 1
    assert len(kept) > baseline // 2


@pytest.mark.usefixtures("restore_gc")
def test_watch_runs_the_due_full_pass_from_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    steward = HeapSteward(full_after_growth=1.5)
    steward.install()
    freed: list[bool] = []

    async def scenario() -> None:
        watcher = asyncio.create_task(steward.watch(interval=0.01))
        node = Node(freed)
        gc.collect(0)
        del node
        kept = [[index] for index in range(gc.get_freeze_count() // 2 + 1000)]
        gc.collect(0)  # the heap has grown by half: the pass is due
        assert steward.full_due
        for _ in range(200):
            await asyncio.sleep(0.01)
            if steward.stats.full_passes:
                break
        watcher.cancel()
        assert len(kept) > 1000

    with caplog.at_level(logging.INFO, logger="tgw.runtime"):
        asyncio.run(scenario())
    assert steward.stats.full_passes == 1
    assert freed == [True]
    assert any("full garbage collection" in r.getMessage() for r in caplog.records)


def test_a_growth_factor_of_one_or_less_is_refused() -> None:
    with pytest.raises(ValueError, match="full_after_growth"):
        HeapSteward(full_after_growth=1.0)

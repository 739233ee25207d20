"""gateway.runtime.settle_heap: what a started gateway process does to the cyclic collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gateway.runtime import settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_freezes_what_is_alive_and_spaces_collections_out() -> None:
    gc.unfreeze()
    alive = [[index] for index in range(1000)]  # container objects alive when the process settles
    settle_heap(young=50_000, middle=20, old=30)
    assert gc.get_threshold() == (50_000, 20, 30)
    assert gc.get_freeze_count() >= len(alive)


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_collects_garbage_before_freezing() -> None:
    gc.unfreeze()

    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the cyclic collector frees it

    collected: list[bool] = []
    node = Node()
    weakref.finalize(node, collected.append, True)
    del node
    settle_heap()
    assert collected == [True]
    assert gc.get_threshold() == (100_000, 50, 100)

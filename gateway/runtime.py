"""Process-wide settings a long-running gateway process applies once it has started.

The cyclic garbage collector (CPython ``gc``): the gateway allocates a few container objects per
usage event and per PDU (the event, its trigger, lists), nearly all of them acyclic and short-lived,
while it holds a large long-lived state (one trigger-detector record per tracked package, 1M+).
With CPython's default thresholds (700, 10, 10) a young collection runs every few hundred events and
the full collections walk that whole state again and again: 1.3-1.8 us of collector time per event
on the batched HTTP ingest path (bench/ingest.py), a fifth of the server's CPU. ``settle_heap``:

- moves everything alive at that moment (imports, configuration, the state recovered from the
  journal) into the permanent generation (``gc.freeze``), so no collection walks it again;
- raises the young-generation threshold to ``young`` allocations (default 100,000: a few MB of
  young objects at most) and spaces the older collections out.

Cyclic garbage is still collected, only in larger, rarer batches. Measured with bench/ingest.py:
collector time 1.3-1.8 -> 0.2 us per event. Call it after the service has started (recovery done),
from the process's entry point: it changes the whole process, which a library must not do on its own.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap(young: int = 100_000, middle: int = 50, old: int = 100) -> None:
    """Freeze what is alive now and space the collections out (see the module docstring)."""
    gc.collect()  # what is garbage now should not be frozen forever
    gc.freeze()
    gc.set_threshold(young, middle, old)

"""The suite's own helpers: ports handed out per pytest-xdist worker never collide."""

from __future__ import annotations

import socket

import helpers
import pytest
from helpers import free_port


def test_workers_take_ports_from_disjoint_slices_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slices = []
    for worker in ("gw0", "gw1", "gw2", "gw7", "", "master"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(helpers._worker_slice()))
    assert slices[-2] == slices[-1] == slices[0]  # not under xdist: the first slice
    workers = slices[:4]
    assert all(a.isdisjoint(b) for i, a in enumerate(workers) for b in workers[i + 1 :])
    assert all(max(s) < 32_768 for s in slices)


def test_a_port_is_handed_out_again_only_after_the_whole_slice_and_a_busy_one_is_passed_over() -> None:
    mine = helpers._worker_slice()
    taken = [free_port() for _ in range(200)]
    assert len(set(taken)) == len(taken) and set(taken) <= set(mine)
    at = mine.index(taken[-1])
    following = [mine[(at + k) % len(mine)] for k in (1, 2, 3)]  # past the slice's end: from its start
    with socket.socket() as busy:  # the port that comes next is in use: it is passed over
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", following[0]))
        busy.listen()
        assert free_port() in following[1:]

"""Fixtures for the interop tests: our SMSC simulator on the test's event loop, and peer checks.

The peers (smpplib, node `smpp`, tshark) are installed by `.ci/run`; a missing peer makes these
tests fail with a message saying how to install it, never skip: a skipped interop test proves
nothing and would hide a broken CI image.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from peers import NODE_DIR, node_available

from simulators.smsc import SmscSimulator

ACCOUNTS = {"esme1": "secret1", "esme2": "secret2"}


@pytest.fixture
def accounts() -> dict[str, str]:
    """system_id -> password known to the simulator."""
    return dict(ACCOUNTS)


@pytest.fixture
async def smsc_factory() -> AsyncIterator[Callable[..., Any]]:
    """``await smsc_factory(**kwargs)`` starts a simulator on 127.0.0.1 with ``ACCOUNTS`` (plus
    ``kwargs`` for ``SmscSimulator``) and returns ``(sim, port)``; every one is stopped afterwards."""
    started: list[SmscSimulator] = []

    async def make(**kwargs: Any) -> tuple[SmscSimulator, int]:
        sim = SmscSimulator(dict(ACCOUNTS), **kwargs)
        _, port = await sim.start("127.0.0.1", 0)
        started.append(sim)
        return sim, port

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
def require_node() -> None:
    """Fail (not skip) when the node peer is missing."""
    if not node_available():
        pytest.fail(
            f"node `smpp` peer missing: need `node` on PATH and `npm ci` in {NODE_DIR} (.ci/run does both)"
        )


@pytest.fixture
def tshark_tools() -> tuple[str, str]:
    """Paths of ``dumpcap`` and ``tshark``, failing (not skipping) when they are missing."""
    found = [shutil.which(name) for name in ("dumpcap", "tshark")]
    if None in found:
        pytest.fail("dumpcap/tshark missing: `apt-get install tshark` (.ci/run does it)")
    dumpcap, tshark = found
    assert dumpcap is not None and tshark is not None
    return dumpcap, tshark

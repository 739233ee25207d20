"""Fixtures for the end-to-end tests; the chain itself is built by ``stk_e2e_kit.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from stk_e2e_kit import Testbed


@pytest.fixture
async def testbed(tmp_path: Path) -> AsyncIterator[Testbed]:
    """A listening SMSC simulator; the test adds handsets and starts the gateway(s)."""
    bed = Testbed(tmp_path)
    await bed.start()
    yield bed
    await bed.close()

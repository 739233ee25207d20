"""Fixtures shared by the whole suite.

``tests/`` is not a package: with pytest's default ``prepend`` import mode the directory of this
conftest is on ``sys.path``, so test modules anywhere under ``tests/`` can ``from helpers import ...``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers import free_port as _free_port


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A callable returning a fresh free TCP port on 127.0.0.1 each call."""
    return _free_port

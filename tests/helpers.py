"""Helpers shared by tests.

Import them as ``from helpers import free_port``. ``tests/`` has no ``__init__.py``, so pytest's
default ``prepend`` import mode puts ``tests/`` itself on ``sys.path`` (it does so while loading
``tests/conftest.py``, before any test module, including those in subdirectories).
"""

from __future__ import annotations

import socket

_issued: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago and that this process has not handed out yet.

    The port is found by binding to port 0 and closing again, so another process could take it
    before the test binds; within one test run the same port is never returned twice.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _issued:
            _issued.add(port)
            return port
    raise RuntimeError(f"no fresh free TCP port on {host}")

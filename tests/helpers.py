"""Helpers shared by tests.

Import them as ``from helpers import free_port``. ``tests/`` has no ``__init__.py``, so pytest's
default ``prepend`` import mode puts ``tests/`` itself on ``sys.path`` (it does so while loading
``tests/conftest.py``, before any test module, including those in subdirectories).
"""

from __future__ import annotations

import itertools
import os
import socket

# Ports handed out come from a slice of their own per pytest-xdist worker, below the kernel's ephemeral
# range (32768-60999 by default, where bind(0) and outgoing connections take theirs): two workers never
# hand out the same port, and no socket the kernel numbers can take one between the check and the bind.
_FIRST_PORT = 20_000
_SLICE = 1_500
_WORKERS = 8  # slices; a worker numbered beyond them shares one (xdist names them gw0, gw1, ...)


def _worker_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    first = _FIRST_PORT + (index % _WORKERS) * _SLICE
    return range(first, first + _SLICE)


_ports = itertools.cycle(_worker_slice())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago, from this worker's own slice.

    The slice is walked round: a port comes back only after every other port of the slice was handed
    out (1,500 later), and one that will not bind now (in use, or in TIME_WAIT) is passed over.
    """
    for _ in range(_SLICE):
        port = next(_ports)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free TCP port on {host} in {_worker_slice()}")

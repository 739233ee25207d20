"""A real Mosquitto broker (Debian ``mosquitto``, 2.0) for the MQTT ingest tests.

The broker is an implementation nobody here wrote: the subscriber is tested against the real thing
(PEERS.md, "MQTT: client library and broker"). It listens on one loopback port with a config written
to the test's directory: anonymous access, no persistence (sessions live as long as the process),
``max_queued_messages`` raised from the default 1000 that silently drops a slow subscriber's QoS 1
backlog, and ``max_inflight_messages 0`` (no limit) so a subscriber that acknowledges late still gets
whole batches. A missing binary fails the test (never skips) with how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

INSTALL_HINT = "apt-get install mosquitto (.ci/run does it)"

# Debian installs the broker in sbin, which a non-root PATH often lacks
_SBIN = os.pathsep.join(("/usr/sbin", "/usr/local/sbin"))


def mosquitto_binary() -> str:
    """The ``mosquitto`` executable, or fail the test saying how to install it."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN)
    if found is None:
        pytest.fail(f"Mosquitto broker not found: {INSTALL_HINT}", pytrace=False)
    return found


class Mosquitto:
    """One broker process on ``127.0.0.1:port``; ``start`` / ``stop`` / ``kill`` / ``restart``."""

    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        max_inflight_messages: int = 0,
        max_queued_messages: int = 100_000,
    ) -> None:
        self.binary = mosquitto_binary()
        self.directory = directory
        self.port = port
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.config.write_text(
            "\n".join(
                (
                    f"listener {port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence false",
                    f"max_queued_messages {max_queued_messages}",
                    f"max_inflight_messages {max_inflight_messages}",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                )
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the listener accepts connections."""
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                pytest.fail(f"mosquitto exited with {self._process.returncode}: {error}{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s{self.log_text()}")

    def stop(self) -> None:
        """Terminate (SIGTERM) and wait."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything properly."""
        if self._process is not None:
            self._process.kill()
        self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return f"\n--- mosquitto log ---\n{text[-2000:]}" if text else ""

"""The admin API (gateway/admin.py) against hostile requests over a real socket: headers that are not
UTF-8 and repeated ``Authorization`` headers (RFC 9110 section 5.3: a singleton field), JSON nested past
the decoder's recursion, a text no SMS coding carries. Each is a 4xx with the one-line JSON error and
nothing sent, never a 500 or a traceback in the gateway's log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from gateway_bed import MSISDNS, TOKEN, Network

from gateway.admin import AdminServer


async def _raw(admin: AdminServer, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as it is (bytes aiohttp's client would not write); the status and the body."""
    reader, writer = await asyncio.open_connection(admin.host, admin.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _get(*headers: bytes) -> bytes:
    lines = [b"GET /health/live HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def test_a_token_that_is_not_utf8_is_unauthorized(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    status, body = await _raw(admin, _get(b"Authorization: Bearer \xff\xfe" + TOKEN.encode()))
    assert (status, body) == (401, b'{"error": "unauthorized"}')
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("order", ["right-first", "wrong-first"])
async def test_two_authorization_headers_are_unauthorized(network: Network, order: str) -> None:
    """Which of two credentials counts is up to each hop (a proxy may check the last, we the first):
    the request is ambiguous, so neither is taken."""
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    right, wrong = b"Authorization: Bearer " + TOKEN.encode(), b"Authorization: Bearer wrong"
    headers = (right, wrong) if order == "right-first" else (wrong, right)
    status, body = await _raw(admin, _get(*headers))
    assert (status, body) == (401, b'{"error": "unauthorized"}')
    status, _ = await _raw(admin, _get(right))
    assert status == 200


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),  # RecursionError in json.loads
        (b'{"to": "254700000201", "text": "hi \\ud800"}', "text:"),  # no SMS coding carries it
    ],
    ids=["deep-json", "lone-surrogate"],
)
async def test_a_hostile_test_message_is_400(
    network: Network, caplog: pytest.LogCaptureFixture, raw: bytes, fragment: str
) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    answer = await network.call(admin, "POST", "/v1/messages/test", raw=raw)
    assert answer.status == 400, answer.body
    error = answer.json()["error"]
    assert fragment in error and "\n" not in error
    assert gateway.smpp.stats.submitted == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    ok = await network.call(admin, "POST", "/v1/messages/test", body={"to": MSISDNS[0], "text": "hi"})
    assert ok.status == 200  # the server still serves

"""gateway.http_site.serve: a request aiohttp cannot parse is answered 400 and logged on one line at
INFO, not at ERROR with a traceback (anyone reaching the port could otherwise flood the log)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from gateway.http_site import serve

BAD_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",  # a NUL in a header value
    b"GET / HTTP/1.1 trailing\r\nHost: x\r\n\r\n",  # a malformed request line
]


@pytest.mark.parametrize("request_bytes", BAD_REQUESTS, ids=["nul-in-header", "bad-request-line"])
async def test_an_unparsable_request_is_a_400_and_one_info_line(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner, (host, port) = await serve(app, "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request_bytes)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10.0)
            writer.close()
            # the server still serves a good request afterwards
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            good = await asyncio.wait_for(reader.read(), 10.0)
            writer.close()
    finally:
        await runner.cleanup()
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:40]
    assert good.split(b"\r\n", 1)[0].endswith(b"200 OK") and good.endswith(b"ok")
    server = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert server, "the refusal is logged"
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in server), [
        (r.levelname, r.getMessage()) for r in server
    ]
    assert all("\n" not in r.getMessage() for r in server)
    assert any("cannot parse (400)" in r.getMessage() for r in server)

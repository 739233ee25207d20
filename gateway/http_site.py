"""Serving an aiohttp application on a TCP address: the one way the gateway's HTTP listeners (the DPI
intake, the admin API) and the HTTP simulators start."""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["serve"]


async def serve(
    app: web.Application, host: str, port: int, **runner_options: Any
) -> tuple[web.AppRunner, tuple[str, int]]:
    """Set ``app`` up and listen on ``host:port``; returns the runner (``cleanup()`` stops it) and the
    bound address (port 0: the port the system chose). When listening fails the runner is cleaned up
    and the ``OSError`` raised."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    address = runner.addresses[0]
    return runner, (str(address[0]), int(address[1]))

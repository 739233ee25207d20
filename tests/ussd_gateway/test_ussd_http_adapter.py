"""The HTTP callback adapter (aggregator CON / END model, PROTOCOLS.md 1.2): service codes delegated to
an external web app, here a real aiohttp server on loopback, reached through the whole chain
(handset -> SMSC simulator -> ESME -> UssdService -> HTTP)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from ussd_gateway_harness import FAILURE, MakeRig

from gateway.ussd import HttpAppError, Screen, parse_menus, parse_response

MSISDN = "254700000500"


class ExternalApp:
    """A USSD web app in the aggregator style: it replays ``text`` to find where the user is."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_post("/ussd", self.ussd)
        self.app.router.add_post("/error", self.error)
        self.app.router.add_post("/garbage", self.garbage)
        self.app.router.add_post("/slow", self.slow)
        self.app.router.add_post("/empty", self.empty)
        self.app.router.add_post("/huge", self.huge)
        self.app.router.add_post("/latin1", self.latin1)
        self.runner = web.AppRunner(self.app)
        self.port = 0

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def ussd(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.forms.append(form)
        text = form["text"]
        if text == "":
            return web.Response(text="CON Welcome to the club\n1. Balance\n2. Buy points")
        if text == "1":
            return web.Response(text="END Your balance is 10 points.")
        if text == "2":
            return web.Response(text="CON Enter the points to buy:")
        if text.startswith("2*"):
            return web.Response(text=f"END You bought {text[2:]} points.")
        return web.Response(text="END Unknown choice.")

    async def error(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="END this body is ignored")

    async def garbage(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>Welcome</html>")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="END too late")

    async def empty(self, request: web.Request) -> web.Response:
        return web.Response(text="CON ")

    async def huge(self, request: web.Request) -> web.Response:
        return web.Response(text="END " + "x" * 10_000)

    async def latin1(self, request: web.Request) -> web.Response:
        return web.Response(body=b"END caf\xe9")


@pytest.fixture
async def external_app() -> AsyncIterator[ExternalApp]:
    app = ExternalApp()
    await app.start()
    yield app
    await app.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def menus_for(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""\
services:
  - code: "*124#"
    http: {{url: "{base}/ussd", timeout: 2, network_code: "63902"}}
  - code: "*124*{{points}}#"
    http: {{url: "{base}/ussd", timeout: 2}}
  - {{code: "*125#", http: {{url: "{base}/error"}}}}
  - {{code: "*126#", http: {{url: "{base}/garbage"}}}}
  - {{code: "*127#", http: {{url: "{base}/slow", timeout: 0.3}}}}
  - {{code: "*128#", http: {{url: "http://127.0.0.1:{closed_port()}/ussd", timeout: 1}}}}
  - {{code: "*129#", http: {{url: "{base}/empty"}}}}
  - {{code: "*130#", http: {{url: "{base}/huge"}}}}
  - {{code: "*131#", http: {{url: "{base}/latin1"}}}}
  - {{code: "*132#", http: {{url: "{base}/missing"}}}}
screens:
  unused: {{type: final, text: unused}}
"""


async def test_con_con_end(make_rig: MakeRig, external_app: ExternalApp) -> None:
    rig = await make_rig(menus=parse_menus(menus_for(external_app.port)), handlers={}, providers={})
    phone = rig.handsets.phone(MSISDN)
    welcome = await phone.dial("*124#")
    assert not welcome.final and welcome.text == "Welcome to the club\n1. Balance\n2. Buy points"
    prompt = await phone.reply("2")
    assert not prompt.final and prompt.text == "Enter the points to buy:"
    final = await phone.reply("50")
    assert final.final and final.text == "You bought 50 points."
    forms = external_app.forms
    assert [f["text"] for f in forms] == ["", "2", "2*50"]
    assert {f["sessionId"] for f in forms} == {forms[0]["sessionId"]} and len(forms[0]["sessionId"]) == 16
    assert {(f["serviceCode"], f["phoneNumber"], f["networkCode"]) for f in forms} == {
        ("*124#", MSISDN, "63902")
    }
    # a second dialogue gets a new sessionId
    assert (await rig.handsets.phone("254700000501").walk("*124#", "1")).text == "Your balance is 10 points."
    assert forms[-1]["sessionId"] != forms[0]["sessionId"]
    assert rig.service.journeys[0].outcome == "completed"


async def test_parameters_dialled_with_the_code_start_the_text(
    make_rig: MakeRig, external_app: ExternalApp
) -> None:
    rig = await make_rig(menus=parse_menus(menus_for(external_app.port)), handlers={}, providers={})
    final = await rig.handsets.phone(MSISDN).dial("*124*2*70#")
    assert final.final and final.text == "You bought 70 points."
    assert external_app.forms[-1]["text"] == "2*70" and external_app.forms[-1]["serviceCode"] == "*124#"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("*125#", "HTTP 500"),
        ("*126#", "neither CON nor END"),
        ("*127#", "did not answer within 0.3 s"),
        ("*128#", "cannot reach"),
        ("*129#", "empty screen"),
        ("*130#", "more than 4096 octets"),
        ("*131#", "not UTF-8"),
        ("*132#", "HTTP 404"),
    ],
)
async def test_broken_external_app_ends_with_the_failure_screen(
    make_rig: MakeRig, external_app: ExternalApp, caplog: pytest.LogCaptureFixture, code: str, reason: str
) -> None:
    rig = await make_rig(menus=parse_menus(menus_for(external_app.port)), handlers={}, providers={})
    loop = asyncio.get_running_loop()
    before = loop.time()
    final = await rig.handsets.phone(MSISDN).dial(code)
    assert final.final and final.text == FAILURE
    assert loop.time() - before < 2.5
    assert reason in caplog.text
    while not rig.service.journeys:
        await asyncio.sleep(0.01)
    assert rig.service.journeys[-1].outcome == "failed"


async def test_given_http_session_is_used_and_left_open(external_app: ExternalApp, make_rig: MakeRig) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        rig = await make_rig(
            menus=parse_menus(menus_for(external_app.port)), handlers={}, providers={}, http_session=session
        )
        assert (await rig.handsets.phone(MSISDN).walk("*124#", "1")).text == "Your balance is 10 points."
        await rig.service.close()
        assert not session.closed


@pytest.mark.parametrize(
    ("body", "screen"),
    [
        ("CON Menu\n1. A", Screen("Menu\n1. A", final=False)),
        ("END Bye", Screen("Bye", final=True)),
        ("END", Screen("", final=True)),
        ("END\nBye\n", Screen("Bye", final=True)),
        ("CON Hello  \n", Screen("Hello", final=False)),
    ],
)
def test_parse_response(body: str, screen: Screen) -> None:
    assert parse_response(body) == screen


@pytest.mark.parametrize("body", ["", "CONTINUE here", "end Bye", " CON x", "CON", "OK"])
def test_parse_response_refuses(body: str) -> None:
    with pytest.raises(HttpAppError):
        parse_response(body)

"""The SMSC simulator's control channel (simulators/smsc_control.py) and ``tgw handset`` (simulators/cli.py).

The control channel is exercised over real HTTP on loopback with its own client; ``tgw handset`` runs
in-process (for the exit statuses) and, as a tester runs it, as a subprocess against ``tgw sim smsc
--control`` in another process, with the test's gateway (a real SmppClient answering with
protocols.ussd, ``ussd_relay_kit``) bound to that simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from ussd_relay_kit import PASSWORD, SYSTEM_ID, WAIT, UssdGateway, bound_gateway

from gateway.smpp.client import SubmitError
from protocols.smpp.constants import CommandStatus
from protocols.ussd import UssdMessage, UssdServiceOp, get_profile, to_submit
from simulators.cli import main
from simulators.smsc import SmscSimulator
from simulators.smsc_control import ControlClient, ControlError, SmscControl

MSISDN = "254722000001"
TGW = str(Path(sys.executable).parent / "tgw")
PROCESS_WAIT = 60.0

MENU_OUTPUT = (
    "--- screen 1 (continue) ---\n"
    f"Hi {MSISDN}\n1.100MB\n2.200MB\n"
    "> 1\n"
    "--- screen 2 (final) ---\n"
    f"Thank you {MSISDN}. 100MB added.\n"
)


@pytest.fixture
async def control(smsc: SmscSimulator) -> AsyncIterator[tuple[SmscControl, int]]:
    server = SmscControl(smsc)
    _, port = await server.start("127.0.0.1", 0)
    yield server, port
    await server.stop()


@pytest.fixture
async def client(control: tuple[SmscControl, int]) -> AsyncIterator[ControlClient]:
    async with ControlClient("127.0.0.1", control[1]) as http:
        yield http


async def send_menu_when_listening(gateway: UssdGateway, text: str) -> None:
    """A network-initiated menu, sent as soon as somebody listens for it (ESME_RINVDSTADR before)."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                await gateway.menu(MSISDN, text)
                return
            except SubmitError as exc:
                assert exc.status == CommandStatus.ESME_RINVDSTADR
                await asyncio.sleep(0.05)


# --- the control channel --------------------------------------------------------------------------


async def test_dial_screens_reply_over_http(client: ControlClient, gateway: UssdGateway) -> None:
    health = await client.health()
    assert health == {"bound": [SYSTEM_ID], "ussd_sessions": 0}
    opened = await client.dial(MSISDN, "*123#")
    assert opened["msisdn"] == MSISDN and opened["service_code"] == "*123#"
    assert opened["network_initiated"] is False
    session = opened["session"]
    menu = await client.screen(session, 5)
    assert menu == {
        "text": f"Hi {MSISDN}\n1.100MB\n2.200MB",
        "kind": "continue",
        "label": "continue",
        "final": False,
        "sequence": 1,
    }
    await client.reply(session, "1")
    final = await client.screen(session, 5)
    assert final["kind"] == "final" and final["final"] is True
    with pytest.raises(ControlError, match="is over") as gone:
        await client.screen(session, 1)
    assert gone.value.status == 410
    with pytest.raises(ControlError, match="cannot reply") as conflict:
        await client.reply(session, "1")
    assert conflict.value.status == 409


async def test_release_and_abandon_over_http(client: ControlClient, gateway: UssdGateway) -> None:
    first = (await client.dial(MSISDN, "*123#"))["session"]
    await client.screen(first)
    await client.release(first)
    second = (await client.dial(MSISDN, "*123#"))["session"]
    await client.screen(second)
    await client.abandon(second)
    with pytest.raises(ControlError) as gone:
        await client.screen(second, 1)
    assert gone.value.status == 410
    assert len(gateway.pdus) == 3  # two dials and one release; the abandon told the gateway nothing


async def test_listen_for_a_network_initiated_session(client: ControlClient, gateway: UssdGateway) -> None:
    with pytest.raises(ControlError, match="no session opened") as nothing:
        await client.listen(MSISDN, 0.1)
    assert nothing.value.status == 504
    await gateway.menu(MSISDN, "Rate us: 1 good, 2 bad")  # queued: the msisdn is registered now
    opened = await client.listen(MSISDN, 5)
    assert opened["network_initiated"] is True
    assert (await client.screen(opened["session"]))["text"] == "Rate us: 1 good, 2 bad"


async def test_errors_over_http(
    client: ControlClient, control: tuple[SmscControl, int], smsc: SmscSimulator
) -> None:
    with pytest.raises(ControlError, match="no gateway bound") as unbound:
        await client.dial(MSISDN, "*123#")
    assert unbound.value.status == 503
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None):
        with pytest.raises(ControlError, match="not a USSD service code") as bad_code:
            await client.dial(MSISDN, "hello")
        assert bad_code.value.status == 400
        session = (await client.dial(MSISDN, "*123#"))["session"]
        with pytest.raises(ControlError, match=r"no screen within 0\.1 s") as slow:
            await client.screen(session, 0.1)
        assert slow.value.status == 504
        with pytest.raises(ControlError, match="no such session") as unknown:
            await client.screen("s999")
        assert unknown.value.status == 404
    base = f"http://127.0.0.1:{control[1]}"
    async with aiohttp.ClientSession() as http:
        for path, body, reason in [
            ("/ussd/dial", b"{not json", "the body is not JSON"),
            ("/ussd/dial", b"[1]", "the body must be a JSON object"),
            ("/ussd/dial", b'{"msisdn": 1, "code": "*1#"}', "'msisdn' must be a str"),
            ("/ussd/dial", b'{"msisdn": "1", "code": "*1#", "timeout": "x"}', "not a number"),
            ("/ussd/dial", b'{"msisdn": "1", "code": "*1#", "timeout": 0}', "within"),
            ("/ussd/listen", b'{"timeout": 1}', "'msisdn' must be a str"),
            (f"/ussd/sessions/{session}/reply", b"{}", "'text' must be a str"),
        ]:
            async with http.post(base + path, data=body) as response:
                assert response.status == 400, path
                assert reason in (await response.json())["error"]
        async with http.get(f"{base}/ussd/sessions/{session}/screen?timeout=-1") as response:
            assert response.status == 400
        async with http.get(f"{base}/nowhere") as response:
            assert response.status == 404
    async with ControlClient("127.0.0.1", control[1]) as other:
        with pytest.raises(ControlError, match="without a JSON object") as not_json:
            await other._call("GET", "/nowhere", 1.0)
        assert not_json.value.status == 404


async def test_reply_errors_over_http(client: ControlClient, smsc: SmscSimulator) -> None:
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        session = (await client.dial(MSISDN, "*123#"))["session"]
        await client.screen(session)
        with pytest.raises(ControlError, match="limit") as too_long:
            await client.reply(session, "x" * 200)
        assert too_long.value.status == 400

        def refuse(pdu: object) -> None:
            raise RuntimeError("down")

        gateway.client._mo_handlers.insert(0, refuse)
        with pytest.raises(ControlError, match="refused the USSD reply") as refused:
            await client.reply(session, "1")
        assert refused.value.status == 502


async def test_the_control_client_reports_an_unreachable_port(free_port: object) -> None:
    assert callable(free_port)
    async with ControlClient("127.0.0.1", free_port()) as http:
        with pytest.raises(ControlError, match="cannot reach") as failure:
            await http.health()
    assert failure.value.status == 0


async def test_sessions_kept_for_http_are_bounded(
    control: tuple[SmscControl, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import simulators.smsc_control as module

    server, _ = control
    monkeypatch.setattr(module, "_MAX_SESSIONS", 2)
    smsc = server.smsc
    from protocols.ussd import DialogueKey
    from simulators.smsc import UssdSession

    sessions = [UssdSession(smsc, DialogueKey(MSISDN, i), "123", SYSTEM_ID) for i in range(3)]
    sessions[1].abandon()
    handles = [server._keep(s) for s in sessions]
    assert list(server._sessions) == [handles[0], handles[2]]  # the oldest ended one went first


# --- tgw handset, in process -------------------------------------------------------------------------


async def tgw(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_tgw_handset_dial_prints_every_screen(
    control: tuple[SmscControl, int], gateway: UssdGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = f"127.0.0.1:{control[1]}"
    assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*123#", "1") == 0
    assert capsys.readouterr().out == MENU_OUTPUT
    # too few replies: the handset cancels
    assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*123#") == 6
    err = capsys.readouterr().err
    assert err == "tgw: screen 1 asks for input and no replies are left; cancelled the session\n"
    # too many
    assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*123*500#", "1", "2") == 6
    captured = capsys.readouterr()
    assert captured.out == "--- screen 1 (final) ---\nThank you. 500MB added.\n"
    assert captured.err == "tgw: the dialog ended with 2 reply(ies) unused: 1 2\n"
    # not a USSD code
    assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "123") == 64
    assert "not a USSD service code" in capsys.readouterr().err


async def test_tgw_handset_exit_statuses(
    smsc: SmscSimulator,
    control: tuple[SmscControl, int],
    capsys: pytest.CaptureFixture[str],
    free_port: object,
) -> None:
    sim = f"127.0.0.1:{control[1]}"
    assert callable(free_port)
    assert await tgw("handset", "dial", "--sim", f"127.0.0.1:{free_port()}", "--msisdn", MSISDN, "*1#") == 1
    assert "cannot reach the SMSC simulator's control channel" in capsys.readouterr().err
    assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*1#") == 3
    assert capsys.readouterr().err.startswith("tgw: no gateway bound")
    async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None):
        assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "--timeout", "0.2", "*1#") == 4
        assert capsys.readouterr().err == "tgw: no screen within 0.2 s; the handset cancelled the session\n"
        smsc.ussd_timeout = 0.2
        assert await tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*1#") == 5
        captured = capsys.readouterr()
        assert captured.out == "--- screen 1 (timeout) ---\n\n"
        assert captured.err == "tgw: the dialog ended abnormally: timed out by the network\n"


async def test_tgw_handset_dial_sees_a_notification_and_a_release(capsys: pytest.CaptureFixture[str]) -> None:
    smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, ussd_profile="6d")
    await smsc.start()
    server = SmscControl(smsc)
    _, port = await server.start()
    sim = f"127.0.0.1:{port}"
    try:
        async with bound_gateway(smsc.address[1], smsc.ussd_profile, app=None) as gateway:
            dialling = asyncio.ensure_future(tgw("handset", "dial", "--sim", sim, "--msisdn", MSISDN, "*9#"))
            await gateway.wait_for(lambda: bool(gateway.events), "the dial")
            key = gateway.events[0].key
            note = UssdMessage(UssdServiceOp.USSN_REQ, MSISDN, "Please wait", "9", key.session_id)
            await gateway.client.submit(to_submit(note, gateway.profile))
            release = gateway.engine.release(key, 0.0, "Out of service")
            await gateway.client.submit(to_submit(release, gateway.profile))
            assert await asyncio.wait_for(dialling, WAIT) == 5
            captured = capsys.readouterr()
            assert captured.out == (
                "--- screen 1 (notification) ---\nPlease wait\n--- screen 2 (released) ---\nOut of service\n"
            )
            assert captured.err == "tgw: the dialog ended abnormally: released by the gateway\n"
    finally:
        await server.stop()
        await smsc.stop()


async def test_tgw_handset_listen(
    control: tuple[SmscControl, int], gateway: UssdGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = f"127.0.0.1:{control[1]}"
    listening = asyncio.ensure_future(tgw("handset", "listen", "--sim", sim, "--msisdn", MSISDN, "1"))
    await send_menu_when_listening(gateway, "Rate us: 1 good, 2 bad")
    assert await asyncio.wait_for(listening, WAIT) == 0
    assert capsys.readouterr().out == (
        "--- screen 1 (continue) ---\nRate us: 1 good, 2 bad\n> 1\n"
        f"--- screen 2 (notification, final) ---\nThank you {MSISDN}. 100MB added.\n"
    )
    assert await tgw("handset", "listen", "--sim", sim, "--msisdn", MSISDN, "--timeout", "0.1") == 4
    assert "no session opened" in capsys.readouterr().err


# --- tgw sim smsc --control and tgw handset dial, as separate processes ------------------------------


async def run_tgw(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TGW, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PROCESS_WAIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.e2e
async def test_tgw_handset_dial_against_tgw_sim_smsc(free_port: object) -> None:
    assert callable(free_port)
    port = free_port()
    sim = await asyncio.create_subprocess_exec(
        TGW,
        "sim",
        "smsc",
        "--listen",
        f"127.0.0.1:{port}",
        "--account",
        f"{SYSTEM_ID}:{PASSWORD}",
        "--control",
        "127.0.0.1:0",
        "--ussd-profile",
        "standard",
        "--ussd-timeout",
        "30",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert sim.stdout is not None
        first = (await asyncio.wait_for(sim.stdout.readline(), PROCESS_WAIT)).decode()
        assert f"listening on 127.0.0.1:{port}" in first
        second = (await asyncio.wait_for(sim.stdout.readline(), PROCESS_WAIT)).decode()
        match = re.fullmatch(r"SMSC control channel on http://127\.0\.0\.1:(\d+)\n", second)
        assert match, second
        control = f"127.0.0.1:{match.group(1)}"
        dial = ("handset", "dial", "--sim", control, "--msisdn", MSISDN)
        code, out, err = await run_tgw(*dial, "*123#", "1")
        assert (code, out) == (3, "")
        assert re.fullmatch(r"tgw: no gateway bound as receiver[^\n]*\n", err), err
        async with bound_gateway(port, get_profile("standard")):
            code, out, err = await run_tgw(*dial, "*123#", "1")
            assert (code, out, err) == (0, MENU_OUTPUT, "")
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sim.communicate(), PROCESS_WAIT)
        if sim.returncode is None:
            sim.kill()
            await sim.wait()
    assert sim.returncode == 0


async def test_tgw_sim_smsc_control_port_taken(free_port: object) -> None:
    assert callable(free_port)
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    try:
        code, _, err = await run_tgw(
            "sim",
            "smsc",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--account",
            "a:b",
            "--control",
            f"127.0.0.1:{taken}",
        )
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{taken} for control" in err

"""USSD on the simulated handset (simulators/handset.py): scripted dialogs over the SMSC simulator's
relay to the test's gateway (a real SmppClient answering with protocols.ussd, ``ussd_relay_kit``), the
handset log, network-initiated dialogs, and a thousand handsets dialling at once.
"""

from __future__ import annotations

import asyncio

import pytest
from ussd_relay_kit import WAIT, UssdGateway, bound_gateway

from protocols.errors import LocalProtocolError
from protocols.smpp.pdu import SubmitSm
from protocols.ussd import DialogueEnded, ReplyReceived
from simulators.handset import DEFAULT_PROFILE, Handset, LogKind, UserPolicy
from simulators.smsc import ScreenKind, SmscSimulator, UssdError

MSISDN = "254711000001"


def handset(smsc: SmscSimulator, msisdn: str = MSISDN) -> Handset:
    return Handset(msisdn, None, DEFAULT_PROFILE, UserPolicy(), smsc, seed=1)


async def test_a_scripted_dialog_and_its_log(smsc: SmscSimulator, gateway: UssdGateway) -> None:
    phone = handset(smsc)
    dialog = await phone.dial("*123#")
    menu = await dialog.next_screen(WAIT)
    assert menu.kind is ScreenKind.CONTINUE and dialog.awaiting_input
    await dialog.answer("1")
    final = await dialog.next_screen(WAIT)
    assert final.kind is ScreenKind.FINAL and final.text == f"Thank you {MSISDN}. 100MB added."
    assert dialog.ended and dialog.end_reason == "ended by a final screen"
    assert dialog.screens == [menu, final]
    assert [(e.kind, e.detail) for e in phone.log] == [
        (LogKind.USSD_DIALLED, "*123#"),
        (LogKind.USSD_SCREEN, f"continue: {menu.text}"),
        (LogKind.USSD_ANSWERED, "1"),
        (LogKind.USSD_SCREEN, f"final: {final.text}"),
    ]
    assert [e.status for e in phone.entries(LogKind.USSD_SCREEN)] == [0x02, 0x11]
    assert "UssdDialog 254711000001" in repr(dialog)
    await phone.close()


async def test_cancel_and_abandon_are_logged(smsc: SmscSimulator, gateway: UssdGateway) -> None:
    phone = handset(smsc)
    cancelled = await phone.dial("*123#")
    await cancelled.next_screen(WAIT)
    await cancelled.cancel()
    walked_away = await phone.dial("*123#")
    await walked_away.next_screen(WAIT)
    walked_away.abandon()
    assert [e.detail for e in phone.entries(LogKind.USSD_ENDED)] == [
        "cancelled by the user",
        "abandoned by the user",
    ]
    await gateway.wait_for(lambda: bool(gateway.events_of(DialogueEnded)), "the cancel reached the gateway")
    await cancelled.cancel()  # nothing more to log or send
    walked_away.abandon()
    assert len(phone.entries(LogKind.USSD_ENDED)) == 2
    await phone.close()


async def test_failures_are_logged_and_raised(smsc: SmscSimulator) -> None:
    phone = handset(smsc)
    with pytest.raises(UssdError, match="no gateway bound"):
        await phone.dial("*123#")
    assert phone.entries(LogKind.USSD_ENDED)[0].detail.startswith("*123#: no gateway bound")
    async with bound_gateway(smsc.address[1], smsc.ussd_profile) as gateway:
        dialog = await phone.dial("*123#")
        await dialog.next_screen(WAIT)

        def refuse(pdu: object) -> None:
            raise RuntimeError("down")

        gateway.client._mo_handlers.insert(0, refuse)
        with pytest.raises(UssdError, match="refused the USSD reply"):
            await dialog.answer("1")
        ended = phone.entries(LogKind.USSD_ENDED)[-1]
        assert "refused the USSD reply" in ended.detail and ended.status == 0x64  # ESME_RX_T_APPN
    await phone.close()


async def test_network_initiated_dialogs_reach_the_handset(smsc: SmscSimulator, gateway: UssdGateway) -> None:
    phone = handset(smsc)
    with pytest.raises(TimeoutError):
        await phone.next_network_dialog(0.05)
    await gateway.menu(MSISDN, "Rate us: 1 good, 2 bad")
    await gateway.notify(MSISDN, "Balance: 5 USD", final=True)
    menu = await phone.next_network_dialog(WAIT)
    note = await phone.next_network_dialog(WAIT)
    assert menu.session.network_initiated and (await menu.next_screen(WAIT)).text.startswith("Rate us")
    await menu.answer("1")
    assert (await menu.next_screen(WAIT)).final
    assert (await note.next_screen(WAIT)).label == "notification, final"
    assert [e.detail for e in phone.entries(LogKind.USSD_SCREEN)] == [
        "continue: Rate us: 1 good, 2 bad",
        "notification, final: Balance: 5 USD",
        f"notification, final: Thank you {MSISDN}. 100MB added.",
    ]
    await phone.close()


async def test_close_abandons_open_dialogs_and_switches_ussd_off(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    phone = handset(smsc)
    dialog = await phone.dial("*123#")
    await dialog.next_screen(WAIT)
    waiting = asyncio.ensure_future(phone.next_network_dialog(WAIT))
    await asyncio.sleep(0)
    await phone.close()
    assert dialog.session.abandoned
    with pytest.raises(LocalProtocolError, match="switched off"):
        await waiting
    with pytest.raises(LocalProtocolError, match="switched off"):
        await phone.dial("*123#")
    assert len(gateway.pdus) == 1  # switching off tells the gateway nothing


async def test_sms_and_ussd_share_a_handset(smsc: SmscSimulator, gateway: UssdGateway) -> None:
    phone = handset(smsc)
    await gateway.client.submit(SubmitSm(source_addr="123", destination_addr=MSISDN, short_message=b"Offer!"))
    dialog = await phone.dial("*123*200#")
    assert (await dialog.next_screen(WAIT)).text == "Thank you. 200MB added."
    assert phone.inbox == ["Offer!"]
    await phone.close()


async def test_a_thousand_handsets_dial_at_once_and_each_sees_its_own_screens(
    smsc: SmscSimulator, gateway: UssdGateway
) -> None:
    phones = [handset(smsc, f"2547{i:08d}") for i in range(1000)]
    before = len(asyncio.all_tasks())

    async def run(phone: Handset) -> tuple[str, str]:
        dialog = await phone.dial("*123#", timeout=30)
        menu = await dialog.next_screen(30)
        await dialog.answer("1", timeout=30)
        final = await dialog.next_screen(30)
        assert dialog.ended
        return menu.text, final.text

    results = await asyncio.wait_for(asyncio.gather(*(run(p) for p in phones)), 60)
    for phone, (menu, final) in zip(phones, results, strict=True):
        assert menu == f"Hi {phone.msisdn}\n1.100MB\n2.200MB"
        assert final == f"Thank you {phone.msisdn}. 100MB added."
    assert len(gateway.events_of(ReplyReceived)) == 1000
    assert len(gateway.events_of(DialogueEnded)) == 1000
    assert smsc.ussd_sessions == [] and smsc.stats.ussd_sessions == 1000
    assert gateway.errors == []
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= before  # nothing per handset left running
    for phone in phones:
        await phone.close()

"""The USSD service end to end over loopback: handsets dial through the SMSC simulator's USSD relay,
the ESME carries the dialogue over TCP, and UssdService answers with the shipped menus
(configs/ussd/menus.yaml) and real handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from ussd_gateway_harness import FAILURE, WAIT, MakeRig, Op, Rig

from gateway.ussd import Item, Screen, UssdContext, UssdPushError, parse_menus
from protocols.errors import LocalProtocolError
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import DeliverSm
from protocols.smpp.tlv import Tag, Tlv
from protocols.ussd import PROFILES, UssdMessage, make_profile, to_deliver
from simulators.smsc import ScreenKind

pytestmark = pytest.mark.e2e
MSISDN = "254700000100"
OTHER = "254700000101"


async def journeys(rig: Rig, count: int) -> list[str]:
    """The outcomes of the journeys, once ``count`` are logged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(rig.service.journeys) < count:
        assert loop.time() < deadline, "journey not logged"
        await asyncio.sleep(0.01)
    return [j.outcome for j in rig.service.journeys]


# --- menus -------------------------------------------------------------------------------------------


async def test_three_levels_deep_with_paging_back_and_buy(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    main = await phone.dial("*123#")
    assert main.kind is ScreenKind.CONTINUE and main.op is Op.USSR_REQ
    assert main.text.startswith("Data shop\n1. Buy data bundle\n2. My offers")

    kinds = await phone.reply("1")
    assert kinds.text == (
        "Choose a bundle type\n1. Daily bundles\n2. Weekly bundles\n3. Monthly bundles\n0. Back"
    )
    page1 = await phone.reply("3")
    assert page1.text.startswith("Monthly bundles")
    assert page1.text.endswith("3. 3GB Monthly Smart for 600 KES\n99. More\n0. Back")
    assert len(page1.text) <= 182

    page2 = await phone.reply("99")
    assert page2.text.startswith("4. 5GB Monthly Power for 1000 KES")
    assert "99. More" not in page2.text and page2.text.endswith("0. Back")
    assert len(page2.text) <= 182

    assert (await phone.reply("0")).text == page1.text  # back a page
    assert (await phone.reply("0")).text == kinds.text  # back a screen

    await phone.reply("3")
    await phone.reply("99")
    confirm = await phone.reply("5")
    assert confirm.text == "Buy 8000MB valid 30 days for 1500 KES?\n1. Yes, buy\n2. No\n0. Back"
    final = await phone.reply("1")
    assert final.kind is ScreenKind.FINAL and final.op is Op.PSSR_RESP
    assert final.text == f"Thank you. 8000MB added to {MSISDN}."
    assert rig.billing.purchases == [
        {"msisdn": MSISDN, "mb": "8000", "price": "1500", "channel": "ussd_menu"}
    ]
    context = rig.billing.contexts[-1]
    assert context.service_code == "*123#"
    assert context.inputs == ("1", "3", "99", "0", "0", "3", "99", "5", "1")
    assert context.variables["validity"] == "30 days" and context.screen == "buy"

    # on the wire: nine USSR requests, then the PSSR response with the end-of-session bit, each
    # echoing the session and advancing the sequence of its_session_info (SMPP 3.4 5.3.2.43)
    wire = phone.wire
    assert [m.op for m in wire] == [Op.USSR_REQ] * 9 + [Op.PSSR_RESP]
    assert [m.end for m in wire] == [False] * 9 + [True]
    assert {m.session_id for m in wire} == {phone.session.session_id}
    assert [m.sequence for m in wire] == list(range(1, 20, 2))

    assert await journeys(rig, 1) == ["completed"]
    journey = rig.service.journeys[-1]
    assert journey.msisdn == MSISDN and journey.service_code == "*123#"
    assert [s.kind for s in journey.steps][:3] == ["screen", "input", "screen"]
    assert journey.steps[-1].kind == "final" and journey.steps[-1].screen == "buy"
    assert [s.screen for s in journey.steps if s.kind == "screen"][:3] == ["main", "buy_data", "monthly"]
    assert rig.service.live_dialogues == 0


async def test_home_goes_back_to_the_entry_screen(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    main = await phone.dial("*123#")
    await phone.reply("1")
    await phone.reply("2")
    assert (await phone.reply("00")).text == main.text
    # at the entry screen back and home have nowhere to go: they are wrong choices
    wrong = await phone.reply("0")
    assert wrong.text.startswith("Invalid choice, please try again.\nData shop")


async def test_wrong_menu_choices_then_give_up(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    for _ in range(3):
        screen = await phone.reply("7")
        assert not screen.final and screen.text.startswith("Invalid choice, please try again.\n")
    final = await phone.reply("8")
    assert final.final and final.text == "Too many invalid attempts. Please dial *123# again."
    assert await journeys(rig, 1) == ["too_many_attempts"]


async def test_input_validation_with_retries_then_failure(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    prompt = await phone.walk("*123#", "3")
    assert prompt.text == "Enter your friend's number (07XXXXXXXX):"
    first = await phone.reply("12345")
    assert first.text == "That is not a valid number.\nEnter your friend's number (07XXXXXXXX):"
    second = await phone.reply("07123")
    assert not second.final and second.text.startswith("That is not a valid number.")
    final = await phone.reply("abc")
    assert final.final and final.text == "Too many invalid numbers. Please dial *123# again."
    assert rig.billing.gifts == []
    assert await journeys(rig, 1) == ["too_many_attempts"]


async def test_input_validation_accepts_after_a_retry(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    await phone.walk("*123#", "3")
    amount = await phone.reply("0712345678")
    assert amount.text == "Enter the MB to send (50-1000):"
    low = await phone.reply("20")
    assert low.text.startswith("Enter a whole number from 50 to 1000.")
    confirm = await phone.reply("500")
    assert confirm.text.startswith("Send 500MB to 0712345678?")
    # back from the confirmation returns to the amount prompt
    assert (await phone.reply("0")).text == "Enter the MB to send (50-1000):"
    await phone.reply("750")
    final = await phone.reply("1")
    assert final.final and final.text == "750MB sent to 0712345678."
    assert rig.billing.gifts == [{"to": "0712345678", "mb": "750"}]


async def test_dynamic_my_offers(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    offers = await phone.walk("*123#", "2")
    assert offers.text == "Your offers\n1. Night 500MB 30 KES\n2. Weekend 2000MB 99 KES\n0. Back"
    assert rig.billing.contexts[-1].screen == "my_offers"
    confirm = await phone.reply("2")
    assert confirm.text.startswith("Buy Weekend (2000MB) for 99 KES?")
    calls = len(rig.billing.contexts)
    assert (await phone.reply("0")).text == offers.text
    assert len(rig.billing.contexts) == calls  # back keeps the items: the provider is not asked again
    await phone.reply("2")
    final = await phone.reply("1")
    assert final.text == f"Thank you. 2000MB added to {MSISDN}."
    assert rig.billing.purchases[-1] == {
        "msisdn": MSISDN,
        "mb": "2000",
        "price": "99",
        "offer_id": "o-2",
        "channel": "ussd_offer",
    }


async def test_dynamic_screen_pages_many_items(rig: Rig) -> None:
    rig.billing.offers = [
        {"id": f"o{i}", "name": f"Offer number {i}", "mb": 100 * i, "price": i} for i in range(1, 16)
    ]
    phone = rig.handsets.phone(MSISDN)
    page = await phone.walk("*123#", "2")
    shown: list[str] = []
    while True:
        assert len(page.text) <= 182
        shown += [line.split(".")[0] for line in page.text.splitlines() if line[:1].isdigit()]
        if "99. More" not in page.text:
            break
        page = await phone.reply("99")
    assert [n for n in shown if n not in ("99", "0")] == [str(i) for i in range(1, 16)]
    confirm = await phone.reply("15")
    assert confirm.text.startswith("Buy Offer number 15 (1500MB)")


async def test_dynamic_screen_without_items(rig: Rig) -> None:
    rig.billing.offers = []
    final = await rig.handsets.phone(MSISDN).walk("*123#", "2")
    assert final.final and final.text == "You have no offers right now. Dial *123# for all bundles."


async def test_shortcuts_walk_the_menu(rig: Rig) -> None:
    monthly = await rig.handsets.phone(MSISDN).dial("*123*1*3#")
    assert not monthly.final and monthly.text.startswith("Monthly bundles")
    help_screen = await rig.handsets.phone(OTHER).dial("*123*5#")
    assert help_screen.final and help_screen.text.startswith("Dial *123# for bundles")


# --- one-shot codes and routing ----------------------------------------------------------------------


async def test_one_shot_purchase_code(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    final = await phone.dial("*123*500#")
    assert final.kind is ScreenKind.FINAL and final.op is Op.PSSR_RESP
    assert final.text == f"Thank you. 500MB added to {MSISDN}."
    assert [(m.op, m.end) for m in phone.wire] == [(Op.PSSR_RESP, True)]
    assert rig.billing.purchases == [{"msisdn": MSISDN, "mb": "500", "channel": "ussd_code"}]
    context = rig.billing.contexts[-1]
    assert context.params == ("500",) and context.named == {"mb": "500"} and context.base_code == "*123#"
    assert await journeys(rig, 1) == ["completed"]


async def test_unknown_codes_get_a_final_screen(rig: Rig) -> None:
    for n, code in enumerate(("*999#", "*124*1#", "#123#")):
        final = await rig.handsets.phone(f"25470000020{n}").dial(code)
        assert final.final and final.text == "Unknown service code. Dial *123# for the data shop."
    # a string that is no service code at all (a real USSD gateway would not pass it on)
    raw = UssdMessage(Op.PSSR_IND, OTHER, "hello", "123", 5, 0, service_code="hello")
    assert await rig.smsc.deliver(to_deliver(raw, rig.handsets.profile), timeout=WAIT) == 0
    assert await journeys(rig, 4) == ["unknown_service"] * 4


async def test_non_ussd_and_broken_pdus_are_left_alone(rig: Rig) -> None:
    sms = DeliverSm(source_addr=MSISDN, destination_addr="123", short_message=b"hello")
    assert await rig.smsc.deliver(sms, timeout=WAIT) == 0  # not ours: acknowledged, nothing else
    odd_ucs2 = DeliverSm(
        source_addr=MSISDN,
        destination_addr="123",
        data_coding=0x08,
        short_message=b"\x00*\x00",
        optional_parameters=(Tlv(Tag.USSD_SERVICE_OP, b"\x01"), Tlv(Tag.ITS_SESSION_INFO, b"\x01\x00")),
    )
    # undecodable text: logged and refused with the decoder's status, so the SMSC does not retry it
    assert await rig.smsc.deliver(odd_ucs2, timeout=WAIT) not in (0, CommandStatus.ESME_RX_T_APPN)
    bad_tlv = DeliverSm(
        source_addr=MSISDN,
        destination_addr="123",
        short_message=b"*123#",
        optional_parameters=(Tlv(Tag.USSD_SERVICE_OP, b"\x01"), Tlv(Tag.ITS_SESSION_INFO, b"\x01")),
    )
    assert await rig.smsc.deliver(bad_tlv, timeout=WAIT) != 0  # the SMPP layer refuses it
    await rig.handsets.phone(MSISDN).nothing()
    assert rig.service.stats.invalid == 1 and rig.service.stats.dialogues == 0


async def test_retransmitted_dial_is_answered_once(make_rig: MakeRig) -> None:
    release = asyncio.Event()

    async def slow_buy(context: UssdContext) -> str:
        await release.wait()
        return "Bought."

    rig = await make_rig(handlers={"buy_package": slow_buy, "gift_data": slow_buy, "balance": slow_buy})
    phone = rig.handsets.phone(MSISDN)
    phone._session = await rig.smsc.dial(MSISDN, "*123*100#", timeout=WAIT)
    session = phone.session
    # the USSD gateway repeats the PSSR indication while the application works on it
    again = UssdMessage(
        Op.PSSR_IND, MSISDN, "*123*100#", "123", session.session_id, 0, service_code="*123*100#"
    )
    assert await rig.smsc.deliver(to_deliver(again, rig.handsets.profile), timeout=WAIT) == 0
    release.set()
    assert (await phone.screen()).text == "Bought."
    await phone.nothing()
    assert len(phone.wire) == 1 and rig.service.stats.dialogues == 1


# --- failures never hang a subscriber ----------------------------------------------------------------


async def test_handler_error_ends_with_the_failure_screen(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(context: UssdContext) -> str:
        raise RuntimeError("billing is down")

    async def offers(context: UssdContext) -> Sequence[Item]:
        return []

    rig = await make_rig(
        handlers={"buy_package": broken, "gift_data": broken, "balance": broken},
        providers={"my_offers": offers},
    )
    with caplog.at_level(logging.WARNING, logger="gateway.ussd.service"):
        final = await rig.handsets.phone(MSISDN).dial("*123*200#")
    assert final.final and final.text == FAILURE
    assert "billing is down" in caplog.text
    balance = await rig.handsets.phone(OTHER).walk("*123#", "4")
    assert balance.final and balance.text == FAILURE
    assert await journeys(rig, 2) == ["failed", "failed"]
    assert rig.service.stats.failures == 2


async def test_handler_answering_garbage_ends_with_the_failure_screen(make_rig: MakeRig) -> None:
    async def wrong(context: UssdContext) -> str:
        return 42  # type: ignore[return-value]

    async def offers(context: UssdContext) -> Sequence[Item]:
        return "not a list"  # type: ignore[return-value]

    rig = await make_rig(
        handlers={"buy_package": wrong, "gift_data": wrong, "balance": wrong},
        providers={"my_offers": offers},
    )
    assert (await rig.handsets.phone(MSISDN).dial("*123*100#")).text == FAILURE
    final = await rig.handsets.phone(OTHER).walk("*123#", "2")
    assert final.final and final.text == FAILURE


async def test_provider_timeout_ends_with_the_failure_screen(make_rig: MakeRig) -> None:
    started = asyncio.Event()

    async def slow(context: UssdContext) -> Sequence[Item]:
        started.set()
        await asyncio.sleep(10)
        return []

    rig = await make_rig(providers={"my_offers": slow}, handler_timeout=0.2)
    loop = asyncio.get_running_loop()
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    before = loop.time()
    final = await phone.reply("2")
    assert started.is_set()
    assert final.final and final.text == FAILURE
    assert 0.15 < loop.time() - before < 2.0
    assert await journeys(rig, 1) == ["failed"]


async def test_handler_that_continues_the_dialogue(make_rig: MakeRig) -> None:
    """A handler answering a non-final Screen gets every later input (the aggregator model)."""

    async def quiz(context: UssdContext) -> str | Screen:
        if len(context.inputs) < 2:
            return Screen(f"Question {len(context.inputs) + 1}? (so far: {','.join(context.inputs)})", False)
        return f"Done: {'*'.join(context.inputs)}"

    menus = parse_menus(
        "services:\n  - {code: '*150#', handler: quiz}\nscreens:\n  end: {type: final, text: bye}\n",
        handlers={"quiz"},
    )
    rig = await make_rig(menus=menus, handlers={"quiz": quiz}, providers={})
    phone = rig.handsets.phone(MSISDN)
    assert (await phone.dial("*150#")).text == "Question 1? (so far: )"
    assert (await phone.reply("0")).text == "Question 2? (so far: 0)"
    final = await phone.reply("b")
    assert final.final and final.text == "Done: 0*b"


async def test_screens_over_the_limit_are_cut(make_rig: MakeRig) -> None:
    async def chatty(context: UssdContext) -> str:
        return "x" * 400

    menus = parse_menus(
        "services:\n  - {code: '*150#', handler: chatty}\nscreens:\n  end: {type: final, text: bye}\n"
    )
    rig = await make_rig(menus=menus, handlers={"chatty": chatty}, providers={})
    final = await rig.handsets.phone(MSISDN).dial("*150#")
    assert final.final and final.text == "x" * 179 + "..."


# --- timeouts, aborts, load ---------------------------------------------------------------------------


async def test_reply_timeout_releases_the_dialogue(make_rig: MakeRig) -> None:
    rig = await make_rig(per_reply_timeout=0.3)
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    release = await phone.screen(timeout=3)  # the user said nothing
    assert release.final and release.text == ""
    # the standard profile has no release op: the final op with the end-of-session bit
    assert (phone.wire[-1].op, phone.wire[-1].end) == (Op.PSSR_RESP, True)
    assert await journeys(rig, 1) == ["timeout"]
    # a late answer finds no dialogue: nothing is sent
    late = UssdMessage(Op.USSR_CONF, MSISDN, "1", "123", phone.session.session_id, 3)
    assert await rig.smsc.deliver(to_deliver(late, rig.handsets.profile), timeout=WAIT) == 0
    await phone.nothing()
    assert rig.service.stats.timeouts == 1


async def test_abandoned_session_is_released_with_the_vendor_release_op(make_rig: MakeRig) -> None:
    rig = await make_rig(profile=PROFILES["6d"], per_reply_timeout=0.3)
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    phone.session.abandon()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(phone.wire) < 2:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    assert (phone.wire[-1].op, phone.wire[-1].end) == (Op.RELEASE, True)
    assert await journeys(rig, 1) == ["timeout"]


async def test_session_timeout_cancels_slow_work_and_releases(make_rig: MakeRig) -> None:
    cancelled = asyncio.Event()

    async def slow(context: UssdContext) -> Sequence[Item]:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return []

    rig = await make_rig(providers={"my_offers": slow}, session_timeout=0.4, handler_timeout=5)
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    await phone.session.reply("2")
    release = await phone.screen(timeout=3)
    assert release.final and release.text == ""
    await asyncio.wait_for(cancelled.wait(), WAIT)
    assert await journeys(rig, 1) == ["session_timeout"]


@pytest.mark.parametrize(("profile_name", "outcome"), [("standard", "ended_by_network"), ("6d", "aborted")])
async def test_release_by_the_user(make_rig: MakeRig, profile_name: str, outcome: str) -> None:
    rig = await make_rig(profile=PROFILES[profile_name])
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    await phone.session.release()
    assert await journeys(rig, 1) == [outcome]
    await phone.nothing()


async def test_a_new_dial_on_a_live_session_replaces_it(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    session = phone.session
    # the network reuses the session number with a new PSSR indication
    again = UssdMessage(
        Op.PSSR_IND, MSISDN, "*123*500#", "123", session.session_id, 0, service_code="*123*500#"
    )
    assert await rig.smsc.deliver(to_deliver(again, rig.handsets.profile), timeout=WAIT) == 0
    final = await phone.screen()
    assert final.final and final.text.startswith("Thank you. 500MB")
    assert await journeys(rig, 2) == ["aborted", "completed"]


@pytest.mark.parametrize("profile_name", ["standard", "6d", "mica"])
async def test_vendor_profiles(make_rig: MakeRig, profile_name: str) -> None:
    rig = await make_rig(profile=PROFILES[profile_name])
    phone = rig.handsets.phone(MSISDN)
    final = await phone.walk("*123#", "1", "1", "2", "1")
    assert final.final and final.text == f"Thank you. 100MB added to {MSISDN}."
    assert {m.session_id for m in phone.wire} == {phone.session.session_id}


async def test_service_code_in_destination_addr(make_rig: MakeRig) -> None:
    profile = make_profile("standard", "dest", service_code_field="destination_addr")
    rig = await make_rig(profile=profile)
    final = await rig.handsets.phone(MSISDN).dial("*123*200#")
    assert final.final and final.text == f"Thank you. 200MB added to {MSISDN}."


async def test_ucs2_screens_use_the_ucs2_limit(make_rig: MakeRig) -> None:
    menus = parse_menus(
        "services:\n  - {code: '*130#', menu: m}\nscreens:\n"
        "  m:\n    type: menu\n    text: Пакеты данных\n    options:\n"
        + "".join(f"      - {{label: Пакет номер {i} на месяц, next: end}}\n" for i in range(1, 9))
        + "  end: {type: final, text: Спасибо}\n"
    )
    rig = await make_rig(menus=menus, handlers={}, providers={})
    phone = rig.handsets.phone(MSISDN)
    first = await phone.dial("*130#")
    assert phone.wire[-1].data_coding == 0x08
    assert len(first.text) <= 80 and first.text.endswith("99. More")
    second = await phone.reply("99")
    assert len(second.text) <= 80 and second.text.endswith("0. Back")
    assert (await phone.reply("0")).text == first.text
    assert (await phone.reply("1")).text == "Спасибо"


async def test_refused_when_busy(make_rig: MakeRig) -> None:
    rig = await make_rig(max_dialogues=1)
    await rig.handsets.phone(MSISDN).dial("*123#")
    busy = await rig.handsets.phone(OTHER).dial("*123#")
    assert busy.final and busy.text == "The service is busy. Please try again in a few minutes."
    assert rig.service.stats.refused == 1


async def test_concurrent_dialogues(rig: Rig) -> None:
    async def one(n: int) -> str:
        phone = rig.handsets.phone(f"2547001{n:05d}")
        final = await phone.walk("*123#", "1", str(1 + n % 3), "1", "1")
        return final.text

    texts = await asyncio.gather(*(one(n) for n in range(100)))
    assert all(t.startswith("Thank you.") for t in texts)
    assert len(rig.billing.purchases) == 100
    assert set(await journeys(rig, 100)) == {"completed"}


# --- network-initiated -------------------------------------------------------------------------------


async def test_notify_ussn(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    phone.accept_pushes()
    assert await rig.service.notify(MSISDN, "Your 500MB bundle is active until 30 June.")
    session = await phone.pushed_session()
    note = await session.next_screen(WAIT)
    assert note.kind is ScreenKind.NOTIFICATION and note.final
    assert note.text == "Your 500MB bundle is active until 30 June."
    assert (phone.wire[-1].op, phone.wire[-1].end) == (Op.USSN_REQ, True)
    assert await journeys(rig, 1) == ["notified"]
    journey = rig.service.journeys[-1]
    assert journey.network_initiated and journey.steps[0].kind == "notify"
    with pytest.raises(LocalProtocolError, match="limit"):
        await rig.service.notify(MSISDN, "x" * 200)


async def test_notify_to_a_handset_the_network_cannot_reach(rig: Rig) -> None:
    # no handset registered: the SMSC answers ESME_RINVDSTADR
    assert await rig.service.notify(OTHER, "Hello") is False
    assert await rig.service.notify(OTHER, "Hello", wait_confirm=True) is False
    assert await journeys(rig, 2) == ["failed", "failed"]
    assert rig.service.stats.send_failures == 2


async def test_notify_waiting_for_the_confirm(make_rig: MakeRig) -> None:
    rig = await make_rig(per_reply_timeout=0.3)
    phone = rig.handsets.phone(MSISDN)
    phone.accept_pushes()
    assert await asyncio.wait_for(rig.service.notify(MSISDN, "Balance: 350MB", wait_confirm=True), WAIT)
    session = await phone.pushed_session()
    note = await session.next_screen(WAIT)
    assert note.kind is ScreenKind.NOTIFICATION and not note.final
    release = await session.next_screen(WAIT)  # confirmed by the handset, then released by us
    assert release.final
    # a user who ignores it: no confirm within the per-reply timeout
    ignoring = rig.handsets.phone(OTHER)
    ignoring.accept_pushes(abandon=True)
    assert await asyncio.wait_for(rig.service.notify(OTHER, "Hello", wait_confirm=True), WAIT) is False
    assert await journeys(rig, 2) == ["confirmed", "timeout"]


async def test_push_menu_network_initiated(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    phone.accept_pushes()
    key = await rig.service.push_menu(
        MSISDN, "confirm", variables={"mb": "500", "price": "60", "validity": "7 days"}
    )
    session = await phone.pushed_session()
    assert session.session_id == key.session_id and session.network_initiated
    menu = await phone.screen()
    assert menu.kind is ScreenKind.CONTINUE
    assert menu.text == "Buy 500MB valid 7 days for 60 KES?\n1. Yes, buy\n2. No"
    final = await phone.reply("1")
    assert final.final and final.text == f"Thank you. 500MB added to {MSISDN}."
    assert final.op is Op.USSN_REQ  # no PSSR to answer: the final screen is a notify with the end bit
    assert rig.billing.contexts[-1].network_initiated
    assert await journeys(rig, 1) == ["completed"]
    assert rig.service.journeys[-1].network_initiated


async def test_push_menu_dynamic_final_and_failures(make_rig: MakeRig) -> None:
    rig = await make_rig()
    phone = rig.handsets.phone(MSISDN)
    phone.accept_pushes()
    await rig.service.push_menu(MSISDN, "my_offers")
    await phone.pushed_session()
    offers = await phone.screen()
    assert offers.text == "Your offers\n1. Night 500MB 30 KES\n2. Weekend 2000MB 99 KES"
    # a final screen pushed is a notification with the end bit
    other = rig.handsets.phone(OTHER)
    other.accept_pushes()
    await rig.service.push_menu(OTHER, "help")
    await other.pushed_session()
    note = await other.screen()
    assert note.kind is ScreenKind.NOTIFICATION and note.final
    with pytest.raises(LocalProtocolError, match="no USSD screen"):
        await rig.service.push_menu(MSISDN, "nope")
    # the SMSC cannot reach the handset
    with pytest.raises(UssdPushError, match="did not take"):
        await rig.service.push_menu("254700000999", "main")

    async def down(context: UssdContext) -> Sequence[Item]:
        raise ConnectionError("campaign core unreachable")

    broken = await make_rig(providers={"my_offers": down})
    with pytest.raises(UssdPushError, match="campaign core unreachable"):
        await broken.service.push_menu(MSISDN, "my_offers")


async def test_close_releases_live_dialogues(make_rig: MakeRig) -> None:
    rig = await make_rig()
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    await rig.service.close()
    release = await phone.screen()
    assert release.final
    assert rig.service.journeys[-1].outcome == "closed"
    await rig.service.close()  # twice is fine
    # a closed service ignores USSD
    raw = UssdMessage(Op.PSSR_IND, MSISDN, "*123#", "123", 9, 0, service_code="*123#")
    assert await rig.smsc.deliver(to_deliver(raw, rig.handsets.profile), timeout=WAIT) == 0
    await phone.nothing()


async def test_journey_log_is_bounded(make_rig: MakeRig) -> None:
    rig = await make_rig(journey_limit=3, max_journey_steps=4)
    seen: list[object] = []
    rig.service.add_journey_listener(seen.append)
    rig.service.add_journey_listener(lambda journey: 1 / 0)  # a broken listener is logged, not fatal
    for n in range(5):
        await rig.handsets.phone(f"25470000030{n}").dial("*123*100#")
    final = await rig.handsets.phone(MSISDN).walk("*123#", "1", "1", "1", "1")
    assert final.final
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(seen) < 6:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    assert len(rig.service.journeys) == 3
    last = rig.service.journeys[-1]
    assert len(last.steps) == 4 and last.steps_dropped == 5


# --- lifecycle and corners ---------------------------------------------------------------------------


async def test_context_manager_and_explicit_short_code(make_rig: MakeRig) -> None:
    from ussd_gateway_harness import SHIPPED_MENUS

    from gateway.ussd import UssdService, load_menus

    rig = await make_rig()
    await rig.service.close()  # the rig's own service steps aside
    async with UssdService(
        rig.client,
        rig.handsets.profile,
        load_menus(SHIPPED_MENUS),
        rig.billing.handlers(),
        rig.billing.providers(),
        service_addr="555",
    ) as service:
        await service.start()  # a second start changes nothing
        phone = rig.handsets.phone(MSISDN)
        phone.accept_pushes()
        await service.push_menu(MSISDN, "main")
        session = await phone.pushed_session()
        assert session.service_addr == "555"
        assert (await phone.screen()).text.startswith("Data shop")
        assert (await phone.reply("5")).text.startswith("Dial *123# for bundles")
    assert service.journeys[-1].outcome == "completed"


async def test_shortcuts_stop_at_a_final_screen(rig: Rig) -> None:
    final = await rig.handsets.phone(MSISDN).dial("*123*5*1*1#")
    assert final.final and final.text.startswith("Dial *123# for bundles")


async def test_phase1_dial_gets_a_final_answer(rig: Rig) -> None:
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    session = phone.session
    # the same session goes on as a MAP phase 1 PSSD indication: it takes no USSR request
    pssd = UssdMessage(Op.PSSD_IND, MSISDN, "*123#", "123", session.session_id, 0, service_code="*123#")
    assert await rig.smsc.deliver(to_deliver(pssd, rig.handsets.profile), timeout=WAIT) == 0
    final = await phone.screen()
    assert final.final and final.op is Op.PSSD_RESP and final.text.startswith("Data shop\n1. Buy data")


async def test_work_that_ignores_cancellation_sends_nothing_after_the_release(make_rig: MakeRig) -> None:
    finished = asyncio.Event()

    async def stubborn(context: UssdContext) -> Sequence[Item]:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # keeps working although the dialogue is over
        finished.set()
        return [{"name": "late", "mb": 1, "price": 1, "id": "x"}]

    rig = await make_rig(providers={"my_offers": stubborn}, session_timeout=0.3)
    phone = rig.handsets.phone(MSISDN)
    await phone.dial("*123#")
    await phone.session.reply("2")
    assert (await phone.screen(timeout=3)).final  # the release
    await asyncio.wait_for(finished.wait(), WAIT)
    await phone.nothing()
    assert [m.op for m in phone.wire] == [Op.USSR_REQ, Op.PSSR_RESP]

"""USSD end to end over loopback: simulated handsets dial through the SMSC simulator's USSD relay, the
gateway's ESME carries each dialogue over TCP (SMPP 3.4 ``ussd_service_op`` 5.3.2.44 and
``its_session_info`` 5.3.2.43), and UssdService answers with the shipped menus
(configs/ussd/menus.yaml) and the real async handlers of ``ussd_e2e_kit.Shop``.

Menus three levels deep with paging and back, a purchase recorded exactly once, one-shot purchase
codes, invalid input, a thousand handsets at once, the per-reply / network / session timeouts, and
handlers that fail or never answer: the subscriber always gets a clear final screen, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ussd_e2e_kit import (
    BUNDLES,
    BUY_DATA,
    FAILURE,
    INVALID,
    MAIN,
    UNKNOWN_SERVICE,
    WAIT,
    Op,
    UssdBed,
    bundle_menu,
    confirm_screen,
    offers_of,
    offers_screen,
    open_bed,
    silence,
    thank_you,
    walk,
)

from protocols.errors import LocalProtocolError
from simulators.handset import LogKind
from simulators.smsc import ScreenKind, UssdScreen

pytestmark = pytest.mark.e2e

MSISDN = "254700000123"
MONTHLY_1 = (
    "Monthly bundles (valid 30 days), prices include tax\n1. 1GB Monthly Starter for 250 KES\n"
    "2. 2GB Monthly Plus for 450 KES\n3. 3GB Monthly Smart for 600 KES\n99. More\n0. Back"
)
MONTHLY_2 = (
    "4. 5GB Monthly Power for 1000 KES\n5. 8GB Monthly Max for 1500 KES\n6. 10GB Monthly Ultra for 2000 KES\n"
    "7. 20GB Monthly Home for 3000 KES\n8. 50GB Monthly Office for 5000 KES\n0. Back"
)

MakeBed = Callable[..., Any]


@pytest.fixture
async def make_bed() -> AsyncIterator[MakeBed]:
    """``await make_bed(profile=..., ussd_timeout=..., **service_kwargs)``: a started UssdBed, closed
    after the test."""
    stack = contextlib.AsyncExitStack()

    async def make(**kwargs: Any) -> UssdBed:
        bed: UssdBed = await stack.enter_async_context(open_bed(**kwargs))
        return bed

    async with stack:
        yield make


def texts(screens: list[UssdScreen]) -> list[str]:
    return [screen.text for screen in screens]


# --- menus ----------------------------------------------------------------------------------------------


async def test_three_levels_deep_with_more_and_back_then_buy(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    phone = bed.handset(MSISDN)
    dialog = await phone.dial("*123#")
    inputs = ("1", "3", "99", "0", "0", "2", "2", "1")
    screens = await walk(dialog, *inputs)
    assert texts(screens) == [
        MAIN,
        BUY_DATA,  # level 2
        MONTHLY_1,  # level 3, paged: eight bundles do not fit 182 characters
        MONTHLY_2,  # More
        MONTHLY_1,  # Back a page
        BUY_DATA,  # Back a screen
        bundle_menu("2"),  # weekly
        confirm_screen("500", "100", "7 days"),
        thank_you(MSISDN, "500", "100"),
    ]
    assert all(len(text) <= 182 for text in texts(screens))
    assert [s.kind for s in screens] == [ScreenKind.CONTINUE] * 8 + [ScreenKind.FINAL]
    assert dialog.ended and not dialog.awaiting_input

    # the purchase happened once, with what the subscriber chose
    assert bed.shop.purchases == [{"msisdn": MSISDN, "mb": "500", "price": "100", "channel": "ussd_menu"}]
    with pytest.raises(LocalProtocolError, match="is over"):
        await dialog.answer("1")  # pressing Send again on the final screen sends nothing
    await silence(lambda: (len(bed.shop.purchases), len(bed.wire.submits[MSISDN])))
    assert bed.shop.purchases == [{"msisdn": MSISDN, "mb": "500", "price": "100", "channel": "ussd_menu"}]

    # on the wire: the handset's PSSR indication and eight USSR confirms, the gateway's eight USSR
    # requests and the PSSR response with the end bit, one session, the sequence advancing by one
    session = dialog.session.session_id
    sent, received = bed.wire.submits[MSISDN], bed.wire.delivers[MSISDN]
    assert [m.op for m in received] == [Op.PSSR_IND] + [Op.USSR_CONF] * 8
    assert [m.text for m in received] == ["*123#", *inputs]
    assert [m.op for m in sent] == [Op.USSR_REQ] * 8 + [Op.PSSR_RESP]
    assert [m.end for m in sent] == [False] * 8 + [True]
    assert [m.text for m in sent] == texts(screens)
    assert [(m.session_id, m.sequence) for m in received] == [(session, n) for n in range(0, 17, 2)]
    assert [(m.session_id, m.sequence) for m in sent] == [(session, n) for n in range(1, 18, 2)]
    assert [s.sequence for s in screens] == list(range(1, 18, 2))

    # both sides forgot the dialogue; the journey says what happened
    assert await bed.journeys(1) == ["completed"]
    journey = bed.service.journeys[-1]
    assert (journey.msisdn, journey.session_id, journey.service_code) == (MSISDN, session, "*123#")
    assert [s.text for s in journey.steps if s.kind == "input"] == list(inputs)
    assert journey.steps[-1].kind == "final" and journey.steps[-1].screen == "buy"
    assert bed.service.live_dialogues == 0 and bed.smsc.ussd_sessions == []
    assert [e.kind for e in phone.log].count(LogKind.USSD_SCREEN) == 9


async def test_one_shot_purchase_code(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    dialog = await bed.handset(MSISDN).dial("*123*500#")
    final = await dialog.next_screen(WAIT)
    assert final.kind is ScreenKind.FINAL and final.op is Op.PSSR_RESP
    assert final.text == thank_you(MSISDN, "500", "0")
    assert bed.shop.purchases == [{"msisdn": MSISDN, "mb": "500", "channel": "ussd_code"}]
    ((answer,),) = [bed.wire.submits[MSISDN]]
    assert (answer.op, answer.end, answer.session_id, answer.sequence) == (
        Op.PSSR_RESP,
        True,
        dialog.session.session_id,
        1,
    )
    assert await bed.journeys(1) == ["completed"]
    await silence(lambda: len(bed.shop.purchases))


async def test_shortcut_code_into_my_offers(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    dialog = await bed.handset(MSISDN).dial("*123*2#")  # option 2 of the main menu, dialled
    offer = offers_of(MSISDN)[0]
    screens = await walk(dialog, "1", "1")
    assert texts(screens) == [
        offers_screen(MSISDN),
        f"Buy {offer['name']} ({offer['mb']}MB) for {offer['price']} KES?\n1. Yes, buy\n2. No\n0. Back",
        thank_you(MSISDN, str(offer["mb"]), str(offer["price"])),
    ]
    assert bed.shop.purchases == [
        {
            "msisdn": MSISDN,
            "mb": str(offer["mb"]),
            "price": str(offer["price"]),
            "offer_id": f"o-{MSISDN}",
            "channel": "ussd_offer",
        }
    ]


# --- invalid input --------------------------------------------------------------------------------------


async def test_invalid_input(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    phone = bed.handset(MSISDN)

    # a wrong menu choice, then a wrong number twice on an input screen, then the right ones
    dialog = await phone.dial("*123#")
    screens = await walk(dialog, "7", "3", "12345", "0712345678", "5000", "60", "1")
    assert texts(screens) == [
        MAIN,
        f"{INVALID}\n{MAIN}",
        "Enter your friend's number (07XXXXXXXX):",
        "That is not a valid number.\nEnter your friend's number (07XXXXXXXX):",
        "Enter the MB to send (50-1000):",
        "Enter a whole number from 50 to 1000.\nEnter the MB to send (50-1000):",
        "Send 60MB to 0712345678?\n1. Yes, send\n2. No\n0. Back",
        "60MB sent to 0712345678.",
    ]
    assert bed.shop.gifts == [{"from": MSISDN, "to": "0712345678", "mb": "60"}]

    # wrong choices until the menu gives up
    dialog = await phone.dial("*123#")
    screens = await walk(dialog, "9", "9", "9", "9")
    assert texts(screens)[1:4] == [f"{INVALID}\n{MAIN}"] * 3
    assert screens[-1].final and screens[-1].text == "Too many invalid attempts. Please dial *123# again."

    # a code nobody serves, and a purchase amount that is not on sale (it falls back to the menu)
    unknown = await (await phone.dial("*999#")).next_screen(WAIT)
    assert unknown.final and unknown.text == UNKNOWN_SERVICE
    not_on_sale = await (await phone.dial("*123*300#")).next_screen(WAIT)
    assert not not_on_sale.final and not_on_sale.text == f"{INVALID}\n{MAIN}"

    # a string that is no USSD code never leaves the handset
    with pytest.raises(LocalProtocolError, match="not a USSD service code"):
        await phone.dial("123")
    assert bed.shop.purchases == []
    assert (await bed.journeys(3))[:3] == ["completed", "too_many_attempts", "unknown_service"]


# --- load -------------------------------------------------------------------------------------------------


def expected_dialogue(n: int, msisdn: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Handset ``n``'s inputs, the screens it must see and the purchase it must make: even handsets
    buy a daily or weekly bundle three levels deep, odd ones buy their own offer."""
    if n % 2 == 0:
        kind, choice = str(1 + n // 2 % 2), n // 4 % 3
        mb, price, validity = BUNDLES[kind][choice]
        inputs = ["1", kind, str(choice + 1), "1"]
        screens = [MAIN, BUY_DATA, bundle_menu(kind), confirm_screen(mb, price, validity)]
        purchase = {"msisdn": msisdn, "mb": mb, "price": price, "channel": "ussd_menu"}
    else:
        offer = offers_of(msisdn)[0]
        mb, price = str(offer["mb"]), str(offer["price"])
        inputs = ["2", "1", "1"]
        confirm = f"Buy {offer['name']} ({mb}MB) for {price} KES?\n1. Yes, buy\n2. No\n0. Back"
        screens = [MAIN, offers_screen(msisdn), confirm]
        purchase = {
            "msisdn": msisdn,
            "mb": mb,
            "price": price,
            "offer_id": f"o-{msisdn}",
            "channel": "ussd_offer",
        }
    return inputs, [*screens, thank_you(msisdn, mb, price)], purchase


async def test_a_thousand_handsets_at_once(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    count = 1000
    msisdns = [f"2547110{n:05d}" for n in range(count)]

    async def subscriber(n: int) -> tuple[int | None, list[str]]:
        inputs, _, _ = expected_dialogue(n, msisdns[n])
        dialog = await bed.handset(msisdns[n]).dial("*123#", timeout=WAIT)
        screens = await walk(dialog, *inputs)
        assert screens[-1].kind is ScreenKind.FINAL and dialog.ended
        return dialog.session.session_id, texts(screens)

    results = await asyncio.wait_for(asyncio.gather(*(subscriber(n) for n in range(count))), 60)

    # each handset saw its own screens and its own final text
    for n, (_, seen) in enumerate(results):
        _, screens, _ = expected_dialogue(n, msisdns[n])
        assert seen == screens, f"handset {msisdns[n]}"
    # every purchase recorded once, by the subscriber who made it, in a dialogue of its own
    assert len(bed.shop.purchases) == count
    assert Counter(p["msisdn"] for p in bed.shop.purchases) == Counter(msisdns)
    by_msisdn = {p["msisdn"]: p for p in bed.shop.purchases}
    assert all(by_msisdn[m] == expected_dialogue(n, m)[2] for n, m in enumerate(msisdns))
    assert len(set(bed.shop.sessions)) == count
    # the SMSC hands out 8-bit session numbers, so subscribers share them: the dialogue key is the
    # subscriber and the number, and every submit_sm went to the right one
    keys = {(m, session) for m, (session, _) in zip(msisdns, results, strict=True)}
    assert len(keys) == count
    assert max(Counter(session for session, _ in results).values()) > 1
    for msisdn, (session, seen) in zip(msisdns, results, strict=True):
        sent = bed.wire.submits[msisdn]
        assert {m.session_id for m in sent} == {session}
        assert [m.text for m in sent] == seen
    assert Counter(await bed.journeys(count)) == {"completed": count}
    assert {(j.msisdn, j.session_id) for j in bed.service.journeys} == keys
    assert bed.service.live_dialogues == 0 and bed.smsc.ussd_sessions == []
    assert bed.service.stats.failures == bed.service.stats.send_failures == bed.service.stats.invalid == 0


# --- timeouts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "release_op"), [("standard", Op.PSSR_RESP), ("6d", Op.RELEASE)], ids=["standard", "6d"]
)
async def test_abandoned_dialogue_is_released_by_the_per_reply_timeout(
    make_bed: MakeBed, profile: str, release_op: Op
) -> None:
    bed: UssdBed = await make_bed(profile=profile, per_reply_timeout=0.3)
    dialog = await bed.handset(MSISDN).dial("*123#")
    assert (await dialog.next_screen(WAIT)).text == MAIN
    dialog.abandon()  # the subscriber puts the phone away; the network is not told
    assert await bed.journeys(1) == ["timeout"]
    async with asyncio.timeout(WAIT):
        while len(bed.wire.submits[MSISDN]) < 2:
            await asyncio.sleep(0.01)
    menu, release = bed.wire.submits[MSISDN]
    assert (release.op, release.end, release.text) == (release_op, True, "")
    assert release.session_id == menu.session_id == dialog.session.session_id
    assert bed.service.stats.timeouts == 1 and bed.service.live_dialogues == 0
    # the release closed the network's side too; the handset that walked away showed nothing more
    assert bed.smsc.ussd_sessions == []
    assert texts(dialog.screens) == [MAIN]
    assert [m.op for m in bed.wire.delivers[MSISDN]] == [Op.PSSR_IND]
    await silence(lambda: len(bed.wire.submits[MSISDN]))


async def test_network_timeout_ends_the_dialogue_on_both_sides(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed(ussd_timeout=0.5)  # the gateway's own timeouts stay at 30 / 180 s
    phone = bed.handset(MSISDN)
    dialog = await phone.dial("*123#")
    assert (await dialog.next_screen(WAIT)).text == MAIN
    # the subscriber looks at the menu and says nothing: the network gives up first
    timeout = await dialog.next_screen(WAIT)
    assert (timeout.kind, timeout.final, timeout.text) == (ScreenKind.TIMEOUT, True, "")
    assert await bed.journeys(1) == ["ended_by_network"]
    # the gateway heard it as a USSR confirm with the end-of-session bit (no release op in SMPP 3.4)
    pssr, end = bed.wire.delivers[MSISDN]
    assert (end.op, end.end, end.session_id, end.sequence) == (Op.USSR_CONF, True, pssr.session_id, 2)
    assert bed.smsc.stats.ussd_timeouts == 1 and bed.service.live_dialogues == 0
    with pytest.raises(LocalProtocolError, match="is over"):
        await dialog.answer("1")
    await silence(lambda: len(bed.wire.submits[MSISDN]))
    assert [m.op for m in bed.wire.submits[MSISDN]] == [Op.USSR_REQ]


async def test_session_timeout_releases_a_dialogue_that_goes_on_too_long(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed(session_timeout=0.6, per_reply_timeout=5.0)
    dialog = await bed.handset(MSISDN).dial("*123*1*3#")  # shortcut: options 1, then 3
    screen = await dialog.next_screen(WAIT)
    assert screen.text == MONTHLY_1
    answered = 0
    async with asyncio.timeout(WAIT):
        while not screen.final:  # paging back and forth, each answer well within the per-reply timeout
            await asyncio.sleep(0.05)
            with contextlib.suppress(LocalProtocolError):  # the release may cross an answer
                await dialog.answer("99" if answered % 2 == 0 else "0")
                answered += 1
            screen = await dialog.next_screen(WAIT)
    assert (screen.kind, screen.op, screen.text) == (ScreenKind.FINAL, Op.PSSR_RESP, "")
    assert answered >= 2
    assert await bed.journeys(1) == ["session_timeout"]
    assert bed.service.live_dialogues == 0 and bed.smsc.ussd_sessions == []


async def test_cancel_by_the_subscriber(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    dialog = await bed.handset(MSISDN).dial("*123#")
    await walk(dialog, "1", "2", "3")
    await dialog.cancel()
    assert await bed.journeys(1) == ["ended_by_network"]
    assert bed.wire.delivers[MSISDN][-1].end and bed.shop.purchases == []
    await silence(lambda: len(bed.wire.submits[MSISDN]))
    assert bed.service.live_dialogues == 0


# --- failures never hang a subscriber --------------------------------------------------------------------


async def test_a_handler_that_raises_ends_with_the_failure_screen(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed()
    bed.shop.down = True
    phone = bed.handset(MSISDN)
    one_shot = await (await phone.dial("*123*200#")).next_screen(WAIT)
    assert (one_shot.kind, one_shot.op, one_shot.text) == (ScreenKind.FINAL, Op.PSSR_RESP, FAILURE)
    screens = await walk(await phone.dial("*123#"), "1", "1", "2", "1")
    assert screens[-2].text == confirm_screen("100", "20", "1 day")
    assert (screens[-1].kind, screens[-1].text) == (ScreenKind.FINAL, FAILURE)
    assert bed.shop.purchases == []
    assert await bed.journeys(2) == ["failed", "failed"]
    assert bed.service.stats.failures == 2 and bed.service.live_dialogues == 0
    # billing is back: the same code works again
    bed.shop.down = False
    final = await (await phone.dial("*123*200#")).next_screen(WAIT)
    assert final.text == thank_you(MSISDN, "200", "0")
    assert len(bed.shop.purchases) == 1


async def test_a_handler_that_never_answers_ends_with_the_failure_screen(make_bed: MakeBed) -> None:
    bed: UssdBed = await make_bed(handler_timeout=0.3)
    bed.shop.stalled = True
    dialog = await bed.handset(MSISDN).dial("*123*1000#")
    final = await dialog.next_screen(WAIT)  # within handler_timeout, not the 30 s per-reply timeout
    assert (final.kind, final.op, final.text) == (ScreenKind.FINAL, Op.PSSR_RESP, FAILURE)
    assert dialog.ended and bed.shop.purchases == []
    assert await bed.journeys(1) == ["failed"]
    assert bed.service.live_dialogues == 0 and bed.smsc.ussd_sessions == []

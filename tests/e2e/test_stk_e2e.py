"""The SIM toolkit offer end to end over loopback: gateway -> ESME -> SMSC simulator -> handset SIM -> user
-> MO -> gateway event (issue 4, "End to end"; PROTOCOLS.md sections 1.5 to 1.7).

Every piece is real (``stk_e2e_kit``): the gateway's ``StkPushService`` with a ``KeyStore`` loaded from
a YAML key file and a ``SqliteStore`` on a file, its ``SmppClient`` bound over TCP to the
``SmscSimulator``, and per subscriber a ``Handset`` whose ``SimCard`` verifies the TS 102 225 packet
with its own keys, runs the dialog through a simulated user and sends the answer back as a secured MO.
The tests look at what the gateway reports (events), what it recorded (the store) and, for the
card's side of a rejection, at the handset's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from stk_e2e_kit import (
    SHORT_CODE,
    WAIT,
    Gateway,
    Subscriber,
    Testbed,
    key_set,
    make_sim_card,
    of_type,
    offer,
    quiet,
    wait_for_events,
    wait_until,
    write_key_file,
)

from gateway.stk import (
    DialogStyle,
    StkAnswerInvalid,
    StkAnswerReceived,
    StkDelivered,
    StkDeliveryFailed,
    StkEvent,
    StkRejectedBySim,
)
from protocols.stk.commands import (
    DisplayText,
    GetInkey,
    GetInkeyQualifier,
    ProactiveCommand,
    SelectItem,
    decode_proactive,
)
from protocols.stk.dstk import DstkOffer, StkOutcome
from protocols.stk.ota import COMMAND_UDH, ResponseStatus, parse_command_packet
from protocols.stk.terminal import GeneralResult, TerminalProfileFeature
from simulators.handset import DEFAULT_PROFILE, LogKind, ReactionDelay, UserAction, UserPolicy

pytestmark = pytest.mark.e2e

ALICE = Subscriber.numbered(1)
BOB = Subscriber.numbered(2)

ACCEPT = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.5))
DECLINE = UserPolicy(UserAction.DECLINE, delay=ReactionDelay.fixed(0.1))
NO_YES_NO = DEFAULT_PROFILE.without_features(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE)


def answered(offer_id: str) -> Callable[[list[StkEvent]], bool]:
    """An event predicate: the answer to ``offer_id`` has arrived."""

    def done(events: list[StkEvent]) -> bool:
        return any(isinstance(e, StkAnswerReceived) and e.offer_id == offer_id for e in events)

    return done


def the_answer(events: list[StkEvent]) -> StkAnswerReceived:
    (answer,) = of_type(events, StkAnswerReceived)
    return answer


def pushed_commands(testbed: Testbed, sub: Subscriber) -> list[ProactiveCommand]:
    """The proactive commands the SMSC carried to ``sub`` (deciphered with the card's keys)."""
    commands: list[ProactiveCommand] = []
    for mt in testbed.smsc.messages:
        if mt.destination_addr != sub.msisdn:
            continue
        assert mt.short_message.startswith(COMMAND_UDH)
        _, message = parse_command_packet(
            mt.short_message[len(COMMAND_UDH) :], lambda tar, kic, kid: key_set(sub)
        )
        commands.append(decode_proactive(DstkOffer.decode(message).command))
    return commands


def copy_database(source: Path, target: Path) -> None:
    """What ``sqlite3 target ".restore source"`` does: the online backup API, WAL and all."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


async def chain(testbed: Testbed, tmp_path: Path, *subs: Subscriber, por: str = "on_error") -> Gateway:
    keys = write_key_file(tmp_path / "sim_keys.yaml", list(subs) or [ALICE, BOB], por=por)
    return await testbed.start_gateway(keys)


# --- (a) to (d): the subscriber answers ------------------------------------------------------------------


async def test_accept_comes_back_as_answer_with_the_offer_id(testbed: Testbed, tmp_path: Path) -> None:
    phone = testbed.add_handset(ALICE, ACCEPT)
    gateway = await chain(testbed, tmp_path)
    await gateway.push(offer("off-a", ALICE))
    events = await wait_for_events(gateway.events, answered("off-a"), "the answer to off-a")

    answer = the_answer(events)
    assert (answer.offer_id, answer.msisdn, answer.outcome, answer.item_id) == (
        "off-a",
        ALICE.msisdn,
        StkOutcome.ACCEPTED,
        0,
    )
    assert answer.general_result == GeneralResult.PERFORMED_SUCCESSFULLY
    # the receipt came first (the user took 0.5 s): the card had the push before the user answered
    assert [type(e) for e in events] == [StkDelivered, StkAnswerReceived]
    (delivered,) = of_type(events, StkDelivered)
    assert (delivered.offer_id, delivered.msisdn) == ("off-a", ALICE.msisdn)

    push = gateway.store.push_by_offer("off-a")
    assert push is not None and push.state == "answered" and push.message_id == delivered.message_id
    record = gateway.store.answer_by_offer("off-a")
    assert record is not None and (record.outcome, record.item_id) == (StkOutcome.ACCEPTED, 0)
    # what went over the wire, as the SMSC saw it: the SIM data download of issue 4
    (mt,) = testbed.smsc.messages
    assert (mt.esm_class, mt.protocol_id, mt.data_coding) == (0x40, 0x7F, 0xF6)
    assert mt.short_message.startswith(bytes.fromhex("027000")) and len(mt.short_message) <= 140
    (command,) = pushed_commands(testbed, ALICE)
    assert isinstance(command, GetInkey) and command.command_qualifier & GetInkeyQualifier.YES_NO
    # and the user saw it and pressed Yes
    assert phone.entries(LogKind.DIALOG_SHOWN)[0].detail.startswith("GetInkey: Buy 500 MB now")
    assert await quiet(gateway.events, testbed.handsets) == []  # nothing more: no PoR, no second answer
    # the answer went out as one MO, which the ESME acknowledged with status 0
    (mo_sent,) = phone.entries(LogKind.MO_SENT)
    assert (mo_sent.detail, mo_sent.status) == (f"MO to {SHORT_CODE}: {len(gateway.mo[0])} octets", 0)


async def test_decline_is_reported_declined(testbed: Testbed, tmp_path: Path) -> None:
    testbed.add_handset(BOB, DECLINE)
    gateway = await chain(testbed, tmp_path)
    await gateway.push(offer("off-b", BOB))
    events = await wait_for_events(gateway.events, answered("off-b"), "the answer to off-b")
    answer = the_answer(events)
    assert (answer.offer_id, answer.msisdn, answer.outcome) == ("off-b", BOB.msisdn, StkOutcome.DECLINED)
    record = gateway.store.answer_by_offer("off-b")
    assert record is not None and record.outcome == StkOutcome.DECLINED


async def test_ignored_dialog_times_out_as_no_response(testbed: Testbed, tmp_path: Path) -> None:
    phone = testbed.add_handset(ALICE, UserPolicy(UserAction.IGNORE), dialog_timeout=0.3)
    gateway = await chain(testbed, tmp_path)
    await gateway.push(offer("off-c", ALICE))
    events = await wait_for_events(gateway.events, answered("off-c"), "the answer to off-c")
    answer = the_answer(events)
    assert (answer.offer_id, answer.outcome) == ("off-c", StkOutcome.NO_RESPONSE)
    assert answer.general_result == GeneralResult.NO_RESPONSE_FROM_USER
    assert [e.status for e in phone.entries(LogKind.TERMINAL_ANSWERED)] == [
        GeneralResult.NO_RESPONSE_FROM_USER
    ]
    assert not phone.entries(LogKind.USER_ANSWERED)
    push = gateway.store.push_by_offer("off-c")
    assert push is not None and push.state == "answered"


async def test_menu_choice_of_the_second_package(testbed: Testbed, tmp_path: Path) -> None:
    testbed.add_handset(ALICE, UserPolicy(UserAction.ACCEPT, item=1, delay=ReactionDelay.fixed(0.1)))
    gateway = await chain(testbed, tmp_path)
    await gateway.push(offer("off-d", ALICE, style=DialogStyle.MENU))
    events = await wait_for_events(gateway.events, answered("off-d"), "the answer to off-d")
    answer = the_answer(events)
    assert (answer.offer_id, answer.outcome, answer.item_id) == ("off-d", StkOutcome.ITEM_CHOSEN, 2)
    (command,) = pushed_commands(testbed, ALICE)
    assert isinstance(command, SelectItem)
    assert [(item.identifier, item.text) for item in command.items] == [
        (1, "100 MB 1.00"),
        (2, "200 MB 1.80"),
        (3, "500 MB 4.00"),
    ]
    record = gateway.store.answer_by_offer("off-d")
    assert record is not None and (record.outcome, record.item_id) == (StkOutcome.ITEM_CHOSEN, 2)


# --- (e), (f): the card refuses the push ----------------------------------------------------------------


@pytest.mark.parametrize("por", ["none", "on_error"], ids=["no-por", "por-on-error"])
async def test_bad_mac_is_rejected_by_the_card_and_reported(
    testbed: Testbed, tmp_path: Path, por: str
) -> None:
    """The card's KID key is not the key file's: the card refuses the checksum (0x01)."""
    card = make_sim_card(ALICE, kid_key=bytes(16))
    phone = testbed.add_handset(ALICE, ACCEPT, card=card)
    gateway = await chain(testbed, tmp_path, ALICE, por=por)
    await gateway.push(offer("off-e", ALICE))
    events = await wait_for_events(
        gateway.events,
        lambda ev: bool(of_type(ev, StkDeliveryFailed) or of_type(ev, StkRejectedBySim)),
        "the receipt or the card's report",
    )
    await wait_until(receipts(gateway, 1), "the receipt")
    events += await quiet(gateway.events, testbed.handsets)

    # the card: RC/CC/DS failed, no dialog, SW 6F00 -> RP-ERROR -> the SMSC's receipt says UNDELIV
    (rejection,) = [e for e in phone.entries(LogKind.REJECTED) if e.status is not None]
    assert rejection.status == ResponseStatus.RC_CC_DS_FAILED
    assert not phone.entries(LogKind.DIALOG_SHOWN)
    assert gateway.store.answer_by_offer("off-e") is None
    assert not of_type(events, StkAnswerReceived)
    push = gateway.store.push_by_offer("off-e")
    assert push is not None
    if por == "none":
        # no PoR asked for: the receipt is all the gateway learns
        (failed,) = of_type(events, StkDeliveryFailed)
        assert (failed.offer_id, failed.stat) == ("off-e", "UNDELIV")
        assert events == [failed]
        assert push.state == "delivery_failed" and push.detail == "stat UNDELIV err 001"
    else:
        # the card's error PoR comes in clear (it shares no key the gateway would trust): the gateway
        # ties it to the push by its counter and records why, marked unauthenticated; it buys nothing
        (rejected,) = of_type(events, StkRejectedBySim)
        assert (rejected.offer_id, rejected.status, rejected.authenticated) == (
            "off-e",
            ResponseStatus.RC_CC_DS_FAILED,
            False,
        )
        # whichever report came first sets the state; the later one changes nothing
        assert push.state in ("delivery_failed", "rejected_by_sim")
        assert len(of_type(events, StkDeliveryFailed)) == (push.state == "delivery_failed")
        assert gateway.store.invalid_answers() == []


def receipts(gateway: Gateway, count: int) -> Callable[[], bool]:
    """A condition: the gateway's ESME has received ``count`` delivery receipts."""
    return lambda: gateway.client.stats.receipts >= count


def _rejected_events_in_order(events: list[StkEvent]) -> list[type]:
    return [type(e) for e in events if isinstance(e, StkRejectedBySim | StkDeliveryFailed)]


async def test_card_counter_ahead_rejects_every_push_as_counter_low(testbed: Testbed, tmp_path: Path) -> None:
    """Another OTA platform moved the card's counter to 10: the gateway's 1 and 2 are replays to it."""
    phone = testbed.add_handset(ALICE, ACCEPT, card=make_sim_card(ALICE, counter=10))
    gateway = await chain(testbed, tmp_path, ALICE)
    for n in (1, 2):
        await gateway.push(offer(f"off-f{n}", ALICE))
        events = await wait_for_events(
            gateway.events, lambda ev: bool(of_type(ev, StkRejectedBySim)), f"the rejection of off-f{n}"
        )
        await wait_until(receipts(gateway, n), f"receipt {n}")
        events += await quiet(gateway.events, testbed.handsets)
        (rejected,) = of_type(events, StkRejectedBySim)
        assert (rejected.offer_id, rejected.status, rejected.authenticated) == (
            f"off-f{n}",
            ResponseStatus.CNTR_LOW,
            True,
        )
        # the UNDELIV receipt is reported only when it beat the PoR (then the PoR still decides the state)
        assert _rejected_events_in_order(events) in (
            [StkRejectedBySim],
            [StkDeliveryFailed, StkRejectedBySim],
        )
        assert not of_type(events, StkAnswerReceived)
        push = gateway.store.push_by_offer(f"off-f{n}")
        assert push is not None and (push.cntr, push.state, push.detail) == (
            n,
            "rejected_by_sim",
            "PoR status CNTR_LOW",
        )
        assert gateway.store.answer_by_offer(f"off-f{n}") is None
    assert [e.status for e in phone.entries(LogKind.REJECTED) if e.status is not None] == [0x02, 0x02]
    assert phone.sim is not None and phone.sim.counters == {bytes.fromhex("BFFF01"): 10}


async def test_store_restored_from_an_old_backup_replays_a_counter(testbed: Testbed, tmp_path: Path) -> None:
    """The gateway's store is restored from a backup taken before the last push: its next counter is
    one the card has seen, and the card refuses the push as a replay (0x02), which the gateway records."""
    phone = testbed.add_handset(ALICE, UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.05)))
    keys = write_key_file(tmp_path / "sim_keys.yaml", [ALICE])
    store_path = tmp_path / "gateway.sqlite"
    backup = tmp_path / "backup.sqlite"
    first = await testbed.start_gateway(keys, store_path)
    copy_database(store_path, backup)  # the nightly backup, before the push
    await first.push(offer("off-f1", ALICE))
    answer = the_answer(await wait_for_events(first.events, answered("off-f1"), "the first answer"))
    assert answer.outcome is StkOutcome.ACCEPTED
    await quiet(first.events, testbed.handsets)
    await first.stop()

    copy_database(backup, store_path)  # the restore
    second = await testbed.start_gateway(keys, store_path)
    assert second.store.push_by_offer("off-f1") is None  # the restored store forgot the push ...
    await second.push(offer("off-f2", ALICE))
    events = await wait_for_events(
        second.events, lambda ev: bool(of_type(ev, StkRejectedBySim)), "the rejection"
    )
    events += await quiet(second.events, testbed.handsets)
    (rejected,) = of_type(events, StkRejectedBySim)
    assert (rejected.offer_id, rejected.status) == ("off-f2", ResponseStatus.CNTR_LOW)
    push = second.store.push_by_offer("off-f2")
    assert push is not None and push.cntr == 1  # ... and handed out counter 1 again
    assert (push.state, push.detail) == ("rejected_by_sim", "PoR status CNTR_LOW")
    assert not of_type(events, StkAnswerReceived) and second.store.answer_by_offer("off-f2") is None
    assert len(phone.entries(LogKind.DIALOG_SHOWN)) == 1  # only the first push reached the user

    # the next push uses counter 2, above the card's 1: the gap is passed and the offer goes through
    await second.push(offer("off-f3", ALICE))
    answer = the_answer(await wait_for_events(second.events, answered("off-f3"), "the third answer"))
    assert answer.outcome is StkOutcome.ACCEPTED
    assert second.store.push_by_offer("off-f3").cntr == 2  # type: ignore[union-attr]
    assert phone.sim is not None and phone.sim.counters == {bytes.fromhex("BFFF01"): 2}


# --- (g): a handset without yes/no GET INKEY -----------------------------------------------------------


@pytest.mark.parametrize("gateway_knows", [False, True], ids=["card-fallback", "key-file-says-so"])
async def test_handset_without_yes_no_answers_through_display_text(
    testbed: Testbed, tmp_path: Path, gateway_knows: bool
) -> None:
    sub = Subscriber.numbered(3, "supports_yes_no: false") if gateway_knows else Subscriber.numbered(3)
    phone = testbed.add_handset(sub, ACCEPT, profile=NO_YES_NO)
    gateway = await chain(testbed, tmp_path, sub)
    await gateway.push(offer("off-g", sub))
    answer = the_answer(await wait_for_events(gateway.events, answered("off-g"), "the answer"))
    assert (answer.offer_id, answer.outcome) == ("off-g", StkOutcome.ACCEPTED)
    (command,) = pushed_commands(testbed, sub)
    # the gateway sends what it knows of the handset; the card falls back when the gateway did not know
    assert isinstance(command, DisplayText if gateway_knows else GetInkey)
    (shown,) = phone.entries(LogKind.DIALOG_SHOWN)
    assert shown.detail.startswith("DisplayText: Buy 500 MB now, pay later?")
    assert not [e for e in phone.entries(LogKind.TERMINAL_ANSWERED) if e.status == 0x30]


# --- (h): a gateway restart between push and answer ------------------------------------------------------


async def test_answer_after_a_gateway_restart_is_recorded_once(testbed: Testbed, tmp_path: Path) -> None:
    phone = testbed.add_handset(ALICE, UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(2.0)))
    keys = write_key_file(tmp_path / "sim_keys.yaml", [ALICE])
    store_path = tmp_path / "gateway.sqlite"
    first = await testbed.start_gateway(keys, store_path)
    await first.push(offer("off-h", ALICE))
    await wait_for_events(first.events, lambda ev: bool(of_type(ev, StkDelivered)), "the receipt")
    assert phone.dialog_open  # the user is looking at the offer ...
    await first.stop()  # ... while the gateway goes down

    second = await testbed.start_gateway(keys, store_path)  # a new process: new ESME, store, service
    assert phone.dialog_open, "the restart took longer than the user: the test proves nothing"
    assert second.store.ota_counter(ALICE.iccid) == 1  # what the first process committed is there
    events = await wait_for_events(second.events, answered("off-h"), "the answer after the restart")
    answer = the_answer(events)
    assert (answer.offer_id, answer.msisdn, answer.outcome) == ("off-h", ALICE.msisdn, StkOutcome.ACCEPTED)
    assert second.store.push_by_offer("off-h").state == "answered"  # type: ignore[union-attr]

    # the SMSC delivers the same MO again (its deliver_sm_resp got lost, say)
    (user_data,) = second.mo
    status = await testbed.smsc.inject_mo(
        ALICE.msisdn, SHORT_CODE, user_data, data_coding=0xF6, esm_class=0x40, protocol_id=0x7F
    )
    assert status == 0  # acknowledged, so the SMSC stops
    assert len(second.mo) == 2
    assert await quiet(second.events, testbed.handsets) == []  # and not reported again
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        assert db.execute("SELECT offer_id, outcome FROM stk_answers").fetchall() == [("off-h", 0)]


# --- (i): many subscribers at once ---------------------------------------------------------------------


async def test_200_subscribers_pushed_concurrently_all_answer(testbed: Testbed, tmp_path: Path) -> None:
    subs = [Subscriber.numbered(100 + n) for n in range(200)]
    for n, sub in enumerate(subs):
        testbed.add_handset(sub, UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.uniform(0.0, 0.3)), seed=n)
    keys = write_key_file(tmp_path / "sim_keys.yaml", subs)
    gateway = await testbed.start_gateway(keys, window=50)
    expected = {f"off-{sub.msisdn}": sub.msisdn for sub in subs}
    await asyncio.wait_for(
        asyncio.gather(*(gateway.push(offer(f"off-{sub.msisdn}", sub)) for sub in subs)), WAIT * 2
    )

    def all_answered(events: list[StkEvent]) -> bool:
        return len(of_type(events, StkAnswerReceived)) == len(subs)

    events = await wait_for_events(gateway.events, all_answered, "200 answers", timeout=WAIT * 2)
    answers = of_type(events, StkAnswerReceived)
    # 200 answers, 200 distinct offer ids, each from the subscriber it was pushed to
    assert {a.offer_id: a.msisdn for a in answers} == expected
    assert {a.outcome for a in answers} == {StkOutcome.ACCEPTED}
    assert not of_type(events, StkAnswerInvalid) and not of_type(events, StkRejectedBySim)
    for offer_id in expected:
        push = gateway.store.push_by_offer(offer_id)
        assert push is not None and push.state == "answered"

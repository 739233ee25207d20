"""Robustness of the sans-I/O USSD dialogue engine (``protocols.ussd.dialogue``; MAP USSD of TS
24.090 over SMPP 3.4 ``ussd_service_op`` 5.3.2.44 / ``its_session_info`` 5.3.2.43): messages the
SMSC delivers again, and vendors that do or do not number their dialogue units."""

from __future__ import annotations

from protocols.ussd import (
    DialogueStarted,
    Event,
    ReplyReceived,
    UnexpectedMessage,
    UssdDialogues,
    UssdMessage,
    UssdServiceOp,
)

Op = UssdServiceOp
MSISDN = "254700000900"


def drain(engine: UssdDialogues) -> list[Event]:
    events = []
    while (event := engine.next_event()) is not None:
        events.append(event)
    return events


def reply(text: str, seq: int | None) -> UssdMessage:
    return UssdMessage(Op.USSR_CONF, MSISDN, text, "123", 4, seq)


def started() -> tuple[UssdDialogues, UssdMessage]:
    engine = UssdDialogues()
    dial = UssdMessage(Op.PSSR_IND, MSISDN, "*123#", "123", 4, 0, service_code="*123#")
    engine.receive(dial, 0.0)
    assert isinstance(drain(engine)[0], DialogueStarted)
    return engine, dial


def test_a_reply_delivered_again_after_the_next_screen_is_a_duplicate() -> None:
    engine, dial = started()
    key = dial.key
    assert engine.send_screen(key, "menu", 0.0).sequence == 1
    engine.receive(reply("1", 2), 1.0)
    assert drain(engine) == [ReplyReceived(key, "1", 2)]
    assert engine.send_screen(key, "confirm", 1.0).sequence == 3
    engine.receive(reply("1", 2), 2.0)  # the SMSC missed our deliver_sm_resp and delivers it again
    events = drain(engine)
    assert len(events) == 1 and isinstance(events[0], UnexpectedMessage) and events[0].reason == "duplicate"
    engine.receive(reply("1", 4), 3.0)  # the user's real answer, same text
    assert drain(engine) == [ReplyReceived(key, "1", 4)]


def test_a_vendor_that_does_not_number_its_units_may_repeat_an_input() -> None:
    """Some gateways leave octet 2 of its_session_info at 0: equal sequence numbers then say nothing,
    and the same input twice is two inputs."""
    engine, dial = started()
    key = dial.key
    for at in (1.0, 2.0, 3.0):
        engine.send_screen(key, "menu", at)
        engine.receive(reply("1", 0), at)
        assert drain(engine) == [ReplyReceived(key, "1", 0)]


def test_a_vendor_without_sequence_numbers_may_repeat_an_input() -> None:
    engine = UssdDialogues()
    engine.receive(UssdMessage(Op.PSSR_IND, MSISDN, "*123#", "123", None, None, service_code="*123#"), 0.0)
    started_event = drain(engine)[0]
    assert isinstance(started_event, DialogueStarted)
    key = started_event.key
    for at in (1.0, 2.0):
        engine.send_screen(key, "menu", at)
        engine.receive(UssdMessage(Op.USSR_CONF, MSISDN, "1", "123"), at)
        assert drain(engine) == [ReplyReceived(key, "1", None)]


def test_a_dial_delivered_again_after_the_first_screen_does_not_restart_the_dialogue() -> None:
    engine, dial = started()
    engine.send_screen(dial.key, "menu", 0.0)
    engine.receive(dial, 1.0)
    events = drain(engine)
    assert len(events) == 1 and isinstance(events[0], UnexpectedMessage) and events[0].reason == "duplicate"
    engine.receive(reply("2", 2), 2.0)
    assert drain(engine) == [ReplyReceived(dial.key, "2", 2)]

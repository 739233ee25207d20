"""The USSD dialogue engine (protocols/ussd/dialogue.py): the state table, handset- and
network-initiated dialogues, sequence numbers, per-reply and session timeouts in order, 1,000
concurrent dialogues, aborts, duplicates, capacity, application misuse, and the PROTOCOLS.md byte
examples produced by a real dialogue.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from ussd_helpers import load_vectors

from protocols.errors import LocalProtocolError
from protocols.smpp import DeliverSm, decode_pdu, encode_pdu
from protocols.ussd import (
    TRANSITIONS,
    DialogueAborted,
    DialogueEnded,
    DialogueInput,
    DialogueKey,
    DialogueRefused,
    DialogueStarted,
    DialogueState,
    DialogueTimedOut,
    Event,
    NotificationConfirmed,
    ReplyReceived,
    UnexpectedMessage,
    UssdDialogues,
    UssdMessage,
    UssdServiceOp,
    from_pdu,
    get_profile,
    to_submit,
)

Op = UssdServiceOp
St = DialogueState
In = DialogueInput
STANDARD = get_profile("standard")
MSISDN = "254700000000"


def begin(msisdn: str = MSISDN, sid: int | None = 1, code: str = "*123#", seq: int | None = 0) -> UssdMessage:
    return UssdMessage(Op.PSSR_IND, msisdn, code, "123", sid, seq, service_code=code)


def answer(
    msisdn: str = MSISDN, sid: int | None = 1, text: str = "1", seq: int | None = 2, **kw: Any
) -> UssdMessage:
    return UssdMessage(Op.USSR_CONF, msisdn, text, "123", sid, seq, **kw)


def drain(engine: UssdDialogues) -> list[Event]:
    out: list[Event] = []
    while (event := engine.next_event()) is not None:
        out.append(event)
    return out


def started(engine: UssdDialogues, message: UssdMessage, now: float = 0.0) -> DialogueKey:
    engine.receive(message, now)
    (event,) = drain(engine)
    assert isinstance(event, DialogueStarted)
    return event.key


# --- the table ------------------------------------------------------------------------------------


def test_transition_table() -> None:
    assert {s for s, _ in TRANSITIONS} == {St.NEW, St.AWAITING_APP, St.AWAITING_USER}
    assert {i for s, i in TRANSITIONS if s is St.NEW} == {In.BEGIN, In.MENU, In.NOTIFY, In.FINAL_NOTIFY}
    assert TRANSITIONS[St.AWAITING_APP, In.SCREEN] is St.AWAITING_USER
    assert TRANSITIONS[St.AWAITING_USER, In.REPLY] is St.AWAITING_APP
    assert TRANSITIONS[St.AWAITING_USER, In.NOTIFY_CONFIRM] is St.AWAITING_APP
    # only we may owe the user something when a screen goes out, and only the user a reply
    assert (St.AWAITING_USER, In.SCREEN) not in TRANSITIONS
    assert (St.AWAITING_APP, In.REPLY) not in TRANSITIONS
    assert (St.AWAITING_APP, In.REPLY_TIMEOUT) not in TRANSITIONS
    for state in (St.AWAITING_APP, St.AWAITING_USER):
        for what in (In.ABORT, In.NETWORK_END, In.RELEASE, In.SESSION_TIMEOUT):
            assert TRANSITIONS[state, what] is St.ENDED
        assert TRANSITIONS[state, In.BEGIN] is St.AWAITING_APP


def test_constructor_checks() -> None:
    with pytest.raises(LocalProtocolError):
        UssdDialogues(per_reply_timeout=0)
    with pytest.raises(LocalProtocolError):
        UssdDialogues(session_timeout=-1)
    with pytest.raises(LocalProtocolError):
        UssdDialogues(max_dialogues=0)
    engine = UssdDialogues()
    assert engine.profile is STANDARD
    assert engine.next_event() is None and engine.get_timer() is None and len(engine) == 0


# --- a handset-initiated dialogue ---------------------------------------------------------------


def test_mo_dialogue_produces_the_protocols_md_bytes() -> None:
    """deliver_sm PSSR ind -> USSR request -> USSR confirm -> PSSR response, byte for byte the
    PROTOCOLS.md section 2 examples (session 42; the confirm echoes sequence 1)."""
    by_name = {v["name"]: v for v in load_vectors()["smpp_pdus"]}
    pdu = decode_pdu(bytes.fromhex(by_name["deliver_sm_pssr_ind"]["hex"]))
    assert isinstance(pdu, DeliverSm)
    engine = UssdDialogues(STANDARD)
    engine.receive(from_pdu(pdu, STANDARD), 100.0)
    (event,) = drain(engine)
    assert isinstance(event, DialogueStarted)
    assert (event.key, event.msisdn, event.service_code) == (DialogueKey(MSISDN, 42), MSISDN, "*123#")
    assert engine.state_of(event.key) is St.AWAITING_APP
    menu = engine.send_screen(event.key, "1.100MB 2.200MB 3.500MB 4.1GB", 101.0)
    assert engine.state_of(event.key) is St.AWAITING_USER
    wire = encode_pdu(to_submit(menu, STANDARD, sequence_number=8))
    assert wire == bytes.fromhex(by_name["submit_sm_ussr_req"]["hex"])
    engine.receive(answer(sid=42, text="3", seq=1), 105.0)
    assert drain(engine) == [ReplyReceived(DialogueKey(MSISDN, 42), "3", 1)]
    final = engine.send_screen(event.key, "Thank you. 500MB added.", 106.0, final=True)
    assert drain(engine) == [DialogueEnded(DialogueKey(MSISDN, 42), "us")]
    wire = encode_pdu(to_submit(final, STANDARD, sequence_number=9))
    assert wire == bytes.fromhex(by_name["submit_sm_pssr_resp_end"]["hex"])
    assert event.key not in engine and engine.state_of(event.key) is St.NEW
    assert engine.get_timer() is None


def test_sequence_numbers_increase_and_wrap() -> None:
    engine = UssdDialogues()
    key = started(engine, begin(seq=120))
    seqs = []
    for i in range(6):
        seqs.append(engine.send_screen(key, f"screen {i}", 1.0).sequence)
        engine.receive(answer(text=str(i), seq=(seqs[-1] or 0) + 1 & 0x7F), 1.0)
        drain(engine)
    assert seqs == [121, 123, 125, 127, 1, 3]
    assert engine.send_screen(key, "last", 1.0, final=True).sequence == 5


def test_replies_without_sequence_keep_ours_going() -> None:
    """A gateway that echoes our sequence (or none) still gets increasing numbers from us."""
    engine = UssdDialogues()
    key = started(engine, begin(seq=0))
    assert engine.send_screen(key, "a", 0.0).sequence == 1
    engine.receive(UssdMessage(Op.USSR_CONF, MSISDN, "1", "123", 1, None), 0.0)
    assert drain(engine) == [ReplyReceived(key, "1", None)]
    assert engine.send_screen(key, "b", 0.0).sequence == 2


def test_dialogue_without_session_id() -> None:
    """jasmin#842 style: no its_session_info, so one dialogue per subscriber and no sequence."""
    engine = UssdDialogues()
    key = started(engine, begin(sid=None, seq=None))
    assert key == DialogueKey(MSISDN, None)
    screen = engine.send_screen(key, "menu", 0.0)
    assert (screen.session_id, screen.sequence) == (None, None)
    assert to_submit(screen, STANDARD).optional_parameters[1:] == ()


def test_pssd_dialogue_takes_only_a_final_response() -> None:
    engine = UssdDialogues()
    key = started(engine, UssdMessage(Op.PSSD_IND, MSISDN, "*100#", "123", 3, 0, service_code="*100#"))
    with pytest.raises(LocalProtocolError, match="PSSD"):
        engine.send_screen(key, "no", 0.0)
    assert engine.send_screen(key, "Balance 5", 0.0, final=True).op is Op.PSSD_RESP


def test_begin_without_service_code_uses_the_text() -> None:
    engine = UssdDialogues()
    engine.receive(UssdMessage(Op.PSSR_IND, MSISDN, "*55#", "123", 1, 0), 0.0)
    (event,) = drain(engine)
    assert isinstance(event, DialogueStarted) and event.service_code == "*55#"


# --- network-initiated dialogues --------------------------------------------------------------------


def test_network_menu() -> None:
    engine = UssdDialogues(service_addr="777")
    menu = engine.start_network_menu(MSISDN, "Offer: 1.Yes 2.No", 10.0)
    assert (menu.op, menu.msisdn, menu.service_addr, menu.session_id, menu.sequence, menu.end) == (
        Op.USSR_REQ,
        MSISDN,
        "777",
        0,
        0,
        False,
    )
    assert engine.state_of(menu.key) is St.AWAITING_USER and engine.get_timer() == 40.0
    engine.receive(UssdMessage(Op.USSR_CONF, MSISDN, "1", "777", 0, 1), 12.0)
    assert drain(engine) == [ReplyReceived(menu.key, "1", 1)]
    final = engine.send_screen(menu.key, "Activated", 13.0, final=True)
    assert (final.op, final.end, final.sequence) == (Op.USSN_REQ, True, 2)  # notify + release
    assert drain(engine) == [DialogueEnded(menu.key, "us")]


def test_notification_confirmed_then_released() -> None:
    for profile, closing in ((STANDARD, Op.USSN_REQ), (get_profile("6d"), Op.RELEASE)):
        engine = UssdDialogues(profile)
        note = engine.notify(MSISDN, "You have 100MB left", 0.0, service_addr="55")
        assert (note.op, note.end, note.service_addr) == (Op.USSN_REQ, False, "55")
        engine.receive(UssdMessage(Op.USSN_CONF, MSISDN, "", "55", note.session_id, 1), 1.0)
        assert drain(engine) == [NotificationConfirmed(note.key)]
        assert engine.state_of(note.key) is St.AWAITING_APP
        release = engine.release(note.key, 2.0)
        assert (release.op, release.end) == (closing, True)
        assert drain(engine) == [DialogueEnded(note.key, "us")]


def test_final_notification_keeps_no_dialogue() -> None:
    engine = UssdDialogues()
    note = engine.notify(MSISDN, "Package activated", 0.0, final=True)
    assert (note.op, note.end) == (Op.USSN_REQ, True)
    assert drain(engine) == [DialogueEnded(note.key, "us")]
    assert len(engine) == 0 and engine.get_timer() is None
    engine.receive(UssdMessage(Op.USSN_CONF, MSISDN, "", "", note.session_id, 1), 1.0)
    (event,) = drain(engine)
    assert isinstance(event, UnexpectedMessage) and event.reason == "no live dialogue"


def test_session_ids_allocated_per_subscriber() -> None:
    engine = UssdDialogues()
    a = engine.start_network_menu("A", "x", 0.0)
    b = engine.start_network_menu("B", "x", 0.0)
    assert (a.session_id, b.session_id) == (0, 1)
    # a handset-initiated dialogue holds B's next id: the allocator skips it
    started(engine, begin("B", sid=2))
    assert engine.start_network_menu("B", "x", 0.0).session_id == 3
    for _ in range(251):
        engine.notify("C", "x", 0.0)
    last = engine.notify("C", "x", 0.0)
    assert last.session_id == 0xFF
    assert engine.notify("C", "x", 0.0).session_id == 0  # wraps around past the 8-bit limit
    for _ in range(3):
        engine.notify("C", "x", 0.0)
    with pytest.raises(LocalProtocolError, match="every session id"):
        engine.notify("C", "x", 0.0)


def test_network_dialogues_with_vendor_profiles() -> None:
    six = UssdDialogues(get_profile("6d"))
    menu = six.start_network_menu(MSISDN, "x", 0.0)
    assert menu.sequence is None and menu.session_id == 0
    assert to_submit(menu, six.profile).optional_parameters[1].value == b"\x00\x00"
    mica = UssdDialogues(get_profile("mica"))
    key = started(mica, UssdMessage(Op.PSSR_IND, MSISDN, "*1#", "1", 0xBEEF, None, service_code="*1#"))
    screen = mica.send_screen(key, "menu", 0.0)
    assert (screen.session_id, screen.sequence) == (0xBEEF, None)


# --- timers ---------------------------------------------------------------------------------------------


def test_reply_timeout() -> None:
    engine = UssdDialogues(per_reply_timeout=30.0, session_timeout=180.0)
    key = started(engine, begin(), 0.0)
    assert engine.get_timer() == 180.0  # only the session timer while we owe a screen
    engine.send_screen(key, "menu", 5.0)
    assert engine.get_timer() == 35.0
    engine.handle_timer(34.9)
    assert drain(engine) == [] and engine.state_of(key) is St.AWAITING_USER
    engine.handle_timer(35.0)
    (event,) = drain(engine)
    assert isinstance(event, DialogueTimedOut) and (event.key, event.which) == (key, "reply")
    assert (event.release.op, event.release.end, event.release.sequence) == (Op.PSSR_RESP, True, 2)
    assert key not in engine and engine.get_timer() is None


def test_reply_disarms_the_reply_timer() -> None:
    engine = UssdDialogues(per_reply_timeout=30.0, session_timeout=180.0)
    key = started(engine, begin(), 0.0)
    engine.send_screen(key, "menu", 0.0)
    engine.receive(answer(), 20.0)
    drain(engine)
    assert engine.get_timer() == 180.0
    engine.handle_timer(100.0)
    assert drain(engine) == []
    engine.send_screen(key, "menu 2", 100.0)
    assert engine.get_timer() == 130.0


def test_session_timeout_while_we_owe_a_screen() -> None:
    engine = UssdDialogues(get_profile("mica"), session_timeout=180.0)
    started(engine, UssdMessage(Op.PSSR_IND, MSISDN, "*1#", "1", 9, service_code="*1#"), 10.0)
    engine.handle_timer(190.0)
    (event,) = drain(engine)
    assert isinstance(event, DialogueTimedOut) and event.which == "session"
    assert (event.release.op, event.release.session_id) == (Op.RELEASE, 9)  # mica has a release op


def test_session_timeout_counts_from_the_start() -> None:
    engine = UssdDialogues(per_reply_timeout=30.0, session_timeout=60.0)
    key = started(engine, begin(), 0.0)
    now = 0.0
    for i in range(5):  # a busy dialogue: every reply in time
        engine.send_screen(key, f"s{i}", now)
        now += 11.0
        engine.receive(answer(text=str(i), seq=None), now)
    events = drain(engine)
    assert [type(e) for e in events] == [ReplyReceived] * 5
    engine.send_screen(key, "s5", now)
    assert engine.get_timer() == 60.0  # the session deadline comes before the reply deadline (85)
    engine.handle_timer(60.0)
    assert [(type(e), getattr(e, "which", None)) for e in drain(engine)] == [(DialogueTimedOut, "session")]


def test_timers_fire_in_deadline_order() -> None:
    engine = UssdDialogues(per_reply_timeout=30.0, session_timeout=100.0)
    keys = []
    for i, t in enumerate([0.0, 1.0, 2.0, 3.0]):
        keys.append(started(engine, begin(str(i)), t))
    engine.send_screen(keys[3], "x", 50.0)  # reply deadline 80
    engine.send_screen(keys[1], "x", 60.0)  # reply deadline 90, session deadline 101
    engine.send_screen(keys[0], "x", 5.0)  # reply deadline 35
    assert engine.get_timer() == 35.0
    engine.handle_timer(1000.0)
    got = [(e.key.msisdn, e.which) for e in drain(engine) if isinstance(e, DialogueTimedOut)]
    assert got == [("0", "reply"), ("3", "reply"), ("1", "reply"), ("2", "session")]
    assert engine.get_timer() is None


def test_a_late_reply_finds_the_dialogue_timed_out() -> None:
    engine = UssdDialogues(per_reply_timeout=30.0)
    key = started(engine, begin(), 0.0)
    engine.send_screen(key, "menu", 0.0)
    engine.receive(answer(), 31.0)  # handle_timer was never called: receive fires it first
    events = drain(engine)
    assert [type(e) for e in events] == [DialogueTimedOut, UnexpectedMessage]
    assert isinstance(events[1], UnexpectedMessage) and events[1].reason == "no live dialogue"
    with pytest.raises(LocalProtocolError, match="no live USSD dialogue"):
        engine.send_screen(key, "too late", 31.0)


def test_network_menu_timeout_releases_with_a_notify() -> None:
    engine = UssdDialogues()
    menu = engine.start_network_menu(MSISDN, "x", 0.0)
    engine.handle_timer(30.0)
    (event,) = drain(engine)
    assert isinstance(event, DialogueTimedOut)
    assert (event.release.op, event.release.end, event.release.sequence) == (Op.USSN_REQ, True, 1)
    assert event.key == menu.key


def test_many_one_shot_dialogues_leave_no_timers_behind() -> None:
    engine = UssdDialogues()
    for i in range(5000):
        key = started(engine, begin(str(i)), float(i))
        engine.send_screen(key, "Done", float(i), final=True)
        drain(engine)
    assert len(engine) == 0 and engine.get_timer() is None
    assert len(engine._timers) <= 64  # stale timer entries are compacted away


# --- concurrency ------------------------------------------------------------------------------------


def test_1000_concurrent_dialogues_are_keyed_apart() -> None:
    rng = random.Random(5)
    engine = UssdDialogues(max_dialogues=2000)
    subscribers = [(f"2547{i:08d}", i % 7) for i in range(1000)]
    for n, (msisdn, sid) in enumerate(subscribers):
        engine.receive(begin(msisdn, sid, f"*123*{n}#"), 0.0)
    starts = drain(engine)
    assert len(starts) == 1000 and len(engine) == 1000
    assert set(engine.keys()) == {DialogueKey(m, s) for m, s in subscribers}
    assert all(
        isinstance(e, DialogueStarted) and e.service_code == f"*123*{n}#" for n, e in enumerate(starts)
    )
    order = list(range(1000))
    rng.shuffle(order)
    screens = {}
    for n in order:
        msisdn, sid = subscribers[n]
        screens[n] = engine.send_screen(DialogueKey(msisdn, sid), f"menu for {n}", 1.0)
        assert screens[n].key == DialogueKey(msisdn, sid) and screens[n].text == f"menu for {n}"
    rng.shuffle(order)
    for n in order:
        msisdn, sid = subscribers[n]
        engine.receive(answer(msisdn, sid, text=str(n), seq=2), 2.0)
    replies = drain(engine)
    assert [(e.key, e.text) for e in replies if isinstance(e, ReplyReceived)] == [
        (DialogueKey(*subscribers[n]), str(n)) for n in order
    ]
    # one subscriber, two vendor sessions: two dialogues
    engine.receive(begin(subscribers[0][0], 99), 3.0)
    assert len(engine) == 1001
    for n in order[:500]:
        engine.send_screen(DialogueKey(*subscribers[n]), "bye", 4.0, final=True)
    ended = drain(engine)
    assert sum(isinstance(e, DialogueEnded) for e in ended) == 500 and len(engine) == 501
    engine.handle_timer(1e9)
    assert sum(isinstance(e, DialogueTimedOut) for e in drain(engine)) == 501 and len(engine) == 0


def test_max_dialogues() -> None:
    engine = UssdDialogues(max_dialogues=2)
    started(engine, begin("A"))
    started(engine, begin("B"))
    late = begin("C")
    engine.receive(late, 0.0)
    (event,) = drain(engine)
    assert (
        isinstance(event, DialogueRefused) and event.message == late and "max_dialogues (2)" in event.reason
    )
    busy = event.message.reply("Busy, try later", final=True)
    assert (busy.op, busy.end, busy.msisdn, busy.sequence) == (Op.PSSR_RESP, True, "C", 1)
    # a new PSSR on a live key replaces it without needing room
    engine.receive(begin("A", code="*124#"), 0.0)
    assert [type(e) for e in drain(engine)] == [DialogueAborted, DialogueStarted]
    with pytest.raises(LocalProtocolError, match="max_dialogues"):
        engine.start_network_menu("D", "x", 0.0)
    with pytest.raises(LocalProtocolError, match="max_dialogues"):
        engine.notify("D", "x", 0.0)


# --- aborts and network ends ---------------------------------------------------------------------------


@pytest.mark.parametrize("screen_out", [False, True])
def test_release_op_aborts(screen_out: bool) -> None:
    engine = UssdDialogues(get_profile("6d"))
    key = started(engine, UssdMessage(Op.PSSR_IND, MSISDN, "*1#", "1", 0x1234, service_code="*1#"))
    if screen_out:
        engine.send_screen(key, "menu", 0.0)
    engine.receive(UssdMessage(Op.RELEASE, MSISDN, "", "1", 0x1234), 1.0)
    assert drain(engine) == [DialogueAborted(key, "released by the network")]
    assert key not in engine and engine.get_timer() is None


def test_new_pssr_on_the_same_key_replaces_the_dialogue() -> None:
    engine = UssdDialogues()
    key = started(engine, begin(code="*123#"))
    engine.send_screen(key, "menu", 0.0)
    engine.receive(begin(code="*123*500#", seq=0), 5.0)
    events = drain(engine)
    assert events[0] == DialogueAborted(key, "superseded by a new PSSR_IND")
    assert isinstance(events[1], DialogueStarted) and events[1].service_code == "*123*500#"
    assert engine.state_of(key) is St.AWAITING_APP
    assert engine.get_timer() == 185.0  # the old dialogue's timers are gone


@pytest.mark.parametrize(
    "closing",
    [
        answer(text="", end=True),
        UssdMessage(Op.USSN_CONF, MSISDN, "", "123", 1, 2, True),
        UssdMessage(Op.PSSR_RESP, MSISDN, "", "123", 1, 2),  # Mica closes with 0x11 from the network
    ],
    ids=["ussr_conf_end_bit", "ussn_conf_end_bit", "pssr_resp_from_network"],
)
def test_network_end(closing: UssdMessage) -> None:
    engine = UssdDialogues()
    key = started(engine, begin())
    engine.send_screen(key, "menu", 0.0)
    engine.receive(closing, 1.0)
    assert drain(engine) == [DialogueEnded(key, "network")]
    assert key not in engine


def test_release_by_us_in_either_state() -> None:
    engine = UssdDialogues()
    key = started(engine, begin())
    engine.send_screen(key, "menu", 0.0)
    release = engine.release(key, 1.0, "Sorry, try again later")
    assert (release.op, release.end, release.text) == (Op.PSSR_RESP, True, "Sorry, try again later")
    assert drain(engine) == [DialogueEnded(key, "us")]
    key = started(engine, begin())
    assert engine.release(key, 2.0).op is Op.PSSR_RESP
    with pytest.raises(LocalProtocolError):
        engine.release(key, 3.0)


# --- duplicates and unexpected messages ---------------------------------------------------------


def test_duplicate_begin_is_not_a_new_dialogue() -> None:
    engine = UssdDialogues()
    key = started(engine, begin())
    engine.receive(begin(), 0.5)  # the SMSC retransmitted the deliver_sm
    (event,) = drain(engine)
    assert isinstance(event, UnexpectedMessage) and event.reason == "duplicate" and event.key == key
    assert engine.state_of(key) is St.AWAITING_APP


def test_duplicate_reply() -> None:
    engine = UssdDialogues()
    key = started(engine, begin())
    engine.send_screen(key, "menu", 0.0)
    engine.receive(answer(text="2", seq=2), 1.0)
    engine.receive(answer(text="2", seq=2), 1.1)
    engine.receive(answer(text="3", seq=4), 1.2)
    events = drain(engine)
    assert events[0] == ReplyReceived(key, "2", 2)
    assert isinstance(events[1], UnexpectedMessage) and events[1].reason == "duplicate"
    assert isinstance(events[2], UnexpectedMessage) and events[2].reason == "USSR_CONF while awaiting_app"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (answer(), "no live dialogue"),
        (UssdMessage(Op.RELEASE, MSISDN, "", "", 1), "no live dialogue"),
        (answer(end=True), "no live dialogue"),
        (UssdMessage(Op.USSR_REQ, MSISDN, "x", "", 1), "USSR_REQ is not expected from the network"),
        (UssdMessage(Op.USSN_REQ, MSISDN, "x", "", 1), "USSN_REQ is not expected from the network"),
        (UssdMessage(0x99, MSISDN, "x", "", 1), "UNKNOWN_0x99 is not expected from the network"),  # type: ignore[arg-type]
    ],
)
def test_unexpected_messages(message: UssdMessage, reason: str) -> None:
    engine = UssdDialogues()
    engine.receive(message, 0.0)
    assert drain(engine) == [UnexpectedMessage(message.key, message, reason)]
    assert len(engine) == 0


def test_confirm_of_the_wrong_kind() -> None:
    engine = UssdDialogues()
    note = engine.notify(MSISDN, "hello", 0.0)
    wrong = UssdMessage(Op.USSR_CONF, MSISDN, "1", "", note.session_id, 1)
    engine.receive(wrong, 1.0)
    assert drain(engine) == [UnexpectedMessage(note.key, wrong, "expected USSN_CONF, got USSR_CONF")]
    assert engine.state_of(note.key) is St.AWAITING_USER


# --- application misuse ------------------------------------------------------------------------------


def test_send_screen_misuse() -> None:
    engine = UssdDialogues()
    with pytest.raises(LocalProtocolError, match="no live USSD dialogue"):
        engine.send_screen(DialogueKey("nobody", 1), "x", 0.0)
    key = started(engine, begin())
    with pytest.raises(LocalProtocolError, match="183 GSM 7-bit characters"):
        engine.send_screen(key, "a" * 183, 0.0)
    assert engine.state_of(key) is St.AWAITING_APP  # a refused screen changes nothing
    engine.send_screen(key, "menu", 0.0)
    with pytest.raises(LocalProtocolError, match="awaiting_user: no screen allowed"):
        engine.send_screen(key, "another", 0.0)
    with pytest.raises(LocalProtocolError, match="awaiting_user: no final_screen allowed"):
        engine.send_screen(key, "bye", 0.0, final=True)
    with pytest.raises(LocalProtocolError, match="81 UCS-2"):
        engine.notify(MSISDN, "ж" * 81, 0.0)
    with pytest.raises(LocalProtocolError, match="81 UCS-2"):
        engine.start_network_menu(MSISDN, "ж" * 81, 0.0)
    assert len(engine) == 1  # nothing was opened by the refused calls


def test_send_screen_with_a_chosen_data_coding() -> None:
    engine = UssdDialogues(get_profile("standard"))
    key = started(engine, begin())
    screen = engine.send_screen(key, "Привет", 0.0, data_coding=0x48)
    assert screen.data_coding == 0x48
    assert to_submit(screen, engine.profile).data_coding == 0x48

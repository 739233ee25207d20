"""The DESIGN.md fuzz rule for protocols.ussd.

- ``from_pdu``: for any deliver_sm / submit_sm / data_sm (arbitrary TLV values, short_message bytes,
  data_coding) and for any bytes at all through ``decode_pdu``, with every profile: a ``UssdMessage``
  or ``RemoteProtocolError``, never IndexError, KeyError, UnicodeDecodeError, ValueError, ...
- the dialogue engine: any sequence of network messages (any op, key, sequence, text), application
  commands and times yields only engine events; the network side never raises at all, the
  application side raises only ``LocalProtocolError``; the invariants hold after every step (live
  dialogues are AWAITING_APP / AWAITING_USER, no more than ``max_dialogues``, ``get_timer()`` is
  after the last ``now`` handled, every returned message can go on the wire with the profile).
"""

from __future__ import annotations

import contextlib
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ussd_helpers import PROFILE, PROFILE_VARIANTS, load_vectors

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.smpp import DataSm, DeliverSm, SubmitSm, Tag, Tlv, decode_pdu, encode_pdu
from protocols.ussd import (
    DialogueKey,
    DialogueState,
    Event,
    UssdDialogues,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    from_pdu,
    to_deliver,
    to_submit,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_TYPES = get_args(Event)
Op = UssdServiceOp

# --- from_pdu ---------------------------------------------------------------------------------------

TAGS = st.sampled_from(
    [
        Tag.USSD_SERVICE_OP,
        Tag.ITS_SESSION_INFO,
        Tag.USER_MESSAGE_REFERENCE,
        Tag.MESSAGE_PAYLOAD,
        0x1400,
        0x0005,
    ]
)
TLV = st.builds(Tlv, TAGS, st.binary(max_size=4))
OP_TLV = st.builds(Tlv, st.just(int(Tag.USSD_SERVICE_OP)), st.binary(min_size=1, max_size=1))
TLVS = st.lists(st.one_of(TLV, OP_TLV), max_size=5).map(tuple)
SHORT_MESSAGE = st.one_of(st.binary(max_size=64), st.text(max_size=20).map(lambda t: t.encode("utf-16-be")))
ADDR = st.text(st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=20)


@st.composite
def ussd_pdus(draw: st.DrawFn) -> DeliverSm | SubmitSm | DataSm:
    kind = draw(st.sampled_from([DeliverSm, SubmitSm, DataSm]))
    common: dict[str, Any] = {
        "source_addr": draw(ADDR),
        "destination_addr": draw(ADDR),
        "data_coding": draw(st.integers(0, 255)),
        "optional_parameters": draw(TLVS),
    }
    if kind is DataSm:
        return DataSm(**common)
    pdu: DeliverSm | SubmitSm = kind(short_message=draw(SHORT_MESSAGE), **common)
    return pdu


def decode_or_reject(pdu: DeliverSm | SubmitSm | DataSm, profile: UssdProfile) -> UssdMessage | None:
    try:
        return from_pdu(pdu, profile)
    except RemoteProtocolError:
        return None


@FUZZ
@given(ussd_pdus(), PROFILE)
def test_from_pdu_fuzz(pdu: DeliverSm | SubmitSm | DataSm, profile: UssdProfile) -> None:
    message = decode_or_reject(pdu, profile)
    if message is None:
        return
    assert isinstance(message.text, str) and isinstance(message.op, Op)
    assert message.pdu is pdu
    # whatever decoded feeds the engine without error
    engine = UssdDialogues(profile)
    engine.receive(message, 0.0)
    while (event := engine.next_event()) is not None:
        assert isinstance(event, EVENT_TYPES)


VECTOR_PDUS = [bytes.fromhex(v["hex"]) for v in load_vectors()["smpp_pdus"]]


@FUZZ
@given(
    st.sampled_from(VECTOR_PDUS),
    st.lists(st.tuples(st.integers(16, 200), st.integers(0, 255)), min_size=1, max_size=6),
    PROFILE,
)
def test_from_pdu_of_mutated_vectors(raw: bytes, edits: list[tuple[int, int]], profile: UssdProfile) -> None:
    """The vector PDUs with body octets overwritten (the header stays valid so the body parser runs)."""
    data = bytearray(raw)
    for pos, value in edits:
        data[min(pos, len(data) - 1)] = value
    try:
        pdu = decode_pdu(bytes(data))
    except RemoteProtocolError:
        return
    assert isinstance(pdu, DeliverSm | SubmitSm)
    decode_or_reject(pdu, profile)


# --- the dialogue engine --------------------------------------------------------------------------

MSISDNS = st.sampled_from(["A", "B"])
SIDS = st.one_of(st.none(), st.integers(0, 2))
SEQS = st.one_of(st.none(), st.integers(0, 3), st.integers(0, 127))
TEXTS = st.one_of(st.sampled_from(["", "1", "*123#", "Привет", "a" * 183, "ж" * 81]), st.text(max_size=10))
# begins and replies are what keeps dialogues alive: draw them most often
OPS = st.one_of(
    st.sampled_from([Op.PSSR_IND, Op.USSR_CONF, Op.USSN_CONF]),
    st.sampled_from(sorted(set(Op))),
    st.integers(0, 255).map(Op),
)
END = st.sampled_from([False, False, False, True])
NETWORK_MESSAGE = st.builds(
    UssdMessage, OPS, MSISDNS, TEXTS, st.just("123"), SIDS, SEQS, END, st.one_of(st.none(), TEXTS)
)
KEYS = st.builds(DialogueKey, MSISDNS, SIDS)
STEP = st.one_of(
    st.tuples(st.just("receive"), NETWORK_MESSAGE),
    # the same, aimed at a live dialogue (index into engine.keys()) so that flows go deep
    st.tuples(st.just("receive_live"), st.integers(0, 7), OPS, TEXTS, SEQS, END),
    st.tuples(
        st.just("receive_live"),
        st.integers(0, 7),
        st.sampled_from([Op.USSR_CONF, Op.USSN_CONF]),
        TEXTS,
        SEQS,
        END,
    ),
    st.tuples(st.just("screen_live"), st.integers(0, 7), TEXTS, st.booleans()),
    st.tuples(st.just("screen"), KEYS, TEXTS, st.booleans()),
    st.tuples(st.just("release"), KEYS, TEXTS),
    st.tuples(st.just("notify"), MSISDNS, TEXTS, st.booleans()),
    st.tuples(st.just("menu"), MSISDNS, TEXTS),
    st.tuples(st.just("timer")),
)
# time moves by small steps mostly forward, sometimes backwards (a clock is not the engine's business)
DT = st.one_of(
    st.floats(0, 5, allow_nan=False),
    st.floats(0, 40, allow_nan=False),
    st.floats(-5, 0, allow_nan=False),
    st.just(200.0),
)


def check_sendable(message: UssdMessage, profile: UssdProfile) -> None:
    build = to_deliver if message.op in (Op.USSR_CONF, Op.USSN_CONF) else to_submit
    encode_pdu(build(message, profile))


@FUZZ
@given(
    st.sampled_from(sorted(PROFILE_VARIANTS)),
    st.integers(1, 4),
    st.lists(st.tuples(STEP, DT), max_size=40),
)
def test_dialogue_engine_fuzz(profile_name: str, max_dialogues: int, steps: list[tuple[Any, float]]) -> None:
    profile = PROFILE_VARIANTS[profile_name]
    engine = UssdDialogues(profile, per_reply_timeout=30.0, session_timeout=90.0, max_dialogues=max_dialogues)
    now = 0.0
    for step, dt in steps:
        now += dt
        action = step[0]
        sent: UssdMessage | None = None
        live = engine.keys()
        if action == "receive_live" and live:
            key = live[step[1] % len(live)]
            message = UssdMessage(step[2], key.msisdn, step[3], "123", key.session_id, step[4], step[5])
            engine.receive(message, now)
        elif action == "screen_live" and live:
            with contextlib.suppress(LocalProtocolError):
                sent = engine.send_screen(live[step[1] % len(live)], step[2], now, final=step[3])
        elif action in ("receive_live", "screen_live"):
            pass
        elif action == "receive":
            engine.receive(step[1], now)  # the network side never raises
        elif action == "timer":
            engine.handle_timer(now)
        else:
            try:
                if action == "screen":
                    sent = engine.send_screen(step[1], step[2], now, final=step[3])
                elif action == "release":
                    sent = engine.release(step[1], now, step[2])
                elif action == "notify":
                    sent = engine.notify(step[1], step[2], now, final=step[3])
                else:
                    sent = engine.start_network_menu(step[1], step[2], now)
            except LocalProtocolError:
                pass
        if sent is not None:
            check_sendable(sent, profile)
        while (event := engine.next_event()) is not None:
            assert isinstance(event, EVENT_TYPES)
            release = getattr(event, "release", None)
            if release is not None:
                check_sendable(release, profile)
        assert len(engine) <= max_dialogues
        live = engine.keys()
        for key in live:
            assert engine.state_of(key) in (DialogueState.AWAITING_APP, DialogueState.AWAITING_USER)
        if action == "timer":
            deadline = engine.get_timer()
            assert deadline is None or deadline > now
    engine.handle_timer(now + 1000.0)
    assert len(engine) == 0 and engine.get_timer() is None

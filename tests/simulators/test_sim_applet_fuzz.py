"""The fuzz rule of DESIGN.md for the SIM card engine: for any bytes it yields events or raises a
RemoteProtocolError (DecodeError, OtaSecurityError), never IndexError, KeyError, struct.error,
UnicodeDecodeError or ValueError.

Inputs are the APDUs a terminal (or a network behind it) controls: the ENVELOPE data, the SMS TPDU
inside it, the secured command packet inside that, the application message inside that, and the
TERMINAL RESPONSE.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from stk_sim_kit import (
    DISPLAY,
    FULL_PROFILE,
    SELECT,
    SPI_POR_REPORT,
    SPI_POR_SUBMIT,
    YES_NO,
    command_packet,
    drain,
    envelope,
    make_card,
    of_type,
    offer_message,
    push_envelope,
)

from protocols.errors import LocalProtocolError, RemoteProtocolError
from protocols.stk.commands import ProactiveCommand
from protocols.stk.dstk import DSTK_TAR
from protocols.stk.envelope import SmsPpDownload
from protocols.stk.ota import KeySet, Kic, Kid, Spi, build_command_packet
from protocols.stk.terminal import TerminalProfile
from simulators.sim_applet import (
    EnvelopeProcessed,
    SimCard,
    dialog_outcome,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = command_packet(offer_message(YES_NO), 1)


def feed(card: SimCard, data: bytes, now: float = 0.0) -> None:
    """ENVELOPE bytes in; RemoteProtocolError is allowed, and then the card stays usable."""
    with contextlib.suppress(RemoteProtocolError):
        card.receive_data(data, now)
    drain(card)


@FUZZ
@given(st.binary(max_size=300))
def test_any_envelope_bytes(data: bytes) -> None:
    card = make_card()
    feed(card, data)
    feed(card, push_envelope(VALID), 1.0)  # still works afterwards
    assert card.proactive_command_pending


@FUZZ
@given(st.binary(max_size=200))
def test_envelope_with_ber_prefix(body: bytes) -> None:
    """Bytes that get past the BER-TLV framing: D1, a length, then anything."""
    card = make_card()
    data = b"\xd1" + (bytes((len(body),)) if len(body) < 0x80 else bytes((0x81, len(body)))) + body
    feed(card, data)


@FUZZ
@given(st.binary(max_size=180))
def test_any_tpdu_in_a_valid_envelope_is_answered(tpdu: bytes) -> None:
    card = make_card()
    card.receive_data(SmsPpDownload(tpdu).encode(), 0.0)  # no exception at all
    assert of_type(drain(card), EnvelopeProcessed)


@FUZZ
@given(st.binary(max_size=137))
def test_any_user_data_after_the_command_packet_identifier(packet: bytes) -> None:
    card = make_card()
    card.receive_data(push_envelope(packet), 0.0)
    assert of_type(drain(card), EnvelopeProcessed)


@st.composite
def mutated(draw: st.DrawFn, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert" and len(data) < 137:
            data.insert(at, draw(st.integers(0, 255)))
        elif kind == "delete" and data:
            del data[at]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(mutated(VALID), st.sampled_from([SPI_POR_REPORT, SPI_POR_SUBMIT]))
def test_mutated_valid_packets_are_answered(packet: bytes, spi: Spi) -> None:
    base = command_packet(offer_message(SELECT), 5, spi)
    assume(packet != VALID)
    for data in (packet, base[:16] + packet[16:]):
        card = make_card()
        card.receive_data(push_envelope(data), 0.0)
        assert of_type(drain(card), EnvelopeProcessed)
        assert card.counters[DSTK_TAR] in (0, 1, 5)


@FUZZ
@given(st.binary(max_size=100))
def test_any_application_message_in_an_open_packet(message: bytes) -> None:
    """MSL 0 and no security: whatever the secured data holds reaches the applet."""
    card = SimCard("1", {DSTK_TAR: KeySet()}, terminal_profile=FULL_PROFILE)
    packet = build_command_packet(message, Spi(), Kic(), Kid(), DSTK_TAR, 0, KeySet())
    card.receive_data(push_envelope(packet), 0.0)
    drain(card)
    run_session(card, b"")


@FUZZ
@given(st.binary(max_size=90))
def test_any_proactive_command_in_an_offer(body: bytes) -> None:
    card = SimCard("1", {DSTK_TAR: KeySet()}, terminal_profile=TerminalProfile(b"\xff" * 10))
    command = b"\xd0" + bytes((len(body),)) + body
    packet = build_command_packet(offer_message(command), Spi(), Kic(), Kid(), DSTK_TAR, 0, KeySet())
    card.receive_data(push_envelope(packet), 0.0)
    drain(card)
    run_session(card, b"")


def run_session(card: SimCard, response: bytes) -> None:
    """Answer whatever the card asks with ``response``, then with an echo of its command details."""
    from protocols.stk.commands import decode_proactive
    from protocols.stk.terminal import TerminalResponse

    for _ in range(6):
        if not card.proactive_command_pending:
            return
        command = decode_proactive(card.fetch())
        try:
            card.terminal_response(response, 1.0)
        except RemoteProtocolError:
            card.terminal_response(TerminalResponse.for_command(command).encode(), 1.0)
        drain(card)


@FUZZ
@given(st.binary(max_size=60), st.sampled_from([YES_NO, DISPLAY, SELECT]))
def test_any_terminal_response(response: bytes, command: ProactiveCommand) -> None:
    card = make_card()
    card.receive_data(push_envelope(command_packet(offer_message(command), 1)), 0.0)
    drain(card)
    card.fetch()
    try:
        card.terminal_response(response, 1.0)
    except RemoteProtocolError:
        assert card.busy
    drain(card)


@FUZZ
@given(st.integers(0, 0xFF), st.binary(max_size=4), st.sampled_from([YES_NO, DISPLAY, SELECT]))
def test_any_result_with_a_matching_header(result: int, extra: bytes, command: ProactiveCommand) -> None:
    """A well-formed TERMINAL RESPONSE with any general result and trailing objects ends in an answer."""
    from protocols.stk.commands import decode_proactive
    from protocols.stk.terminal import Result, TerminalResponse
    from protocols.stk.tlv import TextString

    card = make_card()
    card.receive_data(push_envelope(command_packet(offer_message(command), 1)), 0.0)
    drain(card)
    shown = decode_proactive(card.fetch())
    try:
        text = TextString(0x04, extra)
    except LocalProtocolError:
        text = None
    response = TerminalResponse.for_command(shown, Result(result, extra), text_string=text)
    card.terminal_response(response.encode(), 1.0)
    drain(card)
    outcome = dialog_outcome(shown, response)
    assert 0 <= outcome[1] <= 0xFF
    run_session(card, b"")


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["push", "fetch", "tr-ok", "tr-no", "tr-junk", "timer", "segment"]),
            st.floats(0, 500, allow_nan=False),
        ),
        max_size=25,
    )
)
def test_random_operation_sequences_keep_the_card_consistent(ops: list[tuple[str, float]]) -> None:
    from protocols.stk.commands import decode_proactive
    from protocols.stk.terminal import TerminalResponse

    card = make_card(dialog_timeout=100.0)
    now = 0.0
    cntr = 0
    shown: ProactiveCommand | None = None
    for op, step in ops:
        now += step
        if op == "push":
            cntr += 1
            card.receive_data(push_envelope(command_packet(offer_message(YES_NO), cntr)), now)
        elif op == "fetch" and card.proactive_command_pending:
            shown = decode_proactive(card.fetch())
        elif op in ("tr-ok", "tr-no", "tr-junk") and shown is not None:
            data = (
                b"\x81"
                if op == "tr-junk"
                else TerminalResponse.for_command(shown, 0 if op == "tr-ok" else 0x11).encode()
            )
            try:
                card.terminal_response(data, now)
                shown = None
            except RemoteProtocolError:
                pass
        elif op == "timer":
            deadline = card.get_timer()
            if deadline is not None and deadline <= now:
                card.handle_timer(now)
        elif op == "segment":
            card.receive_data(envelope(bytes.fromhex("0770000003010201") + b"x"), now)
        for event in drain(card):
            if isinstance(event, EnvelopeProcessed):
                assert 0 <= event.status_word <= 0xFFFF
        assert card.counters[DSTK_TAR] <= cntr

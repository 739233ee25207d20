"""Shared by the tests of protocols.ussd: the vector file tests/vectors/ussd/ussd.json, profile
variants and hypothesis strategies for USSD messages.

Imported as ``from ussd_helpers import ...`` (pytest's prepend import mode puts tests/ussd on
sys.path for the modules in it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocols.errors import LocalProtocolError
from protocols.gsm import GSM7_BASIC, GSM7_EXTENSION
from protocols.ussd import (
    MO_OPS,
    MT_OPS,
    PROFILES,
    SessionIdLocation,
    UssdMessage,
    UssdProfile,
    UssdServiceOp,
    check_screen,
    make_profile,
    session_id_limit,
)

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "ussd" / "ussd.json"


def load_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    return data


# Built-ins plus the variants config can select: raw CBS DCS packed, latin-1 octets, UCS2 as 0x48,
# the service code in destination_addr, a short screen limit.
PROFILE_VARIANTS: dict[str, UssdProfile] = {
    **PROFILES,
    "standard_packed_0f": make_profile(
        "standard", "standard_packed_0f", gsm7_packed=True, gsm7_data_coding=0x0F
    ),
    "standard_latin1_48": make_profile(
        "standard", "standard_latin1_48", charset="latin1", ucs2_data_coding=0x48
    ),
    "6d_dest_addr": make_profile("6d", "6d_dest_addr", service_code_field="destination_addr"),
    "mica_short_screens": make_profile("mica", "mica_short_screens", max_gsm7_chars=40, max_ucs2_chars=20),
}
PROFILE = st.sampled_from(sorted(PROFILE_VARIANTS)).map(PROFILE_VARIANTS.__getitem__)

GSM_CHARS = "".join(ch for ch in GSM7_BASIC if ch != "\x1b") + "".join(GSM7_EXTENSION.values())
GSM_TEXT = st.text(st.sampled_from(GSM_CHARS), max_size=60)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)  # no lone surrogates
TEXT = st.one_of(GSM_TEXT, ANY_TEXT, st.sampled_from(["", "1", "*123*500#", "Привет", "1.100MB 2.200MB"]))
DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=15)
ADDRESS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)


def fits(text: str, profile: UssdProfile) -> bool:
    """True when ``text`` is a screen the profile can send and that survives a round trip (a text
    ending in CR does not: the CR reads as padding)."""
    if text.endswith("\r"):
        return False
    try:
        check_screen(text, profile)
    except LocalProtocolError:
        return False
    return True


@st.composite
def session_fields(draw: st.DrawFn, profile: UssdProfile) -> tuple[int | None, int | None, bool]:
    """(session_id, sequence, end) that the profile's session parameter can carry."""
    location = profile.session_id_location
    session_id = draw(st.none() | st.integers(0, session_id_limit(location)))
    sequence = None
    end = False
    if session_id is not None and location is SessionIdLocation.ITS_SESSION_INFO:
        sequence = draw(st.integers(0, 127))
    if session_id is not None and location is not SessionIdLocation.USER_MESSAGE_REFERENCE:
        end = draw(st.booleans())
    return session_id, sequence, end


def _ops(profile: UssdProfile, direction: frozenset[UssdServiceOp]) -> list[UssdServiceOp]:
    ops = sorted(direction)
    if profile.has_release:
        ops.append(UssdServiceOp.RELEASE)
    return ops


@st.composite
def mt_messages(draw: st.DrawFn, profile: UssdProfile) -> UssdMessage:
    """An application -> handset message that ``to_submit`` can send with ``profile``."""
    op = draw(st.sampled_from(_ops(profile, MT_OPS)))
    text = draw(TEXT.filter(lambda t: fits(t, profile)))
    session_id, sequence, end = draw(session_fields(profile))
    return UssdMessage(op, draw(DIGITS), text, draw(ADDRESS), session_id, sequence, end)


@st.composite
def mo_messages(draw: st.DrawFn, profile: UssdProfile) -> UssdMessage:
    """A handset -> application message that ``to_deliver`` can send with ``profile``, in the form
    ``from_pdu`` gives it back (service_code set on begin ops)."""
    op = draw(st.sampled_from(_ops(profile, MO_OPS)))
    text = draw(TEXT.filter(lambda t: fits(t, profile)))
    service_addr = draw(ADDRESS)
    session_id, sequence, end = draw(session_fields(profile))
    service_code = None
    if op in (UssdServiceOp.PSSR_IND, UssdServiceOp.PSSD_IND):
        service_code = service_addr if profile.service_code_field.value == "destination_addr" else text
    return UssdMessage(op, draw(DIGITS), text, service_addr, session_id, sequence, end, service_code)


def as_sent(message: UssdMessage, profile: UssdProfile) -> UssdMessage:
    """``message`` with the data_coding ``to_submit`` / ``to_deliver`` choose for it."""
    return replace(message, data_coding=check_screen(message.text, profile, message.data_coding))

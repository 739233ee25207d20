"""Cross-check of the USSD codec with smpplib 2.2.4 (PyPI; nobody here wrote it), which knows the
``ussd_service_op`` and ``its_session_info`` optional parameters.

Both directions: USSD PDUs built by smpplib's ``make_pdu(...).generate()`` are decoded with
``protocols.ussd.from_pdu``, and our ``to_submit`` output is parsed by ``smpplib.smpp.parse_pdu``.
Values are compared, not bytes (smpplib orders optional parameters its own way).

smpplib quirk worked around here: its ``DeliverSM`` lists ``its_session_info`` but not
``ussd_service_op`` (only ``SubmitSM`` has both), so ``make_pdu("deliver_sm", ussd_service_op=1)``
would silently drop the op and parsing a deliver_sm that carries it raises KeyError. The fixture adds
the parameter to smpplib's deliver_sm table for the duration of a test, with the type smpplib gives
it on submit_sm (1-octet int).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import smpplib.command
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.smpp import DeliverSm, SubmitSm, decode_pdu, encode_pdu
from protocols.ussd import (
    UssdMessage,
    UssdServiceOp,
    from_pdu,
    get_profile,
    to_submit,
)

pytestmark = pytest.mark.interop

Op = UssdServiceOp
STANDARD = get_profile("standard")
SETTINGS = settings(max_examples=100, deadline=None)
TEXT = st.text(st.sampled_from("0123456789*#ABCabc .,:"), max_size=60)
MSISDN = st.text(st.sampled_from("0123456789"), min_size=5, max_size=15)
SESSION = st.tuples(st.integers(0, 255), st.integers(0, 127), st.booleans())  # its_session_info fields


@pytest.fixture(autouse=True)
def deliver_sm_knows_ussd_service_op() -> Iterator[None]:
    cls: Any = smpplib.command.DeliverSM
    saved = (cls.params, cls.params_order)
    cls.params = {**cls.params, "ussd_service_op": smpplib.command.Param(type=int, size=1)}
    cls.params_order = (*cls.params_order, "ussd_service_op")
    try:
        yield
    finally:
        cls.params, cls.params_order = saved


def lib_make(command: str, **fields: Any) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=None, sequence=5, **fields)
    pdu.sequence = 5  # make_pdu keeps the dummy client's 0 otherwise
    data: bytes = pdu.generate()
    return data


def lib_parse(data: bytes) -> Any:
    return smpplib.smpp.parse_pdu(data, client=None, sequence=0, allow_unknown_opt_params=True)


def test_smpplib_deliver_sm_pssr_indication() -> None:
    data = lib_make(
        "deliver_sm",
        service_type="USSD",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="254700000000",
        destination_addr="123",
        short_message=b"*123*500#",
        data_coding=0,
        ussd_service_op=1,
        its_session_info=0x2A00,
    )
    pdu = decode_pdu(data)
    assert isinstance(pdu, DeliverSm)
    message = from_pdu(pdu, STANDARD)
    assert (message.op, message.msisdn, message.service_code) == (Op.PSSR_IND, "254700000000", "*123*500#")
    assert (message.session_id, message.sequence, message.end) == (42, 0, False)


@SETTINGS
@given(st.sampled_from([Op.PSSR_IND, Op.USSR_CONF, Op.USSN_CONF]), SESSION, TEXT, MSISDN)
def test_smpplib_deliver_sm_decodes(
    op: Op, session_info: tuple[int, int, bool], text: str, msisdn: str
) -> None:
    session, seq, end = session_info
    data = lib_make(
        "deliver_sm",
        service_type="USSD",
        source_addr=msisdn,
        destination_addr="123",
        short_message=text.encode(),
        ussd_service_op=int(op),
        its_session_info=session << 8 | seq << 1 | end,
    )
    message = from_pdu(decode_pdu(data), STANDARD)  # type: ignore[arg-type]
    assert (message.op, message.msisdn, message.text) == (op, msisdn, text)
    assert (message.session_id, message.sequence, message.end) == (session, seq, end)


@SETTINGS
@given(st.sampled_from([Op.USSR_REQ, Op.PSSR_RESP, Op.USSN_REQ]), st.integers(0, 0xFFFF), TEXT, MSISDN)
def test_smpplib_submit_sm_decodes(op: Op, session_info: int, text: str, msisdn: str) -> None:
    data = lib_make(
        "submit_sm",
        service_type="USSD",
        source_addr="123",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=msisdn,
        short_message=text.encode(),
        ussd_service_op=int(op),
        its_session_info=session_info,
    )
    pdu = decode_pdu(data)
    assert isinstance(pdu, SubmitSm)
    message = from_pdu(pdu, STANDARD)
    assert (message.op, message.msisdn, message.text, message.service_addr) == (op, msisdn, text, "123")
    assert message.session_id == session_info >> 8 and message.sequence == (session_info & 0xFF) >> 1
    assert message.end == (bool(session_info & 1) or op is Op.PSSR_RESP)


def test_smpplib_mica_user_message_reference() -> None:
    data = lib_make(
        "deliver_sm",
        source_addr="254700000003",
        destination_addr="123",
        short_message=b"2",
        ussd_service_op=0x12,
        user_message_reference=0xBEEF,
    )
    message = from_pdu(decode_pdu(data), get_profile("mica"))  # type: ignore[arg-type]
    assert (message.op, message.session_id, message.text) == (Op.USSR_CONF, 0xBEEF, "2")


@SETTINGS
@given(st.sampled_from([Op.USSR_REQ, Op.PSSR_RESP, Op.USSN_REQ]), SESSION, TEXT, MSISDN)
def test_our_submit_sm_parsed_by_smpplib(
    op: Op, session_info: tuple[int, int, bool], text: str, msisdn: str
) -> None:
    session, seq, end = session_info
    message = UssdMessage(op, msisdn, text, "123", session, seq, end)
    lib = lib_parse(encode_pdu(to_submit(message, STANDARD, sequence_number=9)))
    assert lib.command == "submit_sm" and lib.sequence == 9
    assert lib.ussd_service_op == int(op)
    assert lib.its_session_info == session << 8 | seq << 1 | message.end
    assert lib.short_message == text.encode() and lib.data_coding == 0
    assert lib.destination_addr == msisdn.encode() and lib.source_addr == b"123"
    assert lib.service_type == b"USSD"


def test_our_mica_submit_sm_parsed_by_smpplib() -> None:
    message = UssdMessage(Op.PSSR_RESP, "254700000003", "Bye", "123", 0xBEEF)
    lib = lib_parse(encode_pdu(to_submit(message, get_profile("mica"))))
    assert (lib.ussd_service_op, lib.user_message_reference) == (0x11, 0xBEEF)

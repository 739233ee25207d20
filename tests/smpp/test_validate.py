"""Field checks on received messages (protocols/smpp/validate.py).

Every rule of ``check_message`` (TON 5.2.5, NPI 5.2.6, esm_class 5.2.12, priority_flag 5.2.14,
schedule_delivery_time and validity_period in the time format of 7.1.1, registered_delivery 5.2.17,
replace_if_present_flag 5.2.18) with the command_status of 5.1.3 it answers, for submit_sm,
deliver_sm, data_sm and submit_multi. The oracle below is written from the spec; hypothesis holds
``check_message`` (whose submit_sm fast path is a single expression) to it for arbitrary fields.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import (
    CancelSm,
    DataSm,
    DeliverSm,
    DestAddress,
    EnquireLink,
    Pdu,
    QuerySm,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
)
from protocols.smpp.validate import check_message, check_time

S = CommandStatus
FUZZ = settings(max_examples=400, deadline=None)

# the statuses named by the brief, checked against the registry so a renumbering shows up
STATUS_VALUES = {
    S.ESME_RINVSRCTON: 0x48,
    S.ESME_RINVSRCNPI: 0x49,
    S.ESME_RINVDSTTON: 0x50,
    S.ESME_RINVDSTNPI: 0x51,
    S.ESME_RINVDSTADR: 0x0B,
    S.ESME_RINVESMCLASS: 0x43,
    S.ESME_RINVPRTFLG: 0x06,
    S.ESME_RINVREPFLAG: 0x54,
    S.ESME_RINVSCHED: 0x61,
    S.ESME_RINVEXPIRY: 0x62,
    S.ESME_RINVREGDLVFLG: 0x07,
}


def test_status_values() -> None:
    for status, value in STATUS_VALUES.items():
        assert int(status) == value, status.name


# --- check_time (section 7.1.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "250101120000000+",
        "991231235959948-",
        "000101000000000+",
        "251201000000048+",  # 48 quarter hours is the largest offset
        "000001000000000R",  # relative: one day
        "991231235959999R",  # relative times are not range-checked
    ],
)
def test_valid_times(value: str) -> None:
    assert check_time(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "2501011200000+",  # too short
        "2501011200000000+",  # too long
        "250101120000000",  # 15 characters
        "25010112000000a+",  # a letter among the digits
        "2501011200 0000+",
        "250101120000000X",  # not + - R
        "250101120000000r",
        "250001120000000+",  # month 00
        "251301120000000+",  # month 13
        "250100120000000+",  # day 00
        "250132120000000+",  # day 32
        "250101240000000+",  # hour 24
        "250101126000000+",  # minute 60
        "250101120060000+",  # second 60
        "250101120000049+",  # 49 quarter hours
        "00\u00b2101000000000+",  # latin-1 superscript two: isdigit() but not a decimal digit
        "\u00b9" * 15 + "R",
        "\u0663" * 15 + "+",  # Arabic-Indic digits (not latin-1, but a str is a str)
    ],
)
def test_invalid_times(value: str) -> None:
    assert check_time(value) is False


_TIME_RE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})[0-9]([0-9]{2})([-+R])")


def time_ok(value: str) -> bool:
    """Section 7.1.1, written independently of the code under test."""
    if value == "":
        return True
    m = _TIME_RE.fullmatch(value)
    if m is None:
        return False
    _, month, day, hour, minute, second, quarters, p = m.groups()
    if p == "R":
        return True
    return (
        1 <= int(month) <= 12
        and 1 <= int(day) <= 31
        and int(hour) <= 23
        and int(minute) <= 59
        and int(second) <= 59
        and int(quarters) <= 48
    )


def _time_text(parts: tuple[int, ...], p: str) -> str:
    return "".join(f"{v:02d}" for v in parts[:6]) + str(parts[6]) + f"{parts[7]:02d}" + p


TIMES = st.one_of(
    st.just(""),
    st.builds(
        _time_text,
        st.tuples(*(st.integers(0, 99) for _ in range(6)), st.integers(0, 9), st.integers(0, 60)),
        st.sampled_from("+-R"),
    ),
    st.text(st.sampled_from("0123456789+-R \u00b2\u00b3\u00b9x"), min_size=15, max_size=17),
    st.text(st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=17),
)


@FUZZ
@given(TIMES)
def test_check_time_matches_the_spec(value: str) -> None:
    assert check_time(value) is time_ok(value)


# --- the oracle ----------------------------------------------------------------------------------------

TONS = set(range(7))  # 5.2.5
NPIS = {0, 1, 3, 4, 6, 8, 9, 10, 14, 18}  # 5.2.6
SUBMIT_TYPES = {0x00, 0x08, 0x10}  # default, SME delivery ack, SME manual/user ack
DELIVER_TYPES = {0x00, 0x04, 0x08, 0x10, 0x18, 0x20}  # plus receipt, conversation abort, intermediate


def registered_delivery_ok(value: int) -> bool:
    return value < 0x20 and value & 0x03 != 0x03


def expected_status(pdu: Pdu) -> int | None:
    """The first rule ``pdu`` breaks, in field order, or None."""
    f: Any = pdu
    rules: list[tuple[bool, int]] = [
        (f.source_addr_ton in TONS, S.ESME_RINVSRCTON),
        (f.source_addr_npi in NPIS, S.ESME_RINVSRCNPI),
    ]
    if not isinstance(pdu, SubmitMulti):
        rules += [
            (f.dest_addr_ton in TONS, S.ESME_RINVDSTTON),
            (f.dest_addr_npi in NPIS, S.ESME_RINVDSTNPI),
            (f.destination_addr != "", S.ESME_RINVDSTADR),
        ]
    if isinstance(pdu, SubmitSm | DeliverSm):
        types = SUBMIT_TYPES if isinstance(pdu, SubmitSm) else DELIVER_TYPES
        rules += [
            (f.esm_class & 0x3C in types, S.ESME_RINVESMCLASS),
            (f.priority_flag <= 3, S.ESME_RINVPRTFLG),
            (f.replace_if_present_flag <= 1, S.ESME_RINVREPFLAG),
        ]
    if isinstance(pdu, SubmitMulti):
        rules += [
            (f.esm_class & 0x3C in SUBMIT_TYPES, S.ESME_RINVESMCLASS),
            (f.priority_flag <= 3, S.ESME_RINVPRTFLG),
            (f.replace_if_present_flag <= 1, S.ESME_RINVREPFLAG),
        ]
    if not isinstance(pdu, DataSm):
        rules += [
            (time_ok(f.schedule_delivery_time), S.ESME_RINVSCHED),
            (time_ok(f.validity_period), S.ESME_RINVEXPIRY),
        ]
    rules.append((registered_delivery_ok(f.registered_delivery), S.ESME_RINVREGDLVFLG))
    for ok, status in rules:
        if not ok:
            return status
    return None


def status_of(pdu: Pdu) -> int | None:
    bad = check_message(pdu)
    if bad is None:
        return None
    status, reason = bad
    assert isinstance(reason, str) and reason
    return status


# --- one rule at a time -------------------------------------------------------------------------

GOOD_SUBMIT = SubmitSm(source_addr="100", destination_addr="4912345", short_message=b"hi")
GOOD_DELIVER = DeliverSm(source_addr="4912345", destination_addr="100", short_message=b"ok")
GOOD_DATA = DataSm(source_addr="100", destination_addr="4912345")
GOOD_MULTI = SubmitMulti(source_addr="100", dest_addresses=(DestAddress(1, 1, "4911"),))
MESSAGE_CLASSES = [SubmitSm, DeliverSm, DataSm, SubmitMulti]


@pytest.mark.parametrize(
    "pdu", [GOOD_SUBMIT, GOOD_DELIVER, GOOD_DATA, GOOD_MULTI], ids=lambda p: type(p).__name__
)
def test_valid_messages_pass(pdu: Pdu) -> None:
    assert check_message(pdu) is None


def _with(pdu: Pdu, **fields: Any) -> Pdu:
    return dataclasses.replace(pdu, **fields)  # type: ignore[type-var]


SEND_LIKE = [GOOD_SUBMIT, GOOD_DELIVER, GOOD_DATA, GOOD_MULTI]
WITH_DEST = [GOOD_SUBMIT, GOOD_DELIVER, GOOD_DATA]
SM_LIKE = [GOOD_SUBMIT, GOOD_DELIVER]
TIMED = [GOOD_SUBMIT, GOOD_DELIVER, GOOD_MULTI]

CASES: list[tuple[list[Pdu], dict[str, Any], int]] = [
    (SEND_LIKE, {"source_addr_ton": 9}, S.ESME_RINVSRCTON),
    (SEND_LIKE, {"source_addr_ton": 7}, S.ESME_RINVSRCTON),
    (SEND_LIKE, {"source_addr_npi": 2}, S.ESME_RINVSRCNPI),
    (SEND_LIKE, {"source_addr_npi": 19}, S.ESME_RINVSRCNPI),
    (WITH_DEST, {"dest_addr_ton": 9}, S.ESME_RINVDSTTON),
    (WITH_DEST, {"dest_addr_npi": 5}, S.ESME_RINVDSTNPI),
    (WITH_DEST, {"destination_addr": ""}, S.ESME_RINVDSTADR),
    (SM_LIKE, {"esm_class": 0x3C}, S.ESME_RINVESMCLASS),
    (SM_LIKE, {"priority_flag": 4}, S.ESME_RINVPRTFLG),
    (SM_LIKE, {"priority_flag": 0xFF}, S.ESME_RINVPRTFLG),
    (SM_LIKE, {"replace_if_present_flag": 2}, S.ESME_RINVREPFLAG),
    (TIMED, {"schedule_delivery_time": "2501011200000+"}, S.ESME_RINVSCHED),
    (TIMED, {"schedule_delivery_time": "251301120000000+"}, S.ESME_RINVSCHED),
    (TIMED, {"validity_period": "nonsense"}, S.ESME_RINVEXPIRY),
    (TIMED, {"validity_period": "250101120000049-"}, S.ESME_RINVEXPIRY),
    (SEND_LIKE, {"registered_delivery": 0x03}, S.ESME_RINVREGDLVFLG),
    (SEND_LIKE, {"registered_delivery": 0x20}, S.ESME_RINVREGDLVFLG),
    (SEND_LIKE, {"registered_delivery": 0x80}, S.ESME_RINVREGDLVFLG),
    (SEND_LIKE, {"registered_delivery": 0x1F}, S.ESME_RINVREGDLVFLG),
    ([GOOD_SUBMIT, GOOD_MULTI], {"esm_class": 0x04}, S.ESME_RINVESMCLASS),  # receipts are SMSC -> ESME
    ([GOOD_SUBMIT, GOOD_MULTI], {"esm_class": 0x18}, S.ESME_RINVESMCLASS),
    ([GOOD_SUBMIT, GOOD_MULTI], {"esm_class": 0x20}, S.ESME_RINVESMCLASS),
    ([GOOD_DELIVER], {"esm_class": 0x0C}, S.ESME_RINVESMCLASS),
    ([GOOD_DELIVER], {"esm_class": 0x24}, S.ESME_RINVESMCLASS),
]


@pytest.mark.parametrize(
    ("pdu", "fields", "status"),
    [(pdu, fields, status) for pdus, fields, status in CASES for pdu in pdus],
    ids=lambda v: type(v).__name__ if isinstance(v, Pdu) else str(v),
)
def test_each_invalid_field_gets_its_status(pdu: Pdu, fields: dict[str, Any], status: int) -> None:
    bad = _with(pdu, **fields)
    result = check_message(bad)
    assert result is not None
    assert result[0] == status
    assert next(iter(fields)) in result[1]  # the reason names the field


@pytest.mark.parametrize(
    ("pdu", "fields"),
    [
        (GOOD_SUBMIT, {"esm_class": 0x08}),
        (GOOD_SUBMIT, {"esm_class": 0x10}),
        (GOOD_SUBMIT, {"esm_class": 0x03 | 0x40 | 0x80}),  # mode and GSM bits are not the type
        (GOOD_MULTI, {"esm_class": 0x10}),
        (GOOD_DELIVER, {"esm_class": 0x04}),
        (GOOD_DELIVER, {"esm_class": 0x18}),
        (GOOD_DELIVER, {"esm_class": 0x20 | 0x40}),
        (GOOD_DATA, {"esm_class": 0xFF}),  # data_sm's esm_class is not checked
        (GOOD_SUBMIT, {"priority_flag": 3, "replace_if_present_flag": 1}),
        (GOOD_SUBMIT, {"registered_delivery": 0x1E}),
        (GOOD_SUBMIT, {"registered_delivery": 0x02}),
        (GOOD_SUBMIT, {"schedule_delivery_time": "000001000000000R", "validity_period": "250101120000000+"}),
        (GOOD_MULTI, {"schedule_delivery_time": "250101120000000-", "validity_period": "000001000000000R"}),
        (
            GOOD_DELIVER,
            {"source_addr_ton": 6, "source_addr_npi": 18, "dest_addr_ton": 5, "dest_addr_npi": 14},
        ),
        (
            GOOD_MULTI,
            {"dest_addresses": (DestAddress(99, 99, ""),)},
        ),  # per-destination faults go in submit_multi_resp
    ],
)
def test_boundary_values_pass(pdu: Pdu, fields: dict[str, Any]) -> None:
    assert check_message(_with(pdu, **fields)) is None


def test_the_first_invalid_field_is_reported() -> None:
    bad = _with(GOOD_SUBMIT, source_addr_npi=2, dest_addr_ton=9, priority_flag=9, registered_delivery=3)
    assert status_of(bad) == S.ESME_RINVSRCNPI
    bad = _with(GOOD_SUBMIT, dest_addr_ton=9, destination_addr="")
    assert status_of(bad) == S.ESME_RINVDSTTON
    bad = _with(GOOD_SUBMIT, validity_period="x", schedule_delivery_time="y")
    assert status_of(bad) == S.ESME_RINVSCHED


@pytest.mark.parametrize(
    "pdu", [EnquireLink(), QuerySm(), CancelSm(), SubmitSmResp()], ids=lambda p: type(p).__name__
)
def test_other_pdus_are_not_checked(pdu: Pdu) -> None:
    assert check_message(pdu) is None


# --- hypothesis: the code against the oracle ----------------------------------------------------------

TON = st.one_of(st.integers(0, 8), st.integers(0, 0xFF))
NPI = st.one_of(st.sampled_from(sorted(NPIS | {2, 5, 7, 19})), st.integers(0, 0xFF))
SMALL = st.one_of(st.integers(0, 4), st.integers(0, 0xFF))
ESM = st.one_of(st.sampled_from([0, 3, 4, 8, 0x10, 0x18, 0x20, 0x40, 0x83, 0x3C]), st.integers(0, 0xFF))
REG = st.one_of(st.integers(0, 0x1F), st.integers(0, 0xFF))
ADDR = st.sampled_from(["", "1", "4912345"])

SM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "source_addr_ton": TON,
    "source_addr_npi": NPI,
    "dest_addr_ton": TON,
    "dest_addr_npi": NPI,
    "destination_addr": ADDR,
    "esm_class": ESM,
    "priority_flag": SMALL,
    "replace_if_present_flag": SMALL,
    "schedule_delivery_time": TIMES,
    "validity_period": TIMES,
    "registered_delivery": REG,
}
FIELDS_OF: dict[type[Pdu], dict[str, st.SearchStrategy[Any]]] = {
    SubmitSm: SM_FIELDS,
    DeliverSm: SM_FIELDS,
    DataSm: {
        k: SM_FIELDS[k] for k in ("source_addr_ton", "source_addr_npi", "dest_addr_ton", "dest_addr_npi")
    }
    | {"destination_addr": ADDR, "esm_class": ESM, "registered_delivery": REG},
    SubmitMulti: {k: v for k, v in SM_FIELDS.items() if not k.startswith("dest")},
}
ANY_MESSAGE = st.one_of([st.builds(cls, **fields) for cls, fields in FIELDS_OF.items()])


@FUZZ
@given(ANY_MESSAGE)
def test_check_message_matches_the_oracle(pdu: Pdu) -> None:
    assert status_of(pdu) == expected_status(pdu)


@FUZZ
@given(st.fixed_dictionaries(SM_FIELDS))
def test_submit_sm_fast_path_is_none_iff_every_rule_passes(fields: dict[str, Any]) -> None:
    submit = SubmitSm(**fields)
    assert (check_message(submit) is None) == (expected_status(submit) is None)
    # deliver_sm shares every rule except the esm_class types and always takes the slow path
    if fields["esm_class"] & 0x3C in SUBMIT_TYPES:
        assert check_message(submit) == check_message(DeliverSm(**fields))


@FUZZ
@given(st.fixed_dictionaries(SM_FIELDS))
def test_plain_submit_sm_is_accepted_by_the_fast_path_only_when_valid(fields: dict[str, Any]) -> None:
    plain = SubmitSm(**{**fields, "esm_class": 0, "schedule_delivery_time": "", "validity_period": ""})
    expected = expected_status(plain)
    assert status_of(plain) == expected

"""The dictionary generated from protocols/diameter/dictionary.json: lookups, typed AVPs, flag rules."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.diameter import dictionary as d
from protocols.diameter.codec import Avp, Message, OtherAddress, decode, encode
from protocols.errors import DecodeError, LocalProtocolError


def test_every_row_loaded_and_cited() -> None:
    raw = json.loads(resources.files("protocols.diameter").joinpath("dictionary.json").read_text("utf-8"))
    assert len({row["name"] for row in raw["avps"]}) == len({(r["code"], r["vendor"]) for r in raw["avps"]})
    assert len(raw["avps"]) == len({row["name"] for row in raw["avps"]})
    for row in raw["avps"]:
        definition = d.lookup(row["name"])
        assert d.lookup_code(row["code"], row["vendor"]) is definition
        assert definition.source.split()[0] in raw["sources"]


@pytest.mark.parametrize(
    ("name", "code", "vendor", "flags"),
    [
        ("Origin-Host", 264, 0, 0x40),
        ("Session-Id", 263, 0, 0x40),
        ("Product-Name", 269, 0, 0x00),
        ("Event-Trigger", 1006, 10415, 0xC0),
        ("Reporting-Reason", 872, 10415, 0xC0),
        ("Monitoring-Key", 1066, 10415, 0x80),
        ("Usage-Monitoring-Information", 1067, 10415, 0x80),
        ("Policy-Counter-Status-Report", 2903, 10415, 0xC0),
        ("Pending-Policy-Counter-Change-Time", 2906, 10415, 0xC0),
        ("Multiple-Services-Credit-Control", 456, 0, 0x40),
    ],
)
def test_codes_and_flags(name: str, code: int, vendor: int, flags: int) -> None:
    definition = d.lookup(name)
    assert (definition.code, definition.vendor_id, definition.flags) == (code, vendor, flags)


def test_enums_commands_applications() -> None:
    assert d.lookup("CC-Request-Type").enum["TERMINATION_REQUEST"] == 3
    assert d.enum_name("Event-Trigger", 33) == "USAGE_REPORT"
    assert d.enum_name("Event-Trigger", 26) == "TAI_CHANGE"
    assert d.enum_name("Final-Unit-Action", 2) == "RESTRICT_ACCESS"
    assert d.enum_name("Final-Unit-Action", 9) is None
    assert d.enum_name("Subscription-Id-Type", 1) == "END_USER_IMSI"
    assert d.enum_name("Disconnect-Cause", 2) == "DO_NOT_WANT_TO_TALK_TO_YOU"
    for key in (272, "CCR", "CCA", "Credit-Control"):
        command = d.lookup_command(key)
        assert command is not None and command.code == 272
    assert d.lookup_command("SNR") == d.lookup_command(8388636)
    assert d.lookup_command(8388635) is not None
    assert d.lookup_command(1) is None
    gx = d.lookup_application(16777238)
    assert gx is not None and gx.name == "3GPP Gx"
    assert d.lookup_application(16777302) is not None
    assert d.lookup_application(7) is None
    assert d.lookup_code(1006) is None
    assert d.lookup_code(263, None) is d.lookup("Session-Id")
    with pytest.raises(KeyError):
        d.lookup("No-Such-AVP")


SAMPLES: list[tuple[str, object]] = [
    ("Class", b"\x00\x01"),
    ("Exponent", -3),
    ("Value-Digits", -(2**40)),
    ("Result-Code", 2001),
    ("CC-Total-Octets", 4831838208),
    ("Host-IP-Address", ipaddress.IPv6Address("2001:db8::1")),
    ("Host-IP-Address", OtherAddress(8, b"\x12\x34")),
    ("Event-Timestamp", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("Session-Id", "gw;1;ü"),
    ("Origin-Host", "gw.localdomain"),
    ("Redirect-Host", "aaa://ocs.localdomain:3868;transport=tcp"),
    ("Event-Trigger", 33),
]


@pytest.mark.parametrize(("name", "value"), SAMPLES)
def test_avp_value_of_round_trip(name: str, value: object) -> None:
    item = d.avp(name, value)
    assert d.value_of(item) == value
    d.check_flags(item)


def test_enumerated_by_name_and_grouped() -> None:
    assert d.value_of(d.avp("CC-Request-Type", "UPDATE_REQUEST")) == 2
    usu = d.avp("Used-Service-Unit", [d.avp("Reporting-Reason", "QUOTA_EXHAUSTED"), d.avp("CC-Time", 60)])
    members = d.value_of(usu)
    assert isinstance(members, tuple)
    reason = d.find(members, "Reporting-Reason")
    assert reason is not None and reason.vendor_id == 10415 and d.value_of(reason) == 3
    assert d.find(members, "CC-Total-Octets") is None


def test_floats_accept_int() -> None:
    assert d._ENCODERS[d.AvpType.FLOAT32](d.lookup("Exponent"), 1) == b"\x3f\x80\x00\x00"
    assert d._ENCODERS[d.AvpType.FLOAT64](d.lookup("Exponent"), 0.5) == b"\x3f\xe0" + b"\x00" * 6


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Result-Code", "2001"),
        ("Result-Code", True),
        ("CC-Request-Type", "NOPE"),
        ("CC-Request-Type", 1.5),
        ("Subscription-Id", [b"x"]),
        ("Subscription-Id", b"raw"),
        ("Subscription-Id", 5),
        ("Session-Id", b"bytes"),
        ("Host-IP-Address", "127.0.0.1"),
    ],
)
def test_avp_wrong_value(name: str, value: object) -> None:
    with pytest.raises(LocalProtocolError):
        d.avp(name, value)


def test_float_wrong_value() -> None:
    with pytest.raises(LocalProtocolError):
        d._ENCODERS[d.AvpType.FLOAT64](d.lookup("Exponent"), "1.0")


def test_value_of_unknown_and_bad() -> None:
    assert d.value_of(Avp(999, 0x80, 99999, b"opaque")) == b"opaque"
    with pytest.raises(DecodeError) as info:
        d.value_of(Avp(268, 0x40, None, b"\x00"))
    assert info.value.status == 5014


def test_check_flags() -> None:
    d.check_flags(Avp(999, 0x40, None, b""))  # unknown: not ours to judge
    d.check_flags(Avp(411, 0x40, None, b"k"))  # CC-Correlation-Id: M "may"
    d.check_flags(Avp(411, 0x00, None, b"k"))
    for item in (Avp(268, 0x00, None, b"\x00\x00\x07\xd1"), Avp(1066, 0xC0, 10415, b"k")):
        with pytest.raises(DecodeError) as info:
            d.check_flags(item)
        assert info.value.status == 3009


def test_find_all_on_message() -> None:
    message = Message(
        command_flags=0x80,
        command_code=257,
        application_id=0,
        hop_by_hop=1,
        end_to_end=2,
        avps=(
            d.avp("Auth-Application-Id", 4),
            d.avp("Origin-Host", "a"),
            d.avp("Auth-Application-Id", 0xFFFFFFFF),
        ),
    )
    assert [d.value_of(a) for a in d.find_all(message, "Auth-Application-Id")] == [4, 0xFFFFFFFF]
    assert d.find_all(message.avps, "Vendor-Id") == []
    assert d.find(decode(encode(message)), "Origin-Host") == d.avp("Origin-Host", "a")


@given(
    st.lists(
        st.sampled_from(["Result-Code", "CC-Total-Octets", "Rating-Group", "Event-Trigger"]).flatmap(
            lambda name: st.tuples(st.just(name), st.integers(0, 2**31 - 1))
        ),
        max_size=5,
    ),
    st.binary(max_size=9),
)
def test_nested_grouped_with_unknown_vendor_round_trip(items: list[tuple[str, int]], opaque: bytes) -> None:
    inner = [d.avp(name, value) for name, value in items] + [Avp(4242, 0x80, 99999, opaque)]
    outer = d.avp(
        "Multiple-Services-Credit-Control", [d.avp("Used-Service-Unit", inner), Avp(7, 0, None, opaque)]
    )
    message = Message(
        command_flags=0xC0, command_code=272, application_id=4, hop_by_hop=1, end_to_end=2, avps=(outer,)
    )
    wire = encode(message)
    assert decode(wire) == message and encode(decode(wire)) == wire
    members = d.value_of(outer)
    assert isinstance(members, tuple)
    usu = members[0]
    assert d.value_of(usu) == tuple(inner)

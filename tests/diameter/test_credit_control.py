"""Gy/Ro (RFC 4006, TS 32.299), Gx (TS 29.212) and Sy (TS 29.219) requests: typed round trips,
validation with the RFC 6733 Result-Codes and Failed-AVP, and the answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.diameter.codec import Avp, CommandFlag, Message, decode, encode, encode_avp
from protocols.diameter.credit_control import (
    GX_APPLICATION_ID,
    GY_APPLICATION_ID,
    SERVICE_CONTEXT_PS,
    SY_APPLICATION_ID,
    CcRequestType,
    CreditControlRequest,
    EventTrigger,
    FailedAvpError,
    FinalUnitAction,
    FinalUnitIndication,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    PendingPolicyCounterInformation,
    PolicyCounterStatusReport,
    RedirectAddressType,
    RedirectServer,
    ReportingReason,
    RequestedServiceUnit,
    SpendingStatusNotificationRequest,
    SubscriptionId,
    SubscriptionIdType,
    UsageMonitoringInformation,
    UsageMonitoringLevel,
    UsageMonitoringReport,
    UsageMonitoringSupport,
    UsedServiceUnit,
    answer,
    answer_services,
    build_gx_ccr_update,
    build_gy_ccr,
    build_sy_snr,
    error_answer,
    parse_request,
    result_code,
    to_message,
)
from protocols.diameter.dictionary import avp, find, find_all, value_of
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError

# --- strategies -----------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
identity = st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True)
times = st.integers(0, 60 * 365 * 24 * 3600).map(
    lambda s: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
)


def opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


def units(kind: type) -> st.SearchStrategy:  # type: ignore[type-arg]
    extra = {"reporting_reason": opt(i32.map(ReportingReason))} if kind is UsedServiceUnit else {}
    return st.builds(
        kind,
        cc_time=opt(u32),
        cc_total_octets=opt(u64),
        cc_input_octets=opt(u64),
        cc_output_octets=opt(u64),
        cc_service_specific_units=opt(u64),
        **extra,
    )


fuis = st.builds(
    FinalUnitIndication,
    final_unit_action=i32.map(FinalUnitAction),
    restriction_filter_rule=st.lists(st.binary(max_size=8), max_size=2).map(tuple),
    filter_id=st.lists(text, max_size=2).map(tuple),
    redirect_server=opt(
        st.builds(
            RedirectServer, redirect_address_type=i32.map(RedirectAddressType), redirect_server_address=text
        )
    ),
)
msccs = st.builds(
    MultipleServicesCreditControl,
    rating_group=opt(u32),
    service_identifier=st.lists(u32, max_size=2).map(tuple),
    granted_service_unit=opt(units(GrantedServiceUnit)),
    requested_service_unit=opt(units(RequestedServiceUnit)),
    used_service_unit=st.lists(units(UsedServiceUnit), max_size=2).map(tuple),
    validity_time=opt(u32),
    result_code=opt(u32),
    final_unit_indication=opt(fuis),
    time_quota_threshold=opt(u32),
    volume_quota_threshold=opt(u32),
    reporting_reason=st.lists(i32.map(ReportingReason), max_size=2).map(tuple),
)
subscription_ids = st.builds(
    SubscriptionId, subscription_id_type=i32.map(SubscriptionIdType), subscription_id_data=text
)
umis = st.builds(
    UsageMonitoringInformation,
    monitoring_key=opt(st.binary(max_size=8)),
    granted_service_unit=st.lists(units(GrantedServiceUnit), max_size=2).map(tuple),
    used_service_unit=st.lists(units(UsedServiceUnit), max_size=2).map(tuple),
    usage_monitoring_level=opt(i32.map(UsageMonitoringLevel)),
    usage_monitoring_report=opt(i32.map(UsageMonitoringReport)),
    usage_monitoring_support=opt(i32.map(UsageMonitoringSupport)),
)


def ccrs(application: int) -> st.SearchStrategy[CreditControlRequest]:
    gx = application == GX_APPLICATION_ID
    return st.builds(
        CreditControlRequest,
        session_id=text,
        origin_host=identity,
        origin_realm=identity,
        destination_realm=identity,
        auth_application_id=st.just(application),
        cc_request_type=st.sampled_from(CcRequestType),
        cc_request_number=u32,
        service_context_id=opt(text) if gx else text,
        destination_host=opt(identity),
        origin_state_id=opt(u32),
        event_timestamp=opt(times),
        subscription_id=st.lists(subscription_ids, max_size=2).map(tuple),
        multiple_services_credit_control=st.lists(msccs, max_size=2).map(tuple),
        event_trigger=st.lists(i32.map(EventTrigger), max_size=2).map(tuple) if gx else st.just(()),
        usage_monitoring_information=st.lists(umis, max_size=2).map(tuple) if gx else st.just(()),
    )


pcsrs = st.builds(
    PolicyCounterStatusReport,
    policy_counter_identifier=text,
    policy_counter_status=text,
    pending_policy_counter_information=st.lists(
        st.builds(
            PendingPolicyCounterInformation,
            policy_counter_status=text,
            pending_policy_counter_change_time=times,
        ),
        max_size=2,
    ).map(tuple),
)
snrs = st.builds(
    SpendingStatusNotificationRequest,
    session_id=text,
    origin_host=identity,
    origin_realm=identity,
    destination_realm=identity,
    destination_host=identity,
    origin_state_id=opt(u32),
    policy_counter_status_report=st.lists(pcsrs, max_size=3).map(tuple),
    sn_request_type=opt(u32),
    subscription_id=st.lists(subscription_ids, max_size=1).map(tuple),
)


# --- round trips ----------------------------------------------------------------------------------


def wire(message: Message) -> Message:
    data = encode(message)
    decoded = decode(data)
    assert encode(decoded) == data  # byte-identical re-encoding
    return decoded


@settings(max_examples=60, deadline=None)
@given(request=ccrs(GY_APPLICATION_ID) | ccrs(GX_APPLICATION_ID) | snrs, hop=u32, e2e=u32)
def test_round_trip(
    request: CreditControlRequest | SpendingStatusNotificationRequest, hop: int, e2e: int
) -> None:
    message = wire(to_message(request, hop_by_hop=hop, end_to_end=e2e))
    assert (message.hop_by_hop, message.end_to_end) == (hop, e2e)
    assert message.is_request and message.is_proxiable
    assert parse_request(message) == request


def test_builders() -> None:
    stamp = datetime(2024, 5, 1, 12, tzinfo=UTC)
    service = MultipleServicesCreditControl(
        rating_group=100,
        used_service_unit=(
            UsedServiceUnit(cc_total_octets=10, reporting_reason=ReportingReason.QUOTA_EXHAUSTED),
        ),
    )
    gy = parse_request(
        wire(
            build_gy_ccr(
                session_id="s;1",
                origin_host="pgw.localdomain",
                origin_realm="localdomain",
                destination_realm="localdomain",
                cc_request_type=CcRequestType.UPDATE_REQUEST,
                cc_request_number=3,
                msisdn="254700000001",
                multiple_services_credit_control=[service],
                event_timestamp=stamp,
                subscription_id=[
                    SubscriptionId(
                        subscription_id_type=SubscriptionIdType.END_USER_IMSI, subscription_id_data="639"
                    )
                ],
            )
        )
    )
    assert isinstance(gy, CreditControlRequest) and not gy.is_gx
    assert (gy.msisdn, gy.imsi, gy.service_context_id, gy.event_timestamp) == (
        "254700000001",
        "639",
        SERVICE_CONTEXT_PS,
        stamp,
    )
    assert gy.multiple_services_credit_control == (service,)
    gx_message = wire(
        build_gx_ccr_update(
            session_id="s;2",
            origin_host="pgw.localdomain",
            origin_realm="localdomain",
            destination_realm="localdomain",
            cc_request_number=4,
            msisdn="254700000002",
            usage_monitoring_information=[UsageMonitoringInformation(monitoring_key=b"mk")],
        )
    )
    assert gx_message.application_id == GX_APPLICATION_ID
    trigger = find(gx_message, "Event-Trigger")
    assert trigger is not None and trigger.vendor_id == 10415 and value_of(trigger) == 33  # USAGE_REPORT
    gx = parse_request(gx_message)
    assert isinstance(gx, CreditControlRequest) and gx.is_gx and gx.imsi is None
    assert (gx.cc_request_type, gx.event_trigger, gx.msisdn) == (
        CcRequestType.UPDATE_REQUEST,
        (EventTrigger.USAGE_REPORT,),
        "254700000002",
    )
    snr_message = wire(
        build_sy_snr(
            session_id="s;3",
            origin_host="ocs.localdomain",
            origin_realm="localdomain",
            destination_realm="localdomain",
            destination_host="gw.localdomain",
            policy_counter_status_report=[
                PolicyCounterStatusReport(policy_counter_identifier="pc", policy_counter_status="exhausted")
            ],
        )
    )
    assert (snr_message.command_code, snr_message.application_id) == (8388636, SY_APPLICATION_ID)
    snr = parse_request(snr_message)
    assert isinstance(snr, SpendingStatusNotificationRequest) and snr.msisdn is None
    assert snr.policy_counter_status_report[0].policy_counter_status == "exhausted"


def test_service_unit_octets_and_reasons() -> None:
    assert UsedServiceUnit(cc_total_octets=5, cc_input_octets=1).octets == 5
    assert UsedServiceUnit(cc_input_octets=1, cc_output_octets=2).octets == 3
    assert UsedServiceUnit(cc_output_octets=2).octets == 2
    assert UsedServiceUnit(cc_time=60).octets is None
    service = MultipleServicesCreditControl(
        reporting_reason=(ReportingReason.VALIDITY_TIME,),
        used_service_unit=(UsedServiceUnit(reporting_reason=ReportingReason.THRESHOLD), UsedServiceUnit()),
    )
    assert service.reporting_reasons == (ReportingReason.VALIDITY_TIME, ReportingReason.THRESHOLD)
    assert ReportingReason(77).name == "UNKNOWN_0x0000004D"  # unknown values are kept


# --- errors ---------------------------------------------------------------------------------------


def gy_message(*extra: Avp, drop: tuple[int, ...] = (), replace: dict[int, Avp] | None = None) -> Message:
    base = build_gy_ccr(
        session_id="s;1",
        origin_host="pgw.localdomain",
        origin_realm="localdomain",
        destination_realm="localdomain",
        cc_request_type=CcRequestType.UPDATE_REQUEST,
        cc_request_number=3,
        msisdn="254700000001",
    )
    replace = replace or {}
    avps = tuple(replace.get(a.code, a) for a in base.avps if a.code not in drop) + extra
    return Message(
        command_flags=base.command_flags,
        command_code=272,
        application_id=base.application_id,
        hop_by_hop=5,
        end_to_end=6,
        avps=avps,
    )


def refused(message: Message, **kwargs: bool) -> FailedAvpError:
    with pytest.raises(FailedAvpError) as caught:
        parse_request(wire(message), **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "name",
    [
        "Session-Id",
        "Origin-Host",
        "Origin-Realm",
        "Destination-Realm",
        "Auth-Application-Id",
        "Service-Context-Id",
        "CC-Request-Type",
        "CC-Request-Number",
    ],
)
def test_missing_required_avp_5005_with_example(name: str) -> None:
    code = avp(name, 0 if name.startswith(("CC-", "Auth")) else "x").code
    error = refused(gy_message(drop=(code,)))
    assert error.status == 5005
    assert error.failed_avp is not None and error.failed_avp.code == code
    assert error.failed_avp.flags == 0x40
    assert error.failed_avp.data == (bytes(4) if name.startswith(("CC-", "Auth")) else b"")


def test_snr_requires_destination_host() -> None:
    message = build_sy_snr(
        session_id="s",
        origin_host="ocs",
        origin_realm="r",
        destination_realm="r",
        destination_host="gw",
        policy_counter_status_report=[],
    )
    stripped = Message(
        command_flags=message.command_flags,
        command_code=message.command_code,
        application_id=message.application_id,
        hop_by_hop=1,
        end_to_end=1,
        avps=tuple(a for a in message.avps if a.code != 293),
    )
    error = refused(stripped)
    assert error.status == 5005 and error.failed_avp is not None and error.failed_avp.code == 293


def test_missing_avp_inside_group_is_wrapped() -> None:
    # a Subscription-Id without its Subscription-Id-Data
    broken = avp("Subscription-Id", [avp("Subscription-Id-Type", 0)])
    error = refused(gy_message(broken, drop=(443,)))
    assert error.status == 5005
    assert error.failed_avp is not None and error.failed_avp.code == 443
    assert value_of(error.failed_avp) == (Avp(444, 0x40, None, b""),)


def test_too_many_5009_names_the_first_instance_over_the_limit() -> None:
    second = avp("CC-Request-Number", 4)
    error = refused(gy_message(second))
    assert (error.status, error.failed_avp) == (5009, second)
    extra_rg = avp("Rating-Group", 2)
    mscc = avp("Multiple-Services-Credit-Control", [avp("Rating-Group", 1), extra_rg])
    error = refused(gy_message(mscc))
    assert error.status == 5009 and error.failed_avp is not None
    assert error.failed_avp.code == 456 and value_of(error.failed_avp) == (extra_rg,)


def test_umi_allows_two_used_service_units_not_three() -> None:
    usu = UsedServiceUnit(cc_total_octets=1).to_avp()
    base = build_gx_ccr_update(
        session_id="s", origin_host="h", origin_realm="r", destination_realm="r", cc_request_number=1
    )

    def with_umi(count: int) -> Message:
        umi = avp("Usage-Monitoring-Information", [avp("Monitoring-Key", b"k"), *[usu] * count])
        return Message(
            command_flags=base.command_flags,
            command_code=272,
            application_id=GX_APPLICATION_ID,
            hop_by_hop=1,
            end_to_end=1,
            avps=(*base.avps, umi),
        )

    parsed = parse_request(with_umi(2))
    assert isinstance(parsed, CreditControlRequest)
    assert len(parsed.usage_monitoring_information[0].used_service_unit) == 2
    error = refused(with_umi(3))
    assert error.status == 5009 and error.failed_avp is not None and error.failed_avp.code == 1067


def test_invalid_values_5004() -> None:
    bad_type = avp("CC-Request-Type", 9)
    error = refused(gy_message(replace={416: bad_type}))
    assert (error.status, error.failed_avp) == (5004, bad_type)
    wrong_app = avp("Auth-Application-Id", GX_APPLICATION_ID)
    error = refused(gy_message(replace={258: wrong_app}))
    assert (error.status, error.failed_avp) == (5004, wrong_app)
    bad_utf8 = Avp(263, 0x40, None, b"\xff\xfe")
    error = refused(gy_message(replace={263: bad_utf8}))
    assert (error.status, error.failed_avp) == (5004, bad_utf8)


def test_invalid_lengths_5014() -> None:
    short = Avp(415, 0x40, None, b"\x00\x01\x02")
    error = refused(gy_message(replace={415: short}))
    assert (error.status, error.failed_avp) == (5014, short)
    garbage = Avp(456, 0x40, None, b"\x00\x00\x01")
    error = refused(gy_message(garbage))
    assert (error.status, error.failed_avp) == (5014, garbage)


def test_unknown_mandatory_avp_5001_nested_and_lenient() -> None:
    strange = Avp(99999, 0xC0, 12645, b"\x00")
    error = refused(gy_message(strange))
    assert (error.status, error.failed_avp) == (5001, strange)
    usu = avp("Used-Service-Unit", [avp("CC-Total-Octets", 5), strange])
    mscc = avp("Multiple-Services-Credit-Control", [avp("Rating-Group", 1), usu])
    error = refused(gy_message(mscc))
    assert error.status == 5001 and error.failed_avp is not None
    # Failed-AVP: MSCC { USU { the offending AVP } } (RFC 6733 section 7.5)
    assert error.failed_avp == Avp(456, 0x40, None, encode_avp(Avp(446, 0x40, None, encode_avp(strange))))
    lenient = parse_request(wire(gy_message(mscc)), reject_unknown_mandatory=False)
    assert isinstance(lenient, CreditControlRequest)
    assert lenient.multiple_services_credit_control[0].used_service_unit[0].cc_total_octets == 5


def test_unknown_optional_avp_is_ignored_and_kept() -> None:
    quiet = Avp(99998, 0x00, None, b"abc")
    known_elsewhere = avp("Validity-Time", 30)  # a known AVP the CCR grammar does not name: *[ AVP ]
    message = wire(gy_message(known_elsewhere, quiet))
    assert message.avps[-1] == quiet  # kept on the Message, so it re-encodes byte for byte
    parsed = parse_request(message)
    assert isinstance(parsed, CreditControlRequest) and parsed.cc_request_number == 3


def test_wrong_m_bit_3009() -> None:
    no_m = Avp(263, 0x00, None, b"s;1")
    error = refused(gy_message(replace={263: no_m}))
    assert (error.status, error.failed_avp) == (3009, no_m)
    key_with_m = Avp(1066, 0xC0, 10415, b"k")
    umi = avp("Usage-Monitoring-Information", [key_with_m])
    base = build_gx_ccr_update(
        session_id="s", origin_host="h", origin_realm="r", destination_realm="r", cc_request_number=1
    )
    message = Message(
        command_flags=base.command_flags,
        command_code=272,
        application_id=GX_APPLICATION_ID,
        hop_by_hop=1,
        end_to_end=1,
        avps=(*base.avps, umi),
    )
    error = refused(message)
    assert error.status == 3009 and error.failed_avp is not None and error.failed_avp.code == 1067


@pytest.mark.parametrize(
    ("code", "application", "status"),
    [
        (258, GY_APPLICATION_ID, 3001),
        (272, SY_APPLICATION_ID, 3001),
        (272, 5, 3007),
        (8388636, GX_APPLICATION_ID, 3001),
    ],
)
def test_unhandled_commands(code: int, application: int, status: int) -> None:
    message = Message(
        command_flags=int(CommandFlag.REQUEST),
        command_code=code,
        application_id=application,
        hop_by_hop=1,
        end_to_end=1,
    )
    error = refused(message)
    assert (error.status, error.failed_avp) == (status, None)
    assert isinstance(error, DecodeError)


def test_parse_and_answer_take_requests_only() -> None:
    reply = answer(gy_message(), 2001, origin_host="gw", origin_realm="r")
    with pytest.raises(LocalProtocolError):
        parse_request(reply)
    with pytest.raises(LocalProtocolError):
        answer(reply, 2001, origin_host="gw", origin_realm="r")


# --- answers --------------------------------------------------------------------------------------


def test_gy_cca_echoes_and_answers_services() -> None:
    request_message = Message(
        command_flags=int(CommandFlag.REQUEST | CommandFlag.PROXIABLE),
        command_code=272,
        application_id=4,
        hop_by_hop=7,
        end_to_end=8,
        avps=(*gy_message().avps, avp("Proxy-Info", [avp("Proxy-Host", "dra"), avp("Proxy-State", b"x")])),
    )
    parsed = parse_request(request_message)
    assert isinstance(parsed, CreditControlRequest)
    services = (
        MultipleServicesCreditControl(rating_group=1, requested_service_unit=RequestedServiceUnit()),
        MultipleServicesCreditControl(service_identifier=(9,)),
    )
    ccr = CreditControlRequest(
        session_id="s",
        origin_host="h",
        origin_realm="r",
        destination_realm="r",
        auth_application_id=4,
        cc_request_type=CcRequestType.INITIAL_REQUEST,
        cc_request_number=0,
        multiple_services_credit_control=services,
    )
    granted = GrantedServiceUnit(cc_total_octets=1000)
    answered = answer_services(ccr, 2001, granted)
    assert answered == (
        MultipleServicesCreditControl(rating_group=1, result_code=2001, granted_service_unit=granted),
        MultipleServicesCreditControl(service_identifier=(9,), result_code=2001),
    )
    reply = wire(
        answer(
            request_message,
            2001,
            origin_host="gw",
            origin_realm="r",
            origin_state_id=42,
            multiple_services_credit_control=answered,
        )
    )
    assert (reply.hop_by_hop, reply.end_to_end, reply.is_request, reply.is_proxiable, reply.is_error) == (
        7,
        8,
        False,
        True,
        False,
    )
    assert [value_of(a) for a in reply.avps[:7]] == ["s;1", 2001, "gw", "r", 4, 2, 3]
    assert value_of(find(reply, "Origin-State-Id")) == 42  # type: ignore[arg-type]
    assert len(find_all(reply, "Multiple-Services-Credit-Control")) == 2
    assert find(reply, "Proxy-Info") == request_message.avps[-1]
    assert find(reply, "Failed-AVP") is None and result_code(reply) == 2001


def test_protocol_error_answer_has_e_bit_and_no_cca_avps() -> None:
    error = FailedAvpError("bad bits", 3009, Avp(263, 0, None, b"s"))
    reply = wire(error_answer(gy_message(), error, origin_host="gw", origin_realm="r"))
    assert reply.is_error and not reply.is_request
    assert result_code(reply) == 3009
    assert find(reply, "CC-Request-Type") is None and find(reply, "Auth-Application-Id") is None
    assert value_of(find(reply, "Failed-AVP")) == (Avp(263, 0, None, b"s"),)  # type: ignore[arg-type]
    assert value_of(find(reply, "Error-Message")) == "bad bits"  # type: ignore[arg-type]


def test_permanent_failure_is_a_cca_without_e_bit() -> None:
    short = Avp(415, 0x40, None, b"\x00\x01\x02")
    message = gy_message(replace={415: short})
    error = refused(message)
    reply = wire(error_answer(message, error, origin_host="gw", origin_realm="r"))
    assert not reply.is_error and result_code(reply) == 5014
    assert value_of(find(reply, "CC-Request-Type")) == 2  # type: ignore[arg-type]
    assert find(reply, "CC-Request-Number") is None  # malformed: not echoed
    assert value_of(find(reply, "Failed-AVP")) == (short,)  # type: ignore[arg-type]


def test_error_answer_without_status_or_avp() -> None:
    reply = error_answer(gy_message(), RemoteProtocolError("odd"), origin_host="gw", origin_realm="r")
    assert result_code(reply) == 5012 and find(reply, "Failed-AVP") is None


def test_sna_and_answer_without_session() -> None:
    snr = build_sy_snr(
        session_id="s",
        origin_host="ocs",
        origin_realm="r",
        destination_realm="r",
        destination_host="gw",
        policy_counter_status_report=[],
    )
    sna = wire(answer(snr, 2001, origin_host="gw", origin_realm="r"))
    assert (sna.command_code, sna.application_id, result_code(sna)) == (8388636, SY_APPLICATION_ID, 2001)
    assert [a.code for a in sna.avps] == [263, 268, 264, 296]
    bare = Message(command_flags=0x80, command_code=272, application_id=4, hop_by_hop=1, end_to_end=1)
    reply = answer(bare, 5005, origin_host="gw", origin_realm="r")
    assert [a.code for a in reply.avps] == [268, 264, 296, 258]
    assert (
        result_code(Message(command_flags=0, command_code=272, application_id=4, hop_by_hop=1, end_to_end=1))
        is None
    )


known_codes = st.sampled_from(
    [
        (263, None),
        (264, None),
        (296, None),
        (283, None),
        (258, None),
        (461, None),
        (416, None),
        (415, None),
        (443, None),
        (456, None),
        (446, None),
        (431, None),
        (437, None),
        (432, None),
        (872, 10415),
        (1067, 10415),
        (1066, 10415),
        (1006, 10415),
        (2903, 10415),
        (2901, 10415),
        (2902, 10415),
        (2905, 10415),
        (293, None),
        (55, None),
        (430, None),
        (434, None),
        (99999, None),
    ]
)


@st.composite
def random_avps(draw: st.DrawFn, depth: int = 2) -> Avp:
    code, vendor = draw(known_codes)
    flags = draw(st.sampled_from([0x00, 0x40])) | (0x80 if vendor else 0)
    if depth and draw(st.booleans()):
        data = b"".join(encode_avp(draw(random_avps(depth - 1))) for _ in range(draw(st.integers(0, 3))))
    else:
        data = draw(st.binary(max_size=9))
    return Avp(code, flags, vendor, data)


@settings(max_examples=150, deadline=None)
@given(
    avps=st.lists(random_avps(), max_size=12),
    application=st.sampled_from([GY_APPLICATION_ID, GX_APPLICATION_ID, SY_APPLICATION_ID]),
    lenient=st.booleans(),
    valid_base=st.booleans(),
)
def test_any_avps_parse_or_raise_remote_protocol_error(
    avps: list[Avp], application: int, lenient: bool, valid_base: bool
) -> None:
    code = 8388636 if application == SY_APPLICATION_ID else 272
    base = gy_message().avps if valid_base and application == GY_APPLICATION_ID else ()
    message = Message(
        command_flags=0xC0,
        command_code=code,
        application_id=application,
        hop_by_hop=1,
        end_to_end=1,
        avps=(*base, *avps),
    )
    try:
        parse_request(message, reject_unknown_mandatory=not lenient)
    except RemoteProtocolError as exc:
        assert exc.status in {3009, 5001, 5004, 5005, 5009, 5014}
        reply = error_answer(message, exc, origin_host="gw", origin_realm="r")
        assert decode(encode(reply)) == reply

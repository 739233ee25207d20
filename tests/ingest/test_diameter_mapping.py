"""How Gy, Gx and Sy reports become UsageEvents (gateway.ingest.diameter.usage_events), and the
allow-list patterns of DiameterSettings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest import diameter as gateway_diameter
from gateway.ingest.diameter import DiameterSettings, usage_events
from protocols.diameter import codec
from protocols.diameter.credit_control import (
    CcRequestType,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    PolicyCounterStatusReport,
    ReportingReason,
    UsageMonitoringInformation,
    UsedServiceUnit,
    build_gx_ccr_update,
    build_gy_ccr,
    build_sy_snr,
    parse_request,
)

RECEIVED = 1_700_000_000.0
STAMP = datetime(2024, 5, 1, 12, tzinfo=UTC)


def settings(**changes: object) -> DiameterSettings:
    return DiameterSettings(origin_host="gw", origin_realm="r", origin_state_id=1, **changes)  # type: ignore[arg-type]


def gy(
    *services: MultipleServicesCreditControl,
    request_type: CcRequestType = CcRequestType.UPDATE_REQUEST,
    msisdn: str | None = "254700000001",
    stamp: datetime | None = STAMP,
    config: DiameterSettings | None = None,
) -> list[UsageEvent]:
    message = build_gy_ccr(
        session_id="pgw;1",
        origin_host="pgw",
        origin_realm="r",
        destination_realm="r",
        cc_request_type=request_type,
        cc_request_number=5,
        msisdn=msisdn,
        multiple_services_credit_control=services,
        event_timestamp=stamp,
    )
    return usage_events(parse_request(message), message, RECEIVED, config or settings())


def used(
    octets: int | None, reason: ReportingReason | None = None, rg: int | None = 100
) -> MultipleServicesCreditControl:
    return MultipleServicesCreditControl(
        rating_group=rg, used_service_unit=(UsedServiceUnit(cc_total_octets=octets, reporting_reason=reason),)
    )


def test_gy_threshold_percent_from_configured_quota_or_default() -> None:
    config = settings(gy_quota_bytes={100: 1000}, gy_threshold_percent=80.0)
    [event] = gy(used(900, ReportingReason.THRESHOLD), config=config)
    assert (event.kind, event.percent, event.quota_bytes, event.used_bytes) == (
        UsageKind.THRESHOLD,
        90.0,
        1000,
        900,
    )
    [event] = gy(used(5000, ReportingReason.THRESHOLD), config=config)
    assert event.percent == 100.0  # capped: the USU may count past the package
    [event] = gy(used(None, ReportingReason.THRESHOLD), config=config)
    assert (event.percent, event.used_bytes) == (80.0, None)  # no octets: the configured share
    [event] = gy(used(900, ReportingReason.THRESHOLD, rg=7), config=config)
    assert (event.percent, event.quota_bytes) == (80.0, None)  # quota unknown for this rating group


def test_gy_kinds() -> None:
    assert [e.kind for e in gy(used(1, ReportingReason.QUOTA_EXHAUSTED))] == [UsageKind.EXHAUSTED]
    assert [e.kind for e in gy(used(1, ReportingReason.FINAL))] == [UsageKind.EXHAUSTED]
    assert [e.kind for e in gy(used(1, ReportingReason.FINAL), request_type=CcRequestType.EVENT_REQUEST)] == [
        UsageKind.EXHAUSTED
    ]
    # FINAL is also every session end: a CCR-T is no exhaustion
    assert [
        e.kind for e in gy(used(1, ReportingReason.FINAL), request_type=CcRequestType.TERMINATION_REQUEST)
    ] == [UsageKind.USAGE]
    assert [e.kind for e in gy(used(1, ReportingReason.VALIDITY_TIME))] == [UsageKind.USAGE]
    assert [e.kind for e in gy(used(1))] == [UsageKind.USAGE]
    mscc_level = MultipleServicesCreditControl(
        rating_group=1, reporting_reason=(ReportingReason.QUOTA_EXHAUSTED,)
    )
    [event] = gy(mscc_level)
    assert (event.kind, event.used_bytes) == (UsageKind.EXHAUSTED, None)


def test_gy_packages_ids_and_times() -> None:
    events = gy(
        used(1),
        MultipleServicesCreditControl(rating_group=2),  # nothing reported: no event
        MultipleServicesCreditControl(
            service_identifier=(9, 10), used_service_unit=(UsedServiceUnit(cc_input_octets=3),)
        ),
        MultipleServicesCreditControl(used_service_unit=(UsedServiceUnit(cc_total_octets=4),)),  # no package
    )
    assert [(e.event_id, e.package_id, e.used_bytes, e.sequence) for e in events] == [
        ("pgw;1;5;0", "rg:100", 1, 5),
        ("pgw;1;5;2", "si:9", 3, 5),
    ]
    assert {(e.event_time, e.msisdn, e.source) for e in events} == {
        (STAMP.timestamp(), "254700000001", "diameter:gy")
    }
    [event] = gy(used(1), stamp=None)
    assert event.event_time == RECEIVED
    assert gy(used(1, ReportingReason.QUOTA_EXHAUSTED), msisdn=None) == []


def gx(*infos: UsageMonitoringInformation) -> list[UsageEvent]:
    message = build_gx_ccr_update(
        session_id="pgw;gx",
        origin_host="pgw",
        origin_realm="r",
        destination_realm="r",
        cc_request_number=8,
        msisdn="254700000002",
        usage_monitoring_information=infos,
    )
    return usage_events(parse_request(message), message, RECEIVED, settings())


def test_gx_usage_reports() -> None:
    events = gx(
        UsageMonitoringInformation(
            monitoring_key=b"pkg-5GB",
            granted_service_unit=(GrantedServiceUnit(cc_total_octets=1000),),
            used_service_unit=(UsedServiceUnit(cc_input_octets=400, cc_output_octets=500),),
        ),
        UsageMonitoringInformation(monitoring_key=b"armed-only"),  # no usage in it: no event
        UsageMonitoringInformation(
            monitoring_key=b"\x00\xff", used_service_unit=(UsedServiceUnit(cc_total_octets=7),)
        ),
        UsageMonitoringInformation(
            monitoring_key=b"",
            granted_service_unit=(GrantedServiceUnit(cc_time=60),),
            used_service_unit=(UsedServiceUnit(cc_time=30),),
        ),
        UsageMonitoringInformation(used_service_unit=(UsedServiceUnit(cc_total_octets=1),)),
    )
    assert [(e.event_id, e.package_id, e.used_bytes, e.percent) for e in events] == [
        ("pgw;gx;8;0", "mk:pkg-5GB", 900, 90.0),
        ("pgw;gx;8;2", "mk:00ff", 7, None),
        ("pgw;gx;8;3", "mk:", None, None),
        ("pgw;gx;8;4", "mk:", 1, None),
    ]
    assert {(e.kind, e.source, e.sequence, e.event_time) for e in events} == {
        (UsageKind.USAGE, "diameter:gx", 8, RECEIVED)
    }
    [event] = gx(
        UsageMonitoringInformation(
            monitoring_key=b"tab\tkey", used_service_unit=(UsedServiceUnit(cc_total_octets=1),)
        )
    )
    assert event.package_id == "mk:" + b"tab\tkey".hex()  # not printable: hex


def test_sy_status_map() -> None:
    message = build_sy_snr(
        session_id="ocs;sy",
        origin_host="ocs",
        origin_realm="r",
        destination_realm="r",
        destination_host="gw",
        msisdn="254700000003",
        policy_counter_status_report=[
            PolicyCounterStatusReport(policy_counter_identifier="A", policy_counter_status="threshold-90"),
            PolicyCounterStatusReport(policy_counter_identifier="B", policy_counter_status="unknown-status"),
            PolicyCounterStatusReport(policy_counter_identifier="C", policy_counter_status="payg"),
            PolicyCounterStatusReport(policy_counter_identifier="D", policy_counter_status="valid"),
        ],
    )
    message = type(message)(
        command_flags=message.command_flags,
        command_code=message.command_code,
        application_id=message.application_id,
        hop_by_hop=1,
        end_to_end=0xABC,
        avps=message.avps,
    )
    events = usage_events(parse_request(message), message, RECEIVED, settings())
    assert [(e.event_id, e.package_id, e.kind, e.percent) for e in events] == [
        ("ocs;sy;e2e=00000abc;0", "pc:A", UsageKind.THRESHOLD, 90.0),
        ("ocs;sy;e2e=00000abc;2", "pc:C", UsageKind.PAYG_STARTED, None),
        ("ocs;sy;e2e=00000abc;3", "pc:D", UsageKind.RENEWED, None),
    ]
    custom = settings(sy_status_map={"unknown-status": (UsageKind.EXHAUSTED, None)})
    [event] = usage_events(parse_request(message), message, RECEIVED, custom)
    assert (event.package_id, event.kind, event.event_time, event.msisdn) == (
        "pc:B",
        UsageKind.EXHAUSTED,
        RECEIVED,
        "254700000003",
    )


def test_snr_without_subscriber_yields_nothing() -> None:
    message = build_sy_snr(
        session_id="ocs;sy",
        origin_host="ocs",
        origin_realm="r",
        destination_realm="r",
        destination_host="gw",
        policy_counter_status_report=[
            PolicyCounterStatusReport(policy_counter_identifier="A", policy_counter_status="exhausted")
        ],
    )
    assert usage_events(parse_request(message), message, RECEIVED, settings()) == []


@pytest.mark.parametrize(
    ("allowed", "host", "realm", "admitted"),
    [
        ((), "pcef.localdomain", "localdomain", False),
        ((("*", "*"),), "anything", "anywhere", True),
        ((("dra?.operator.net", "operator.net"),), "dra1.operator.net", "operator.net", True),
        ((("dra?.operator.net", "operator.net"),), "dra10.operator.net", "operator.net", False),
        ((("dra?.operator.net", "operator.net"),), "dra1.operator.net", "other.net", False),
        ((("a", "*"), ("pcef.*", "*")), "pcef.x", "y", True),
        ((("PCEF.*", "*"),), "pcef.Localdomain", "r", True),  # FQDNs compare without case
    ],
)
def test_allow_list(allowed: tuple[tuple[str, str], ...], host: str, realm: str, admitted: bool) -> None:
    assert settings(allowed_peers=allowed).admits(host, realm) is admitted


# --- the events are made through the Diameter C accelerator's Maker (codec.record_maker) -------------------

REASONS = st.none() | st.sampled_from([*ReportingReason, ReportingReason(77)])
OCTETS = st.none() | st.integers(0, 2**40)
USUS = st.builds(
    UsedServiceUnit,
    cc_total_octets=OCTETS,
    cc_input_octets=OCTETS,
    cc_output_octets=OCTETS,
    reporting_reason=REASONS,
)
SERVICES = st.builds(
    MultipleServicesCreditControl,
    rating_group=st.none() | st.integers(0, 300),
    service_identifier=st.lists(st.integers(0, 9), max_size=2).map(tuple),
    used_service_unit=st.lists(USUS, max_size=2).map(tuple),
    reporting_reason=st.lists(REASONS.filter(lambda r: r is not None), max_size=2).map(tuple),
)
UMIS = st.builds(
    UsageMonitoringInformation,
    monitoring_key=st.none() | st.binary(max_size=6),
    granted_service_unit=st.lists(st.builds(GrantedServiceUnit, cc_total_octets=OCTETS), max_size=1).map(
        tuple
    ),
    used_service_unit=st.lists(USUS, max_size=2).map(tuple),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Any, Any]:
    msisdn = draw(st.none() | st.just("254700000001"))
    kind = draw(st.sampled_from(["gy", "gx", "sy"]))
    common = {"session_id": "s;1", "origin_host": "pgw", "origin_realm": "r", "destination_realm": "r"}
    if kind == "gy":
        message = build_gy_ccr(
            **common,
            cc_request_type=draw(st.sampled_from(CcRequestType)),
            cc_request_number=draw(st.integers(0, 9)),
            msisdn=msisdn,
            multiple_services_credit_control=draw(st.lists(SERVICES, max_size=3)),
            event_timestamp=draw(st.none() | st.just(STAMP)),
        )
    elif kind == "gx":
        message = build_gx_ccr_update(
            **common,
            cc_request_number=3,
            msisdn=msisdn,
            usage_monitoring_information=draw(st.lists(UMIS, max_size=3)),
        )
    else:
        statuses = st.sampled_from(["threshold-90", "exhausted", "payg", "valid", "other"])
        message = build_sy_snr(
            **common,
            destination_host="gw",
            msisdn=msisdn,
            policy_counter_status_report=[
                PolicyCounterStatusReport(policy_counter_identifier="A", policy_counter_status=draw(statuses))
                for _ in range(draw(st.integers(0, 3)))
            ],
        )
    return parse_request(message), message


def shape(events: list[UsageEvent]) -> list[tuple[Any, ...]]:
    """Each event's type and every field with its type (an IntEnum and its int are equal, not alike)."""
    return [
        (type(e), tuple((type(getattr(e, f.name)), getattr(e, f.name)) for f in dataclasses.fields(e)))
        for e in events
    ]


@hypothesis_settings(max_examples=300, deadline=None)
@given(request=requests(), quotas=st.dictionaries(st.integers(0, 300), st.integers(0, 2**40), max_size=3))
def test_events_are_made_alike_with_and_without_the_maker(
    request: tuple[Any, Any], quotas: dict[int, int]
) -> None:
    parsed, message = request
    config = settings(gy_quota_bytes=quotas)
    fast = usage_events(parsed, message, RECEIVED, config)
    maker = gateway_diameter._new_event
    gateway_diameter._new_event = UsageEvent  # the class itself: the reference
    try:
        slow = usage_events(parsed, message, RECEIVED, config)
    finally:
        gateway_diameter._new_event = maker
    assert shape(fast) == shape(slow)


@pytest.mark.skipif(
    codec._SPEEDUPS is None, reason="the Diameter C accelerator is not built or TGW_PURE_PYTHON"
)
def test_events_are_made_through_the_maker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(gateway_diameter._new_event).__name__ == "Maker"
    assert gateway_diameter._new_event.cls is UsageEvent  # type: ignore[attr-defined]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("UsageEvent.__init__ ran")

    expected = gy(used(900, ReportingReason.THRESHOLD))
    monkeypatch.setattr(UsageEvent, "__init__", refuse)
    assert gy(used(900, ReportingReason.THRESHOLD)) == expected

"""Diameter applications that carry usage: typed requests, validation and answers, sans-I/O.

- Gy/Ro credit control (application 4, command 272): RFC 4006 section 3.1 (CCR), 3.2 (CCA),
  8.16 (Multiple-Services-Credit-Control), 8.17-8.19 (Granted/Requested/Used-Service-Unit), 8.34
  (Final-Unit-Indication), 8.46 (Subscription-Id); 3GPP TS 32.299 section 7.2 adds
  Reporting-Reason (7.2.175, vendor 10415) in MSCC and USU.
- Gx (application 16777238, vendor 10415, command 272): 3GPP TS 29.212 section 5.6.2 (CCR),
  5.6.3 (CCA), 5.3.7 (Event-Trigger: USAGE_REPORT is **33**; 26 is TAI_CHANGE, Wireshark's and
  python-diameter's dictionaries agree), 5.3.60 (Usage-Monitoring-Information: 0..2 GSU, 0..2 USU).
- Sy (application 16777302, command 8388636): 3GPP TS 29.219 section 5.6.4 (SNR, where
  Destination-Host is required), 5.6.5 (SNA), 5.3.3 (Policy-Counter-Status-Report), 5.3.5
  (Pending-Policy-Counter-Information), 5.3.7 (SN-Request-Type).

``parse_request(message)`` checks a request against its command's grammar and raises
``FailedAvpError`` (a ``DecodeError``) whose ``status`` is the Result-Code to answer with and whose
``failed_avp`` goes into the answer's Failed-AVP (RFC 6733 section 7.5): 5005 MISSING_AVP (the
Failed-AVP is an example of the missing AVP, zero-filled to its minimum length), 5009
AVP_OCCURS_TOO_MANY_TIMES (the first instance over the limit), 5004 INVALID_AVP_VALUE, 5014
INVALID_AVP_LENGTH, 5001 AVP_UNSUPPORTED (an unknown AVP with the M bit; RFC 6733 section 4.1),
3009 INVALID_AVP_BITS (an M bit that contradicts the dictionary), 3001/3007 for a command or
application this module does not handle. An error inside a Grouped AVP names the offending AVP
wrapped in its enclosing AVPs (RFC 6733 section 7.5). Unknown AVPs without the M bit are ignored
(the ``Message`` keeps them, so it still re-encodes byte for byte). Deliberately lenient: the
position of Session-Id and the P bit are not checked, and unknown enumerated values other than
CC-Request-Type's are kept (``WideKeepUnknownIntEnum``).

``answer(request, result_code, ...)`` builds the CCA (Gy and Gx), the SNA, or, for a protocol
error (3xxx), the E-bit answer-message of RFC 6733 section 7.2; 5xxx answers are ordinary answers
without the E bit (RFC 6733 section 7.1.5) that carry Failed-AVP. ``build_gy_ccr``,
``build_gx_ccr_update`` and ``build_sy_snr`` build requests (the network simulator and the tests
use them); ``to_message`` turns any typed request back into a ``Message``.

The grammar checks, the common case of the typed value readers, the making of the typed values
(``codec.record_maker``) and the answers' scan of the request run in C when the optional extension
``protocols.diameter._speedups`` is built (see ``codec``; ``TGW_PURE_PYTHON=1`` forces the Python
code): it only takes requests that pass, and leaves every error to the Python code here. Answers
reuse the AVPs they share (our identity, each rating group's answer MSCC) with their octets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from typing import ClassVar, Protocol, TypeVar, cast

from protocols.diameter import codec
from protocols.diameter.codec import Avp, CommandFlag, Message, RawAvp, ResultCode, record_maker
from protocols.diameter.dictionary import AvpType, FlagRule, all_avps, avp, check_flags, lookup
from protocols.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from protocols.registry import WideKeepUnknownIntEnum

__all__ = [
    "CREDIT_CONTROL",
    "GX_APPLICATION_ID",
    "GY_APPLICATION_ID",
    "SERVICE_CONTEXT_PS",
    "SPENDING_STATUS_NOTIFICATION",
    "SY_APPLICATION_ID",
    "CcRequestType",
    "CreditControlRequest",
    "EventTrigger",
    "FailedAvpError",
    "FinalUnitAction",
    "FinalUnitIndication",
    "GrantedServiceUnit",
    "MultipleServicesCreditControl",
    "PendingPolicyCounterInformation",
    "PolicyCounterStatusReport",
    "RedirectAddressType",
    "RedirectServer",
    "ReportingReason",
    "Request",
    "RequestedServiceUnit",
    "ServiceUnit",
    "SpendingStatusNotificationRequest",
    "SubscriptionId",
    "SubscriptionIdType",
    "UsageMonitoringInformation",
    "UsageMonitoringLevel",
    "UsageMonitoringReport",
    "UsageMonitoringSupport",
    "UsedServiceUnit",
    "answer",
    "answer_services",
    "build_gx_ccr_update",
    "build_gy_ccr",
    "build_sy_snr",
    "encode_answer",
    "error_answer",
    "parse_request",
    "result_code",
    "to_message",
]

GY_APPLICATION_ID = 4
"""Diameter Credit-Control Application (RFC 4006 section 1.3), used by Gy/Ro."""
GX_APPLICATION_ID = 16777238
"""3GPP Gx (TS 29.212 section 5.1), advertised as Vendor-Specific-Application-Id {10415, ...}."""
SY_APPLICATION_ID = 16777302
"""3GPP Sy (TS 29.219 section 5.1)."""
CREDIT_CONTROL = 272
SPENDING_STATUS_NOTIFICATION = 8388636
SERVICE_CONTEXT_PS = "32251@3gpp.org"
"""Service-Context-Id of PS (data) charging, TS 32.251."""

_REQUEST_FLAGS = int(CommandFlag.REQUEST | CommandFlag.PROXIABLE)
_PROXIABLE = int(CommandFlag.PROXIABLE)
_ERROR = int(CommandFlag.ERROR)
_M_BIT = 0x40  # AvpFlag.MANDATORY as a plain int (IntFlag arithmetic is slow per AVP)


# --- registries ---------------------------------------------------------------------------------


class CcRequestType(IntEnum):
    """CC-Request-Type (RFC 4006 section 8.3): a closed set, anything else is answered 5004."""

    INITIAL_REQUEST = 1
    UPDATE_REQUEST = 2
    TERMINATION_REQUEST = 3
    EVENT_REQUEST = 4


class ReportingReason(WideKeepUnknownIntEnum):
    """Reporting-Reason (3GPP TS 32.299 section 7.2.175)."""

    THRESHOLD = 0
    QHT = 1
    FINAL = 2
    QUOTA_EXHAUSTED = 3
    VALIDITY_TIME = 4
    OTHER_QUOTA_TYPE = 5
    RATING_CONDITION_CHANGE = 6
    FORCED_REAUTHORISATION = 7
    POOL_EXHAUSTED = 8


class FinalUnitAction(WideKeepUnknownIntEnum):
    """Final-Unit-Action (RFC 4006 section 8.35)."""

    TERMINATE = 0
    REDIRECT = 1
    RESTRICT_ACCESS = 2


class RedirectAddressType(WideKeepUnknownIntEnum):
    """Redirect-Address-Type (RFC 4006 section 8.38)."""

    IPV4_ADDRESS = 0
    IPV6_ADDRESS = 1
    URL = 2
    SIP_URI = 3


class SubscriptionIdType(WideKeepUnknownIntEnum):
    """Subscription-Id-Type (RFC 4006 section 8.47)."""

    END_USER_E164 = 0
    END_USER_IMSI = 1
    END_USER_SIP_URI = 2
    END_USER_NAI = 3
    END_USER_PRIVATE = 4


class EventTrigger(WideKeepUnknownIntEnum):
    """Event-Trigger (3GPP TS 29.212 section 5.3.7); the values usage ingestion cares about."""

    OUT_OF_CREDIT = 15
    REALLOCATION_OF_CREDIT = 16
    REVALIDATION_TIMEOUT = 17
    TAI_CHANGE = 26
    USAGE_REPORT = 33


class UsageMonitoringLevel(WideKeepUnknownIntEnum):
    """Usage-Monitoring-Level (3GPP TS 29.212 section 5.3.61)."""

    SESSION_LEVEL = 0
    PCC_RULE_LEVEL = 1
    ADC_RULE_LEVEL = 2


class UsageMonitoringReport(WideKeepUnknownIntEnum):
    """Usage-Monitoring-Report (3GPP TS 29.212 section 5.3.62)."""

    USAGE_MONITORING_REPORT_REQUIRED = 0


class UsageMonitoringSupport(WideKeepUnknownIntEnum):
    """Usage-Monitoring-Support (3GPP TS 29.212 section 5.3.63)."""

    USAGE_MONITORING_DISABLED = 0


# --- the error -------------------------------------------------------------------------------------


class FailedAvpError(DecodeError):
    """A request broke its command's rules: ``status`` is the Result-Code to answer with and
    ``failed_avp`` the AVP for the answer's Failed-AVP (RFC 6733 section 7.5), None when no AVP is
    to blame (an unsupported command)."""

    def __init__(self, message: str, status: int, failed_avp: Avp | None = None) -> None:
        super().__init__(message, status)
        self.failed_avp = failed_avp


# --- typed AVPs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceUnit:
    """The unit counters shared by Granted-, Requested- and Used-Service-Unit (RFC 4006 8.17-8.19).

    CC-Money and Tariff-Change-Usage / Tariff-Time-Change are validated but not kept.
    """

    AVP_NAME: ClassVar[str] = ""

    cc_time: int | None = None
    cc_total_octets: int | None = None
    cc_input_octets: int | None = None
    cc_output_octets: int | None = None
    cc_service_specific_units: int | None = None

    def _member_avps(self) -> list[Avp]:
        return _optional(
            ("CC-Time", self.cc_time),
            ("CC-Total-Octets", self.cc_total_octets),
            ("CC-Input-Octets", self.cc_input_octets),
            ("CC-Output-Octets", self.cc_output_octets),
            ("CC-Service-Specific-Units", self.cc_service_specific_units),
        )

    def to_avp(self) -> Avp:
        return avp(self.AVP_NAME, self._member_avps())

    @property
    def octets(self) -> int | None:
        """CC-Total-Octets, else input + output when either is there."""
        if self.cc_total_octets is not None:
            return self.cc_total_octets
        if self.cc_input_octets is None and self.cc_output_octets is None:
            return None
        return (self.cc_input_octets or 0) + (self.cc_output_octets or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantedServiceUnit(ServiceUnit):
    """Granted-Service-Unit (RFC 4006 section 8.17); in Gx UMI it is the monitoring threshold."""

    AVP_NAME: ClassVar[str] = "Granted-Service-Unit"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedServiceUnit(ServiceUnit):
    """Requested-Service-Unit (RFC 4006 section 8.18)."""

    AVP_NAME: ClassVar[str] = "Requested-Service-Unit"


@dataclass(frozen=True, slots=True, kw_only=True)
class UsedServiceUnit(ServiceUnit):
    """Used-Service-Unit (RFC 4006 section 8.19) with TS 32.299's Reporting-Reason."""

    AVP_NAME: ClassVar[str] = "Used-Service-Unit"

    reporting_reason: ReportingReason | None = None

    def to_avp(self) -> Avp:
        members = self._member_avps()
        if self.reporting_reason is not None:
            members.append(avp("Reporting-Reason", self.reporting_reason))
        return avp(self.AVP_NAME, members)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectServer:
    """Redirect-Server (RFC 4006 section 8.37): where a REDIRECT final unit sends the user."""

    redirect_address_type: RedirectAddressType
    redirect_server_address: str

    def to_avp(self) -> Avp:
        return avp(
            "Redirect-Server",
            [
                avp("Redirect-Address-Type", self.redirect_address_type),
                avp("Redirect-Server-Address", self.redirect_server_address),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalUnitIndication:
    """Final-Unit-Indication (RFC 4006 section 8.34)."""

    final_unit_action: FinalUnitAction
    restriction_filter_rule: tuple[bytes, ...] = ()
    filter_id: tuple[str, ...] = ()
    redirect_server: RedirectServer | None = None

    def to_avp(self) -> Avp:
        members = [avp("Final-Unit-Action", self.final_unit_action)]
        members += [avp("Restriction-Filter-Rule", rule) for rule in self.restriction_filter_rule]
        members += [avp("Filter-Id", name) for name in self.filter_id]
        if self.redirect_server is not None:
            members.append(self.redirect_server.to_avp())
        return avp("Final-Unit-Indication", members)


@dataclass(frozen=True, slots=True, kw_only=True)
class MultipleServicesCreditControl:
    """Multiple-Services-Credit-Control (RFC 4006 section 8.16, TS 32.299 additions)."""

    rating_group: int | None = None
    service_identifier: tuple[int, ...] = ()
    granted_service_unit: GrantedServiceUnit | None = None
    requested_service_unit: RequestedServiceUnit | None = None
    used_service_unit: tuple[UsedServiceUnit, ...] = ()
    validity_time: int | None = None
    result_code: int | None = None
    final_unit_indication: FinalUnitIndication | None = None
    time_quota_threshold: int | None = None
    volume_quota_threshold: int | None = None
    reporting_reason: tuple[ReportingReason, ...] = ()

    @property
    def reporting_reasons(self) -> tuple[ReportingReason, ...]:
        """The reasons at MSCC level, then those inside each Used-Service-Unit."""
        reasons = self.reporting_reason
        for unit in self.used_service_unit:  # usually one: a loop costs less than a generator here
            reason = unit.reporting_reason
            if reason is not None:
                reasons += (reason,)
        return reasons

    def to_avp(self) -> Avp:
        members: list[Avp] = []
        if self.granted_service_unit is not None:
            members.append(self.granted_service_unit.to_avp())
        if self.requested_service_unit is not None:
            members.append(self.requested_service_unit.to_avp())
        members += [unit.to_avp() for unit in self.used_service_unit]
        members += [avp("Service-Identifier", number) for number in self.service_identifier]
        members += _optional(
            ("Rating-Group", self.rating_group),
            ("Validity-Time", self.validity_time),
            ("Result-Code", self.result_code),
        )
        if self.final_unit_indication is not None:
            members.append(self.final_unit_indication.to_avp())
        members += _optional(
            ("Time-Quota-Threshold", self.time_quota_threshold),
            ("Volume-Quota-Threshold", self.volume_quota_threshold),
        )
        members += [avp("Reporting-Reason", reason) for reason in self.reporting_reason]
        return avp("Multiple-Services-Credit-Control", members)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionId:
    """Subscription-Id (RFC 4006 section 8.46): the subscriber key (E.164 MSISDN, IMSI, ...)."""

    subscription_id_type: SubscriptionIdType
    subscription_id_data: str

    def to_avp(self) -> Avp:
        return avp(
            "Subscription-Id",
            [
                avp("Subscription-Id-Type", self.subscription_id_type),
                avp("Subscription-Id-Data", self.subscription_id_data),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageMonitoringInformation:
    """Usage-Monitoring-Information (3GPP TS 29.212 section 5.3.60).

    In a CCR-U the USU is what was used since the last report; the GSU, when the PCEF echoes it,
    is the threshold the PCRF armed.
    """

    monitoring_key: bytes | None = None
    granted_service_unit: tuple[GrantedServiceUnit, ...] = ()
    used_service_unit: tuple[UsedServiceUnit, ...] = ()
    usage_monitoring_level: UsageMonitoringLevel | None = None
    usage_monitoring_report: UsageMonitoringReport | None = None
    usage_monitoring_support: UsageMonitoringSupport | None = None

    def to_avp(self) -> Avp:
        members = _optional(("Monitoring-Key", self.monitoring_key))
        members += [unit.to_avp() for unit in self.granted_service_unit]
        members += [unit.to_avp() for unit in self.used_service_unit]
        members += _optional(
            ("Usage-Monitoring-Level", self.usage_monitoring_level),
            ("Usage-Monitoring-Report", self.usage_monitoring_report),
            ("Usage-Monitoring-Support", self.usage_monitoring_support),
        )
        return avp("Usage-Monitoring-Information", members)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingPolicyCounterInformation:
    """Pending-Policy-Counter-Information (3GPP TS 29.219 section 5.3.5): a status from a time on."""

    policy_counter_status: str
    pending_policy_counter_change_time: datetime

    def to_avp(self) -> Avp:
        return avp(
            "Pending-Policy-Counter-Information",
            [
                avp("Policy-Counter-Status", self.policy_counter_status),
                avp("Pending-Policy-Counter-Change-Time", self.pending_policy_counter_change_time),
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyCounterStatusReport:
    """Policy-Counter-Status-Report (3GPP TS 29.219 section 5.3.3); statuses are operator-defined."""

    policy_counter_identifier: str
    policy_counter_status: str
    pending_policy_counter_information: tuple[PendingPolicyCounterInformation, ...] = ()

    def to_avp(self) -> Avp:
        members = [
            avp("Policy-Counter-Identifier", self.policy_counter_identifier),
            avp("Policy-Counter-Status", self.policy_counter_status),
        ]
        members += [pending.to_avp() for pending in self.pending_policy_counter_information]
        return avp("Policy-Counter-Status-Report", members)


# --- typed requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditControlRequest:
    """A CCR of Gy/Ro (RFC 4006 section 3.1) or Gx (TS 29.212 section 5.6.2).

    ``auth_application_id`` (equal to the header's Application-Id) says which: 4 or 16777238.
    """

    session_id: str
    origin_host: str
    origin_realm: str
    destination_realm: str
    auth_application_id: int
    cc_request_type: CcRequestType
    cc_request_number: int
    service_context_id: str | None = None
    destination_host: str | None = None
    origin_state_id: int | None = None
    event_timestamp: datetime | None = None
    subscription_id: tuple[SubscriptionId, ...] = ()
    multiple_services_credit_control: tuple[MultipleServicesCreditControl, ...] = ()
    event_trigger: tuple[EventTrigger, ...] = ()
    usage_monitoring_information: tuple[UsageMonitoringInformation, ...] = ()

    @property
    def is_gx(self) -> bool:
        return self.auth_application_id == GX_APPLICATION_ID

    @property
    def msisdn(self) -> str | None:
        """The first END_USER_E164 Subscription-Id-Data."""
        return _subscription(self.subscription_id, _E164)

    @property
    def imsi(self) -> str | None:
        return _subscription(self.subscription_id, SubscriptionIdType.END_USER_IMSI)

    def to_avps(self) -> list[Avp]:
        avps = [
            avp("Session-Id", self.session_id),
            avp("Origin-Host", self.origin_host),
            avp("Origin-Realm", self.origin_realm),
            avp("Destination-Realm", self.destination_realm),
            avp("Auth-Application-Id", self.auth_application_id),
            *_optional(("Service-Context-Id", self.service_context_id)),
            avp("CC-Request-Type", self.cc_request_type),
            avp("CC-Request-Number", self.cc_request_number),
            *_optional(
                ("Destination-Host", self.destination_host),
                ("Origin-State-Id", self.origin_state_id),
                ("Event-Timestamp", self.event_timestamp),
            ),
        ]
        avps += [item.to_avp() for item in self.subscription_id]
        avps += [item.to_avp() for item in self.multiple_services_credit_control]
        avps += [avp("Event-Trigger", trigger) for trigger in self.event_trigger]
        avps += [item.to_avp() for item in self.usage_monitoring_information]
        return avps


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendingStatusNotificationRequest:
    """An Sy SNR (3GPP TS 29.219 section 5.6.4), sent by the OCS when a policy counter changes.

    The standard SNR names the subscriber only through its Sy session (set up by the PCRF's SLR,
    which a passive gateway never sees), so ``subscription_id`` reads Subscription-Id AVPs that an
    OCS or DRA adds as extension AVPs (the grammar's ``*[ AVP ]``).
    """

    session_id: str
    origin_host: str
    origin_realm: str
    destination_realm: str
    destination_host: str
    auth_application_id: int = SY_APPLICATION_ID
    origin_state_id: int | None = None
    policy_counter_status_report: tuple[PolicyCounterStatusReport, ...] = ()
    sn_request_type: int | None = None
    subscription_id: tuple[SubscriptionId, ...] = ()

    @property
    def msisdn(self) -> str | None:
        return _subscription(self.subscription_id, _E164)

    def to_avps(self) -> list[Avp]:
        avps = [
            avp("Session-Id", self.session_id),
            avp("Origin-Host", self.origin_host),
            avp("Origin-Realm", self.origin_realm),
            avp("Destination-Realm", self.destination_realm),
            avp("Destination-Host", self.destination_host),
            avp("Auth-Application-Id", self.auth_application_id),
            *_optional(("Origin-State-Id", self.origin_state_id)),
        ]
        avps += [report.to_avp() for report in self.policy_counter_status_report]
        avps += _optional(("SN-Request-Type", self.sn_request_type))
        avps += [item.to_avp() for item in self.subscription_id]
        return avps


Request = CreditControlRequest | SpendingStatusNotificationRequest


_E164 = SubscriptionIdType.END_USER_E164  # read once: an enum class's attribute costs some 0.1 us


def _subscription(ids: Iterable[SubscriptionId], kind: SubscriptionIdType) -> str | None:
    for item in ids:
        if item.subscription_id_type == kind:
            return item.subscription_id_data
    return None


def _e164(msisdn: str | None) -> tuple[SubscriptionId, ...]:
    if msisdn is None:
        return ()
    return (
        SubscriptionId(subscription_id_type=SubscriptionIdType.END_USER_E164, subscription_id_data=msisdn),
    )


def _optional(*pairs: tuple[str, object]) -> list[Avp]:
    return [avp(name, value) for name, value in pairs if value is not None]


# --- grammars ----------------------------------------------------------------------------------------

_MANY = None


@dataclass(frozen=True, slots=True)
class _Grammar:
    """The AVPs a command or Grouped AVP names, each with its (min, max) occurrences.

    ``by_key`` maps the AVP's key (its code for IETF AVPs, (code, vendor) otherwise: no tuple is
    built per IETF AVP) to its name, the M bit the dictionary demands (0x40 set, 0 clear, None
    either) and its maximum count, so the common case needs no dictionary lookup per AVP.
    ``required`` names the AVPs that must occur (once at least: no grammar here asks for more),
    in grammar order, and ``required_names`` is the same as a set, for one comparison per list.
    """

    rules: Mapping[str, tuple[int, int | None]]
    by_key: Mapping[int | tuple[int, int], tuple[str, int | None, int | None]]
    required: tuple[str, ...]
    required_names: frozenset[str]


_M_RULE = {FlagRule.MUST: _M_BIT, FlagRule.MUST_NOT: 0, FlagRule.MAY: None}


def _key(code: int, vendor_id: int) -> int | tuple[int, int]:
    return (code, vendor_id) if vendor_id else code


def _grammar(rules: Mapping[str, tuple[int, int | None]]) -> _Grammar:
    if any(least > 1 or most == 0 for least, most in rules.values()):
        raise LocalProtocolError(
            "grammar bounds must be (0 or 1, None or at least 1)"
        )  # what collect handles
    by_key = {
        _key(lookup(name).code, lookup(name).vendor_id): (name, _M_RULE[lookup(name).mandatory], most)
        for name, (_least, most) in rules.items()
    }
    required = tuple(name for name, (least, _most) in rules.items() if least)
    return _Grammar(dict(rules), by_key, required, frozenset(required))  # plain dicts: read for every AVP


_ONE = (1, 1)
_OPT = (0, 1)
_ANY = (0, _MANY)

_UNIT_COUNTERS = {
    "CC-Time": _OPT,
    "CC-Money": _OPT,
    "CC-Total-Octets": _OPT,
    "CC-Input-Octets": _OPT,
    "CC-Output-Octets": _OPT,
    "CC-Service-Specific-Units": _OPT,
}
_GSU = _grammar({**_UNIT_COUNTERS, "Tariff-Time-Change": _OPT})
_RSU = _grammar(_UNIT_COUNTERS)
_USU = _grammar({**_UNIT_COUNTERS, "Tariff-Change-Usage": _OPT, "Reporting-Reason": _OPT})
_REDIRECT_SERVER = _grammar({"Redirect-Address-Type": _ONE, "Redirect-Server-Address": _ONE})
_FUI = _grammar(
    {"Final-Unit-Action": _ONE, "Restriction-Filter-Rule": _ANY, "Filter-Id": _ANY, "Redirect-Server": _OPT}
)
_MSCC = _grammar(
    {
        "Granted-Service-Unit": _OPT,
        "Requested-Service-Unit": _OPT,
        "Used-Service-Unit": _ANY,
        "Tariff-Change-Usage": _OPT,
        "Service-Identifier": _ANY,
        "Rating-Group": _OPT,
        "G-S-U-Pool-Reference": _ANY,
        "Validity-Time": _OPT,
        "Result-Code": _OPT,
        "Final-Unit-Indication": _OPT,
        "Time-Quota-Threshold": _OPT,
        "Volume-Quota-Threshold": _OPT,
        "Unit-Quota-Threshold": _OPT,
        "Quota-Holding-Time": _OPT,
        "Quota-Consumption-Time": _OPT,
        "Reporting-Reason": _ANY,
    }
)
_SUBSCRIPTION_ID = _grammar({"Subscription-Id-Type": _ONE, "Subscription-Id-Data": _ONE})
_UMI = _grammar(
    {
        "Monitoring-Key": _OPT,
        "Granted-Service-Unit": (0, 2),
        "Used-Service-Unit": (0, 2),
        "Quota-Consumption-Time": _OPT,
        "Usage-Monitoring-Level": _OPT,
        "Usage-Monitoring-Report": _OPT,
        "Usage-Monitoring-Support": _OPT,
    }
)
_PENDING = _grammar({"Policy-Counter-Status": _ONE, "Pending-Policy-Counter-Change-Time": _ONE})
_PCSR = _grammar(
    {
        "Policy-Counter-Identifier": _ONE,
        "Policy-Counter-Status": _ONE,
        "Pending-Policy-Counter-Information": _ANY,
    }
)
_CCR_COMMON = {
    "Session-Id": _ONE,
    "Origin-Host": _ONE,
    "Origin-Realm": _ONE,
    "Destination-Realm": _ONE,
    "Auth-Application-Id": _ONE,
    "CC-Request-Type": _ONE,
    "CC-Request-Number": _ONE,
    "Destination-Host": _OPT,
    "User-Name": _OPT,
    "CC-Sub-Session-Id": _OPT,
    "Acct-Multi-Session-Id": _OPT,
    "Origin-State-Id": _OPT,
    "Event-Timestamp": _OPT,
    "Subscription-Id": _ANY,
    "Termination-Cause": _OPT,
    "Requested-Service-Unit": _OPT,
    "Requested-Action": _OPT,
    "Used-Service-Unit": _ANY,
    "Multiple-Services-Indicator": _OPT,
    "Multiple-Services-Credit-Control": _ANY,
    "Service-Parameter-Info": _ANY,
    "CC-Correlation-Id": _OPT,
    "User-Equipment-Info": _OPT,
    "Proxy-Info": _ANY,
    "Route-Record": _ANY,
}
# RFC 4006 section 3.1 (Service-Context-Id required); TS 29.212 section 5.6.2 (not named there)
_GY_CCR = _grammar({**_CCR_COMMON, "Service-Context-Id": _ONE, "Service-Identifier": _OPT})
_GX_CCR = _grammar(
    {
        **_CCR_COMMON,
        "Service-Context-Id": _OPT,
        "Event-Trigger": _ANY,
        "Usage-Monitoring-Information": _ANY,
        "Charging-Rule-Report": _ANY,
    }
)
_SNR = _grammar(
    {
        "Session-Id": _ONE,
        "Origin-Host": _ONE,
        "Origin-Realm": _ONE,
        "Destination-Realm": _ONE,
        "Destination-Host": _ONE,
        "Auth-Application-Id": _ONE,
        "Origin-State-Id": _OPT,
        "Policy-Counter-Status-Report": _ANY,
        "SN-Request-Type": _OPT,
        "Subscription-Id": _ANY,  # an extension AVP here (see SpendingStatusNotificationRequest)
        "Proxy-Info": _ANY,
        "Route-Record": _ANY,
    }
)

# minimum data lengths of a zero-filled example of a missing AVP (RFC 6733 section 7.5)
_MINIMUM_LENGTH = {
    AvpType.INTEGER32: 4,
    AvpType.UNSIGNED32: 4,
    AvpType.ENUMERATED: 4,
    AvpType.FLOAT32: 4,
    AvpType.TIME: 4,
    AvpType.INTEGER64: 8,
    AvpType.UNSIGNED64: 8,
    AvpType.FLOAT64: 8,
    AvpType.ADDRESS: 6,
}


def _example(name: str) -> Avp:
    definition = lookup(name)
    data = bytes(_MINIMUM_LENGTH.get(definition.type, 0))
    return Avp(definition.code, definition.flags, definition.vendor_id or None, data)


def _wrap(group: RawAvp, inner: Avp) -> Avp:
    """The enclosing Grouped AVP holding only the offending one (RFC 6733 section 7.5)."""
    return Avp(group[0], group[1], group[2], codec.encode_avp(inner))


# --- parsing -----------------------------------------------------------------------------------------
#
# The parser reads AVPs as RawAvp tuples (code, flags, vendor_id, data): a Grouped AVP's members come
# straight from its octets (_Parser.members, or codec.scan_avps), and an Avp is built only for the one
# an error names (Failed-AVP). That is the same AVP decode_avps would have built, at a fraction of the
# cost per member.

_ANY_UNITS = RequestedServiceUnit()  # "Requested-Service-Unit {}", in nearly every CCR-I/U: one shared value

_T = TypeVar("_T")
_U = TypeVar("_U", bound=ServiceUnit)


def _decode(item: RawAvp, decoder: Callable[[bytes], _T]) -> _T:
    try:
        return decoder(item[3])
    except DecodeError as exc:
        raise FailedAvpError(f"AVP {item[0]}: {exc}", exc.status, Avp(*item)) from exc


# The typed readers take the common case inline (right size, valid text) and leave everything
# else, errors included, to the codec's checked decoders through _decode. With the C accelerator,
# _u32, _u64, _enum, _utf8 and _identity (below) are its Readers: the same common case in C, these
# functions for everything else.
_UNPACK_U32 = struct.Struct(">I").unpack
_UNPACK_I32 = struct.Struct(">i").unpack
_UNPACK_U64 = struct.Struct(">Q").unpack
_UNPACK_AVP_HEADER = struct.Struct(">II").unpack_from
_UNPACK_U32_FROM = struct.Struct(">I").unpack_from
_V_BIT = 0x80  # AvpFlag.VENDOR as a plain int


def _py_u32(item: RawAvp) -> int:
    data = item[3]
    if len(data) == 4:
        value: int = _UNPACK_U32(data)[0]
        return value
    return _decode(item, codec.decode_unsigned32)


def _py_u64(item: RawAvp) -> int:
    data = item[3]
    if len(data) == 8:
        value: int = _UNPACK_U64(data)[0]
        return value
    return _decode(item, codec.decode_unsigned64)


def _py_enum(item: RawAvp) -> int:
    data = item[3]
    if len(data) == 4:
        value: int = _UNPACK_I32(data)[0]
        return value
    return _decode(item, codec.decode_enumerated)


def _py_utf8(item: RawAvp) -> str:
    data = item[3]
    if type(data) is bytes:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _decode(item, codec.decode_utf8_string)


def _py_identity(item: RawAvp) -> str:
    data = item[3]
    if type(data) is bytes and data.isascii():
        return data.decode("ascii")
    return _decode(item, codec.decode_diameter_identity)


_SPEEDUPS = codec._SPEEDUPS  # the codec's choice: the C accelerator, or None (TGW_PURE_PYTHON, not built)


def _reader(
    kind: str, read: Callable[[RawAvp], _T], registry: type[IntEnum] | None = None
) -> Callable[[RawAvp], _T]:
    """``read``, or the C accelerator's Reader of ``kind`` with ``read`` as its fallback (and, for an
    enumeration's reader, its members by value: what ``_member`` finds without a call)."""
    members = None if registry is None else registry._value2member_map_
    return read if _SPEEDUPS is None else _SPEEDUPS.Reader(kind, read, members)


# module globals read at call time: tests switch them back to the _py_ functions in-process
_u32 = _reader("u32", _py_u32)
_u64 = _reader("u64", _py_u64)
_enum = _reader("i32", _py_enum)
_utf8 = _reader("utf8", _py_utf8)
_identity = _reader("ascii", _py_identity)


_TIMES: dict[bytes, datetime] = {}
_TIMES_KEPT = 256


def _time(item: RawAvp) -> datetime:
    """A Time AVP's value; the reports of one second share one (immutable) datetime: the few seconds
    seen last are kept."""
    data = item[3]
    if type(data) is bytes:
        value = _TIMES.get(data)
        if value is None:
            value = _decode(item, codec.decode_time)
            if len(_TIMES) >= _TIMES_KEPT:
                _TIMES.clear()
            _TIMES[data] = value
        return value
    return _decode(item, codec.decode_time)


def _raw(item: Avp) -> RawAvp:
    return (item.code, item.flags, item.vendor_id, item.data)


def _octets(item: RawAvp) -> bytes:
    return item[3]


_E = TypeVar("_E", bound=IntEnum)


def _member(registry: type[_E], value: int) -> _E:
    """``registry(value)`` without the Enum call machinery for the values it names."""
    member = registry._value2member_map_.get(value)
    return member if member is not None else registry(value)  # type: ignore[return-value]


def _py_reporting_reason(item: RawAvp) -> ReportingReason:
    return _member(ReportingReason, _py_enum(item))


def _py_subscription_id_type(item: RawAvp) -> SubscriptionIdType:
    return _member(SubscriptionIdType, _py_enum(item))


def _py_event_trigger(item: RawAvp) -> EventTrigger:
    return _member(EventTrigger, _py_enum(item))


# the Enumerated AVPs of every report, read straight into their members (module globals, as above)
_reporting_reason = _reader("i32", _py_reporting_reason, ReportingReason)
_subscription_id_type = _reader("i32", _py_subscription_id_type, SubscriptionIdType)
_event_trigger = _reader("i32", _py_event_trigger, EventTrigger)


# The parser makes its typed values through these: codec.record_maker gives the class itself, or with
# the C accelerator a Maker that sets the slots in C (a tenth of the frozen dataclass's __init__).
# Module globals read at call time: tests switch them back to the classes.
_new_ccr = record_maker(CreditControlRequest)
_new_snr = record_maker(SpendingStatusNotificationRequest)
_new_subscription_id = record_maker(SubscriptionId)
_new_mscc = record_maker(MultipleServicesCreditControl)
_new_gsu = record_maker(GrantedServiceUnit)
_new_rsu = record_maker(RequestedServiceUnit)
_new_usu = record_maker(UsedServiceUnit)
_new_fui = record_maker(FinalUnitIndication)
_new_redirect_server = record_maker(RedirectServer)
_new_umi = record_maker(UsageMonitoringInformation)
_new_pcsr = record_maker(PolicyCounterStatusReport)
_new_pending = record_maker(PendingPolicyCounterInformation)


# every AVP of the dictionary by its key, with the M bit it demands (check_flags' rule, precomputed)
_DICTIONARY_M_RULE: dict[int | tuple[int, int], int | None] = {
    _key(definition.code, definition.vendor_id): _M_RULE[definition.mandatory] for definition in all_avps()
}

# The C accelerator's one pass over a Grouped AVP's octets (members) and over a message's AVPs
# (collect). Each returns the dict of found lists exactly when the Python code below would go through
# without an error, else None, and the Python code then decides. Module globals: tests switch them off.
_c_members: codec._Members | None = None if _SPEEDUPS is None else _SPEEDUPS.members
_c_collect: codec._Collect | None = None if _SPEEDUPS is None else _SPEEDUPS.collect


def _too_many(count: int, most: int | None) -> bool:
    return most is not None and count > most


class _Found(Protocol):
    """The AVPs of one AVP list sorted by grammar name, with typed accessors: a ``_PyFound``, or the
    C accelerator's ``Found`` (the same methods without a Python frame per call)."""

    def all(self, name: str) -> list[RawAvp]: ...

    def one(self, name: str, decoder: Callable[[RawAvp], _T]) -> _T: ...

    def optional(self, name: str, decoder: Callable[[RawAvp], _T]) -> _T | None: ...

    def many(self, name: str, decoder: Callable[[RawAvp], _T]) -> tuple[_T, ...]: ...


class _PyFound:
    """``_Found`` in Python, the reference."""

    __slots__ = ("_avps",)

    def __init__(self, avps: dict[str, list[RawAvp]]) -> None:
        self._avps = avps  # only the names that occur

    def all(self, name: str) -> list[RawAvp]:
        return self._avps.get(name, [])

    def one(self, name: str, decoder: Callable[[RawAvp], _T]) -> _T:
        return decoder(self._avps[name][0])

    def optional(self, name: str, decoder: Callable[[RawAvp], _T]) -> _T | None:
        items = self._avps.get(name)
        return decoder(items[0]) if items else None

    def many(self, name: str, decoder: Callable[[RawAvp], _T]) -> tuple[_T, ...]:
        items = self._avps.get(name)
        if not items:
            return ()
        if len(items) == 1:
            return (decoder(items[0]),)
        return tuple([decoder(item) for item in items])


# what the parser makes its _Found with (a module global: tests switch it back to _PyFound)
_new_found: Callable[[dict[str, list[RawAvp]]], _Found] = _PyFound if _SPEEDUPS is None else _SPEEDUPS.Found


class _Parser:
    def __init__(self, reject_unknown_mandatory: bool) -> None:
        self.strict = reject_unknown_mandatory

    def collect(self, avps: Iterable[RawAvp], grammar: _Grammar) -> _Found:
        found: dict[str, list[RawAvp]] = {}
        by_key = grammar.by_key
        over = False
        for item in avps:
            code, flags, vendor_id, _data = item
            entry = by_key.get((code, vendor_id) if vendor_id else code)
            if entry is None:
                self._outside_grammar(item)
                continue
            name, mandatory, most = entry
            if mandatory is not None and flags & _M_BIT != mandatory:
                raise FailedAvpError(
                    f"{name}: M bit {'clear' if mandatory else 'set'}",
                    ResultCode.DIAMETER_INVALID_AVP_BITS,
                    Avp(*item),
                )
            items = found.get(name)
            if items is None:
                found[name] = [item]
            else:
                items.append(item)
                if most is not None and len(items) > most:
                    over = True  # raised below, after the check for missing AVPs (which comes first)
        if not found.keys() >= grammar.required_names:
            name = next(name for name in grammar.required if name not in found)  # the first, in grammar order
            raise FailedAvpError(f"{name} missing", ResultCode.DIAMETER_MISSING_AVP, _example(name))
        if over:
            limits = grammar.rules
            # the first name over its limit, in the order the names first occur
            name = next(name for name, items in found.items() if _too_many(len(items), limits[name][1]))
            items = found[name]
            most = cast(int, limits[name][1])
            raise FailedAvpError(
                f"{name} occurs {len(items)} times (at most {most})",
                ResultCode.DIAMETER_AVP_OCCURS_TOO_MANY_TIMES,
                Avp(*items[most]),
            )
        return _new_found(found)

    def _outside_grammar(self, item: RawAvp) -> None:
        """An AVP the grammar does not name (allowed by ``*[ AVP ]``): checked, then ignored."""
        code, flags, vendor_id, _data = item
        key = (code, vendor_id) if vendor_id else code
        if key not in _DICTIONARY_M_RULE:
            if flags & _M_BIT and self.strict:
                raise FailedAvpError(
                    f"AVP {code} (vendor {vendor_id or 0}) unknown with the M bit",
                    ResultCode.DIAMETER_AVP_UNSUPPORTED,
                    Avp(*item),
                )
            return
        mandatory = _DICTIONARY_M_RULE[key]
        if mandatory is None or flags & _M_BIT == mandatory:
            return
        avp_ = Avp(*item)
        try:
            check_flags(avp_)  # raises, with the dictionary's words
        except DecodeError as exc:
            raise FailedAvpError(str(exc), exc.status, avp_) from exc

    def members(self, group: RawAvp, grammar: _Grammar) -> _Found | None:
        """A Grouped AVP's members sorted by grammar name, in one pass over the octets, for the usual
        case: well-formed, every member either named by the grammar with the M bit it wants or an AVP
        the grammar lets by, no name too often, none missing. None for anything else: ``grouped``
        then goes the long way (codec.scan_avps, then collect), which raises the error RFC 6733 wants,
        in the order the checks come. Both ways give the same result for any octets.

        The C accelerator's ``members`` does the same pass; where it gives None the long way decides.
        """
        data = group[3]
        if _c_members is not None:
            sorted_ = _c_members(data, grammar.by_key, _DICTIONARY_M_RULE, self.strict, grammar.required)
            return None if sorted_ is None else _new_found(sorted_)
        found: dict[str, list[RawAvp]] = {}
        if type(data) is bytes:
            by_key = grammar.by_key
            strict = self.strict
            offset = 0
            end = len(data)
            while offset < end:
                if end - offset < 8:
                    break
                code, flags_length = _UNPACK_AVP_HEADER(data, offset)
                flags = flags_length >> 24
                length = flags_length & 0xFFFFFF
                value_at = offset + (12 if flags & _V_BIT else 8)
                padded = (length + 3) & ~3
                if (
                    value_at > offset + length
                    or offset + padded > end
                    or (padded != length and any(data[offset + length : offset + padded]))
                ):
                    break
                if flags & _V_BIT:
                    vendor_id: int | None = _UNPACK_U32_FROM(data, offset + 8)[0]
                    key: int | tuple[int, int] = (code, vendor_id) if vendor_id else code
                else:
                    vendor_id = None
                    key = code
                entry = by_key.get(key)
                if entry is None:
                    if key in _DICTIONARY_M_RULE:
                        rule = _DICTIONARY_M_RULE[key]
                        if rule is not None and flags & _M_BIT != rule:
                            break
                    elif flags & _M_BIT and strict:
                        break
                    offset += padded
                    continue
                name, mandatory, most = entry
                if mandatory is not None and flags & _M_BIT != mandatory:
                    break
                item = (code, flags, vendor_id, data[value_at : offset + length])
                items = found.get(name)
                if items is None:
                    found[name] = [item]
                else:
                    items.append(item)
                    if most is not None and len(items) > most:
                        break
                offset += padded
            else:
                if found.keys() >= grammar.required_names:
                    return _new_found(found)
        return None

    def grouped(self, group: RawAvp, grammar: _Grammar, build: Callable[[_Found], _T]) -> _T:
        if _c_members is not None:  # members' C path, without members' frame (this runs per group)
            sorted_ = _c_members(group[3], grammar.by_key, _DICTIONARY_M_RULE, self.strict, grammar.required)
            found = None if sorted_ is None else _new_found(sorted_)
        else:
            found = self.members(group, grammar)
        raw = _decode(group, codec.scan_avps) if found is None else []  # its errors name the group
        try:
            return build(self.collect(raw, grammar) if found is None else found)
        except FailedAvpError as exc:
            assert exc.failed_avp is not None  # every error of a member names its AVP
            raise FailedAvpError(str(exc), exc.status, _wrap(group, exc.failed_avp)) from exc

    # --- Grouped AVPs ---

    def units(self, found: _Found, kind: Callable[..., _U]) -> _U:
        return kind(
            cc_time=found.optional("CC-Time", _u32),
            cc_total_octets=found.optional("CC-Total-Octets", _u64),
            cc_input_octets=found.optional("CC-Input-Octets", _u64),
            cc_output_octets=found.optional("CC-Output-Octets", _u64),
            cc_service_specific_units=found.optional("CC-Service-Specific-Units", _u64),
        )

    def gsu(self, item: RawAvp) -> GrantedServiceUnit:
        return self.grouped(item, _GSU, lambda f: self.units(f, _new_gsu))

    def rsu(self, item: RawAvp) -> RequestedServiceUnit:
        if not item[3]:
            return _ANY_UNITS  # the usual "Requested-Service-Unit {}" (RFC 4006 8.18): no member, no error
        return self.grouped(item, _RSU, lambda f: self.units(f, _new_rsu))

    def usu(self, item: RawAvp) -> UsedServiceUnit:
        return self.grouped(
            item,
            _USU,
            lambda f: _new_usu(
                reporting_reason=f.optional("Reporting-Reason", _reporting_reason),  # read first
                cc_time=f.optional("CC-Time", _u32),
                cc_total_octets=f.optional("CC-Total-Octets", _u64),
                cc_input_octets=f.optional("CC-Input-Octets", _u64),
                cc_output_octets=f.optional("CC-Output-Octets", _u64),
                cc_service_specific_units=f.optional("CC-Service-Specific-Units", _u64),
            ),
        )

    def redirect_server(self, item: RawAvp) -> RedirectServer:
        return self.grouped(
            item,
            _REDIRECT_SERVER,
            lambda f: _new_redirect_server(
                redirect_address_type=_member(RedirectAddressType, f.one("Redirect-Address-Type", _enum)),
                redirect_server_address=f.one("Redirect-Server-Address", _utf8),
            ),
        )

    def fui(self, item: RawAvp) -> FinalUnitIndication:
        return self.grouped(
            item,
            _FUI,
            lambda f: _new_fui(
                final_unit_action=_member(FinalUnitAction, f.one("Final-Unit-Action", _enum)),
                restriction_filter_rule=f.many("Restriction-Filter-Rule", _octets),
                filter_id=f.many("Filter-Id", _utf8),
                redirect_server=f.optional("Redirect-Server", self.redirect_server),
            ),
        )

    def mscc(self, item: RawAvp) -> MultipleServicesCreditControl:
        return self.grouped(
            item,
            _MSCC,
            lambda f: _new_mscc(
                rating_group=f.optional("Rating-Group", _u32),
                service_identifier=f.many("Service-Identifier", _u32),
                granted_service_unit=f.optional("Granted-Service-Unit", self.gsu),
                requested_service_unit=f.optional("Requested-Service-Unit", self.rsu),
                used_service_unit=f.many("Used-Service-Unit", self.usu),
                validity_time=f.optional("Validity-Time", _u32),
                result_code=f.optional("Result-Code", _u32),
                final_unit_indication=f.optional("Final-Unit-Indication", self.fui),
                time_quota_threshold=f.optional("Time-Quota-Threshold", _u32),
                volume_quota_threshold=f.optional("Volume-Quota-Threshold", _u32),
                reporting_reason=f.many("Reporting-Reason", _reporting_reason),
            ),
        )

    def subscription_id(self, item: RawAvp) -> SubscriptionId:
        return self.grouped(
            item,
            _SUBSCRIPTION_ID,
            lambda f: _new_subscription_id(
                subscription_id_type=f.one("Subscription-Id-Type", _subscription_id_type),
                subscription_id_data=f.one("Subscription-Id-Data", _utf8),
            ),
        )

    def umi(self, item: RawAvp) -> UsageMonitoringInformation:
        def build(f: _Found) -> UsageMonitoringInformation:
            level = f.optional("Usage-Monitoring-Level", _enum)
            report = f.optional("Usage-Monitoring-Report", _enum)
            support = f.optional("Usage-Monitoring-Support", _enum)
            return _new_umi(
                monitoring_key=f.optional("Monitoring-Key", _octets),
                granted_service_unit=f.many("Granted-Service-Unit", self.gsu),
                used_service_unit=f.many("Used-Service-Unit", self.usu),
                usage_monitoring_level=None if level is None else _member(UsageMonitoringLevel, level),
                usage_monitoring_report=None if report is None else _member(UsageMonitoringReport, report),
                usage_monitoring_support=(
                    None if support is None else _member(UsageMonitoringSupport, support)
                ),
            )

        return self.grouped(item, _UMI, build)

    def pending(self, item: RawAvp) -> PendingPolicyCounterInformation:
        return self.grouped(
            item,
            _PENDING,
            lambda f: _new_pending(
                policy_counter_status=f.one("Policy-Counter-Status", _utf8),
                pending_policy_counter_change_time=f.one("Pending-Policy-Counter-Change-Time", _time),
            ),
        )

    def pcsr(self, item: RawAvp) -> PolicyCounterStatusReport:
        return self.grouped(
            item,
            _PCSR,
            lambda f: _new_pcsr(
                policy_counter_identifier=f.one("Policy-Counter-Identifier", _utf8),
                policy_counter_status=f.one("Policy-Counter-Status", _utf8),
                pending_policy_counter_information=f.many("Pending-Policy-Counter-Information", self.pending),
            ),
        )

    # --- commands ---

    def top_level(self, message: Message, grammar: _Grammar) -> _Found:
        if _c_collect is not None:
            found = _c_collect(
                message.avps, Avp, grammar.by_key, _DICTIONARY_M_RULE, self.strict, grammar.required
            )
            if found is not None:
                return _new_found(found)
        return self.collect([(a.code, a.flags, a.vendor_id, a.data) for a in message.avps], grammar)

    def application_id(self, message: Message, found: _Found) -> int:
        item = found.all("Auth-Application-Id")[0]
        if _u32(item) != message.application_id:
            raise FailedAvpError(
                f"Auth-Application-Id differs from the header's {message.application_id}",
                ResultCode.DIAMETER_INVALID_AVP_VALUE,
                Avp(*item),
            )
        return message.application_id

    def ccr(self, message: Message) -> CreditControlRequest:
        gx = message.application_id == GX_APPLICATION_ID
        found = self.top_level(message, _GX_CCR if gx else _GY_CCR)
        type_avp = found.all("CC-Request-Type")[0]
        request_type = _enum(type_avp)
        cc_request_type = _CC_REQUEST_TYPES.get(request_type)
        if cc_request_type is None:
            raise FailedAvpError(
                f"CC-Request-Type {request_type} unknown",
                ResultCode.DIAMETER_INVALID_AVP_VALUE,
                Avp(*type_avp),
            )
        return _new_ccr(
            session_id=found.one("Session-Id", _utf8),
            origin_host=found.one("Origin-Host", _identity),
            origin_realm=found.one("Origin-Realm", _identity),
            destination_realm=found.one("Destination-Realm", _identity),
            auth_application_id=self.application_id(message, found),
            cc_request_type=cast(CcRequestType, cc_request_type),
            cc_request_number=found.one("CC-Request-Number", _u32),
            service_context_id=found.optional("Service-Context-Id", _utf8),
            destination_host=found.optional("Destination-Host", _identity),
            origin_state_id=found.optional("Origin-State-Id", _u32),
            event_timestamp=found.optional("Event-Timestamp", _time),
            subscription_id=found.many("Subscription-Id", self.subscription_id),
            multiple_services_credit_control=found.many("Multiple-Services-Credit-Control", self.mscc),
            event_trigger=(found.many("Event-Trigger", _event_trigger) if gx else ()),
            usage_monitoring_information=(found.many("Usage-Monitoring-Information", self.umi) if gx else ()),
        )

    def snr(self, message: Message) -> SpendingStatusNotificationRequest:
        found = self.top_level(message, _SNR)
        return _new_snr(
            session_id=found.one("Session-Id", _utf8),
            origin_host=found.one("Origin-Host", _identity),
            origin_realm=found.one("Origin-Realm", _identity),
            destination_realm=found.one("Destination-Realm", _identity),
            destination_host=found.one("Destination-Host", _identity),
            auth_application_id=self.application_id(message, found),
            origin_state_id=found.optional("Origin-State-Id", _u32),
            policy_counter_status_report=found.many("Policy-Counter-Status-Report", self.pcsr),
            sn_request_type=found.optional("SN-Request-Type", _u32),
            subscription_id=found.many("Subscription-Id", self.subscription_id),
        )


_CC_REQUEST_TYPES = CcRequestType._value2member_map_  # the closed set (read once, as _E164)
_STRICT = _Parser(True)  # a parser keeps nothing but its strictness: one of each serves every request
_LENIENT = _Parser(False)


def parse_request(message: Message, *, reject_unknown_mandatory: bool = True) -> Request:
    """The typed Gy/Gx CCR or Sy SNR in ``message``; ``FailedAvpError`` says what to answer.

    ``reject_unknown_mandatory=False`` accepts unknown AVPs with the M bit (a DRA's copy stream,
    where the request was already answered by its real server; PROTOCOLS.md 1.4).
    """
    if not message.is_request:
        raise LocalProtocolError("parse_request() takes requests; this is an answer")
    if reject_unknown_mandatory is True:
        parser = _STRICT
    elif reject_unknown_mandatory is False:
        parser = _LENIENT
    else:
        parser = _Parser(reject_unknown_mandatory)
    application = message.application_id
    if application not in (GY_APPLICATION_ID, GX_APPLICATION_ID, SY_APPLICATION_ID):
        raise FailedAvpError(
            f"application {application} not handled here", ResultCode.DIAMETER_APPLICATION_UNSUPPORTED
        )
    if message.command_code == CREDIT_CONTROL and application != SY_APPLICATION_ID:
        return parser.ccr(message)
    if message.command_code == SPENDING_STATUS_NOTIFICATION and application == SY_APPLICATION_ID:
        return parser.snr(message)
    raise FailedAvpError(
        f"command {message.command_code} of application {application} not handled here",
        ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
    )


# --- building ----------------------------------------------------------------------------------------


def to_message(request: Request, *, hop_by_hop: int = 0, end_to_end: int = 0) -> Message:
    """The request as a ``Message`` (R and P bits; the peer engine assigns the ids it sends)."""
    code = CREDIT_CONTROL if isinstance(request, CreditControlRequest) else SPENDING_STATUS_NOTIFICATION
    return Message(
        command_flags=_REQUEST_FLAGS,
        command_code=code,
        application_id=request.auth_application_id,
        hop_by_hop=hop_by_hop,
        end_to_end=end_to_end,
        avps=tuple(request.to_avps()),
    )


def build_gy_ccr(
    *,
    session_id: str,
    origin_host: str,
    origin_realm: str,
    destination_realm: str,
    cc_request_type: CcRequestType,
    cc_request_number: int,
    msisdn: str | None = None,
    multiple_services_credit_control: Sequence[MultipleServicesCreditControl] = (),
    event_timestamp: datetime | None = None,
    service_context_id: str = SERVICE_CONTEXT_PS,
    destination_host: str | None = None,
    origin_state_id: int | None = None,
    subscription_id: Sequence[SubscriptionId] = (),
) -> Message:
    """A Gy/Ro CCR (RFC 4006 section 3.1); ``msisdn`` adds an END_USER_E164 Subscription-Id first."""
    ids = (*_e164(msisdn), *subscription_id)
    return to_message(
        CreditControlRequest(
            session_id=session_id,
            origin_host=origin_host,
            origin_realm=origin_realm,
            destination_realm=destination_realm,
            auth_application_id=GY_APPLICATION_ID,
            cc_request_type=cc_request_type,
            cc_request_number=cc_request_number,
            service_context_id=service_context_id,
            destination_host=destination_host,
            origin_state_id=origin_state_id,
            event_timestamp=event_timestamp,
            subscription_id=ids,
            multiple_services_credit_control=tuple(multiple_services_credit_control),
        )
    )


def build_gx_ccr_update(
    *,
    session_id: str,
    origin_host: str,
    origin_realm: str,
    destination_realm: str,
    cc_request_number: int,
    msisdn: str | None = None,
    usage_monitoring_information: Sequence[UsageMonitoringInformation] = (),
    event_trigger: Sequence[EventTrigger] = (EventTrigger.USAGE_REPORT,),
    event_timestamp: datetime | None = None,
    destination_host: str | None = None,
    origin_state_id: int | None = None,
) -> Message:
    """A Gx CCR-U reporting usage (TS 29.212 section 4.5.17: Event-Trigger USAGE_REPORT + UMI)."""
    return to_message(
        CreditControlRequest(
            session_id=session_id,
            origin_host=origin_host,
            origin_realm=origin_realm,
            destination_realm=destination_realm,
            auth_application_id=GX_APPLICATION_ID,
            cc_request_type=CcRequestType.UPDATE_REQUEST,
            cc_request_number=cc_request_number,
            destination_host=destination_host,
            origin_state_id=origin_state_id,
            event_timestamp=event_timestamp,
            subscription_id=_e164(msisdn),
            event_trigger=tuple(event_trigger),
            usage_monitoring_information=tuple(usage_monitoring_information),
        )
    )


def build_sy_snr(
    *,
    session_id: str,
    origin_host: str,
    origin_realm: str,
    destination_realm: str,
    destination_host: str,
    policy_counter_status_report: Sequence[PolicyCounterStatusReport],
    msisdn: str | None = None,
    origin_state_id: int | None = None,
    sn_request_type: int | None = None,
) -> Message:
    """An Sy SNR (TS 29.219 section 5.6.4) reporting policy counter statuses; ``msisdn`` adds an
    END_USER_E164 Subscription-Id extension AVP (see ``SpendingStatusNotificationRequest``)."""
    return to_message(
        SpendingStatusNotificationRequest(
            session_id=session_id,
            origin_host=origin_host,
            origin_realm=origin_realm,
            destination_realm=destination_realm,
            destination_host=destination_host,
            origin_state_id=origin_state_id,
            policy_counter_status_report=tuple(policy_counter_status_report),
            sn_request_type=sn_request_type,
            subscription_id=_e164(msisdn),
        )
    )


# --- answers -----------------------------------------------------------------------------------------

_SESSION_ID_CODE = lookup("Session-Id").code
_PROXY_INFO_CODE = lookup("Proxy-Info").code
_CC_REQUEST_TYPE_CODE = lookup("CC-Request-Type").code
_CC_REQUEST_NUMBER_CODE = lookup("CC-Request-Number").code
_RESULT_CODE = lookup("Result-Code")


_Shared = tuple[tuple[Avp, ...], bytes]
"""A run of AVPs that answers share, with its octets."""
_AnswerPart = Avp | _Shared
"""An AVP of an answer, or a run of shared ones."""


# Answers repeat the same few AVPs (our identity, 2001, the per-rating-group MSCC answer): Avp is
# immutable, so one instance each is built once and shared, with its octets for encode_answer.
@lru_cache(maxsize=1024)
def _shared_identity(
    result_code: int, origin_host: str, origin_realm: str, application_id: int | None
) -> _Shared:
    """Result-Code, Origin-Host, Origin-Realm and, in a CCA, Auth-Application-Id."""
    items = [
        avp("Result-Code", result_code),
        avp("Origin-Host", origin_host),
        avp("Origin-Realm", origin_realm),
    ]
    if application_id is not None:
        items.append(avp("Auth-Application-Id", application_id))
    return tuple(items), codec.encode_avps(items)


@lru_cache(maxsize=1024)
def _service_avp(service: MultipleServicesCreditControl) -> _Shared:
    item = service.to_avp()
    return (item,), codec.encode_avp(item)


# _service_avp by identity first: answer_services hands out shared values, and hashing one (a frozen
# dataclass: a tuple of its fields, each hashed) costs more than its lookup. An entry keeps its service
# alive, so no other object can have its id meanwhile.
_SERVICE_PARTS: dict[int, tuple[MultipleServicesCreditControl, _Shared]] = {}
_SERVICE_PARTS_KEPT = 4096


def _service_part(service: MultipleServicesCreditControl) -> _Shared:
    entry = _SERVICE_PARTS.get(id(service))
    if entry is not None and entry[0] is service:
        return entry[1]
    part = _service_avp(service)
    if len(_SERVICE_PARTS) >= _SERVICE_PARTS_KEPT:
        _SERVICE_PARTS.clear()
    _SERVICE_PARTS[id(service)] = (service, part)
    return part


_ECHOED = (_SESSION_ID_CODE, _CC_REQUEST_TYPE_CODE, _CC_REQUEST_NUMBER_CODE, _PROXY_INFO_CODE)
# The C accelerator's select: the IETF AVPs of _ECHOED's codes, in order, for the loop of _answer_avps
# (which checks each again), or None (then it scans them all). A module global: tests switch it off.
_c_select: codec._Select | None = None if _SPEEDUPS is None else _SPEEDUPS.select


def _first(avps: Iterable[Avp], code: int) -> Avp | None:
    for item in avps:
        if item.code == code and item.vendor_id is None:
            return item
    return None


def _answer_avps(
    request: Message,
    result_code: int,
    *,
    origin_host: str,
    origin_realm: str,
    origin_state_id: int | None,
    services: Sequence[MultipleServicesCreditControl],
    failed_avp: Avp | None,
    error_message: str | None,
) -> tuple[int, list[_AnswerPart]]:
    """The command flags and AVPs of ``answer`` (see there), in order."""
    if not request.is_request:
        raise LocalProtocolError("answer() answers requests")
    protocol_error = 3000 <= result_code < 4000
    # one pass over the request for what the answer echoes (each the first of its kind; Proxy-Info all)
    session: Avp | None = None
    request_type: Avp | None = None
    request_number: Avp | None = None
    proxies: list[Avp] = []
    avps: Sequence[Avp] = request.avps
    if _c_select is not None:
        selected = _c_select(request.avps, Avp, _ECHOED)
        if selected is not None:
            avps = selected
    for item in avps:
        if item.vendor_id is None:
            code = item.code
            if code == _SESSION_ID_CODE:
                if session is None:
                    session = item
            elif code == _CC_REQUEST_TYPE_CODE:
                if request_type is None:
                    request_type = item
            elif code == _CC_REQUEST_NUMBER_CODE:
                if request_number is None:
                    request_number = item
            elif code == _PROXY_INFO_CODE:
                proxies.append(item)
    parts: list[_AnswerPart] = [] if session is None else [session]
    if not protocol_error and request.command_code == CREDIT_CONTROL:
        parts.append(_shared_identity(result_code, origin_host, origin_realm, request.application_id))
        # echoed when well-formed enough (an Unsigned32 / Enumerated: 4 octets)
        if request_type is not None and len(request_type.data) == 4:
            parts.append(request_type)
        if request_number is not None and len(request_number.data) == 4:
            parts.append(request_number)
    else:
        parts.append(_shared_identity(result_code, origin_host, origin_realm, None))
    if origin_state_id is not None:
        parts.append(avp("Origin-State-Id", origin_state_id))
    if not protocol_error:
        parts += [_service_part(service) for service in services]
    if error_message is not None:
        parts.append(avp("Error-Message", error_message))
    if failed_avp is not None:
        parts.append(avp("Failed-AVP", [failed_avp]))
    parts += proxies
    return (request.command_flags & _PROXIABLE) | (_ERROR if protocol_error else 0), parts


def answer(
    request: Message,
    result_code: int,
    *,
    origin_host: str,
    origin_realm: str,
    origin_state_id: int | None = None,
    multiple_services_credit_control: Sequence[MultipleServicesCreditControl] = (),
    failed_avp: Avp | None = None,
    error_message: str | None = None,
) -> Message:
    """The answer to ``request`` with ``result_code``.

    3xxx: the E-bit answer-message of RFC 6733 section 7.2 (Session-Id, Origin-Host/Realm,
    Result-Code, Error-Message, Failed-AVP). Otherwise, for command 272 a CCA (RFC 4006 section 3.2;
    TS 29.212 5.6.3 for Gx) echoing CC-Request-Type and CC-Request-Number with the header's
    Auth-Application-Id, and for the SNR an SNA (TS 29.219 5.6.5). Proxy-Info is copied in order
    (RFC 6733 section 6.2); the P bit is the request's; the ids are the request's.
    """
    flags, parts = _answer_avps(
        request,
        result_code,
        origin_host=origin_host,
        origin_realm=origin_realm,
        origin_state_id=origin_state_id,
        services=multiple_services_credit_control,
        failed_avp=failed_avp,
        error_message=error_message,
    )
    avps: list[Avp] = []
    for part in parts:
        if isinstance(part, Avp):
            avps.append(part)
        else:
            avps += part[0]
    return Message(
        command_flags=flags,
        command_code=request.command_code,
        application_id=request.application_id,
        hop_by_hop=request.hop_by_hop,
        end_to_end=request.end_to_end,
        avps=tuple(avps),
    )


def encode_answer(
    request: Message,
    result_code: int,
    *,
    origin_host: str,
    origin_realm: str,
    origin_state_id: int | None = None,
    multiple_services_credit_control: Sequence[MultipleServicesCreditControl] = (),
    failed_avp: Avp | None = None,
    error_message: str | None = None,
) -> bytes:
    """``codec.encode(answer(request, result_code, ...))``, the same octets built faster: the AVPs
    answers share (Result-Code, our identity, each answered MSCC) are encoded once and reused, and no
    ``Message`` is built. What a server sends per request."""
    flags, parts = _answer_avps(
        request,
        result_code,
        origin_host=origin_host,
        origin_realm=origin_realm,
        origin_state_id=origin_state_id,
        services=multiple_services_credit_control,
        failed_avp=failed_avp,
        error_message=error_message,
    )
    body = codec._encode_parts([part if isinstance(part, Avp) else part[1] for part in parts])
    header = codec._header(
        1,
        flags,
        request.command_code,
        request.application_id,
        request.hop_by_hop,
        request.end_to_end,
        len(body),
    )
    return header + body


def error_answer(
    request: Message,
    error: RemoteProtocolError,
    *,
    origin_host: str,
    origin_realm: str,
    origin_state_id: int | None = None,
) -> Message:
    """The answer to a request ``parse_request`` refused: its status, Failed-AVP, Error-Message."""
    status = error.status or ResultCode.DIAMETER_UNABLE_TO_COMPLY
    return answer(
        request,
        status,
        origin_host=origin_host,
        origin_realm=origin_realm,
        origin_state_id=origin_state_id,
        failed_avp=error.failed_avp if isinstance(error, FailedAvpError) else None,
        error_message=str(error)[:200],
    )


def answer_services(
    request: CreditControlRequest,
    result_code: int = ResultCode.DIAMETER_SUCCESS,
    granted: GrantedServiceUnit | None = None,
) -> tuple[MultipleServicesCreditControl, ...]:
    """One answer MSCC per requested MSCC: same Rating-Group and Service-Identifiers, ``result_code``,
    and ``granted`` where the request asked for units (a Requested-Service-Unit)."""
    return tuple(
        [
            _answered(
                service.rating_group,
                service.service_identifier,
                result_code,
                granted if service.requested_service_unit is not None else None,
            )
            for service in request.multiple_services_credit_control
        ]
    )


# _answered_service with the Granted-Service-Unit by identity first: a server passes the same one for
# every request, and hashing it (a frozen dataclass: a tuple of its fields) costs more than the
# lookup. An entry keeps its GSU alive, so no other object can have its id meanwhile.
_ANSWERED: dict[
    tuple[int | None, tuple[int, ...], int, int],
    tuple[GrantedServiceUnit | None, MultipleServicesCreditControl],
] = {}
_ANSWERED_KEPT = 4096


def _answered(
    rating_group: int | None,
    service_identifier: tuple[int, ...],
    result_code: int,
    granted: GrantedServiceUnit | None,
) -> MultipleServicesCreditControl:
    key = (rating_group, service_identifier, result_code, id(granted))
    entry = _ANSWERED.get(key)
    if entry is not None and entry[0] is granted:
        return entry[1]
    service = _answered_service(rating_group, service_identifier, result_code, granted)
    if len(_ANSWERED) >= _ANSWERED_KEPT:
        _ANSWERED.clear()
    _ANSWERED[key] = (granted, service)
    return service


# A server answers every report of a rating group the same way: one shared (immutable) value each.
@lru_cache(maxsize=4096)
def _answered_service(
    rating_group: int | None,
    service_identifier: tuple[int, ...],
    result_code: int,
    granted: GrantedServiceUnit | None,
) -> MultipleServicesCreditControl:
    return MultipleServicesCreditControl(
        rating_group=rating_group,
        service_identifier=service_identifier,
        result_code=result_code,
        granted_service_unit=granted,
    )


def result_code(message: Message) -> int | None:
    """The Result-Code of an answer (None when it has none, e.g. an Experimental-Result)."""
    item = _first(message.avps, _RESULT_CODE.code)
    return None if item is None else _u32(_raw(item))

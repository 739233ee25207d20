"""The campaign engine in the pure core with a fake clock: the reference journey of issue #7 step by step,
and each rule around it (scoring, affordability, policy, experiments, exactly-once activation, expiry)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_fixtures import (
    MSISDN,
    NEW_UPSELL,
    OLD_UPSELL,
    T0,
    actions,
    campaign_set,
    engine,
    exhausted,
    records,
)

from campaign_core.engine import Engine, OfferState
from campaign_core.model import (
    Activate,
    Activated,
    ActivationFailed,
    ActivePackage,
    CreditFailed,
    CreditScored,
    DeliveryReported,
    Payment,
    Profile,
    ProfileUpdated,
    PushStk,
    QueryCredit,
    RecordKind,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    SubmitFailed,
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")


def scored(e: Engine, at: float, balance: str = "0", credit: str = "100") -> list[object]:
    return list(e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(balance), Decimal(credit)), at))


def test_reference_journey_stk_then_sms_then_ussd_activates_once() -> None:
    e = engine()
    out = e.handle(exhausted(at=T0 - 2.0), T0)  # the event is 2 s old when the trigger reaches us
    assert actions(out) == [QueryCredit(f"{OFFER}:score", MSISDN, 5.0)]
    assert [r.kind for r in records(out)] == [RecordKind.TRIGGER, RecordKind.ELIGIBLE]
    assert e.next_deadline() == T0 + 5.0  # the scoring timeout

    # scoring approves 100 KES of credit, no balance: 100 MB (50) and 200 MB (90) are affordable
    out = e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100)), T0 + 1)
    (push,) = actions(out)
    assert isinstance(push, PushStk)
    assert push.command_id == f"{OFFER}:0" and push.style == "confirm"
    assert [o.package_id for o in push.options] == ["data-200mb"]  # the largest affordable
    assert push.options[0].payment is Payment.CREDIT and push.options[0].price == Decimal(90)
    assert push.text == "Out of data? Get 200 MB now, pay later: 90.00 KES"
    (contact,) = records(out, RecordKind.CONTACT)
    assert contact.detail["latency"] == pytest.approx(3.0)  # from the event's own time
    assert e.next_deadline() == T0 + 1 + 1800  # hard cap: no receipt yet

    e.handle(DeliveryReported(f"{OFFER}:0", True), T0 + 60)
    assert e.next_deadline() == T0 + 60 + 600  # wait counted from the receipt
    assert actions(e.handle(Tick(), T0 + 659)) == []
    out = e.handle(Tick(), T0 + 660)
    (sms,) = actions(out)
    assert isinstance(sms, SendSms) and sms.offer_id == OFFER
    assert sms.text == (
        "Out of data? Dial:\n100 MB 50.00 KES: dial *123*100#\n200 MB 90.00 KES: dial *123*200#"
    )

    out = e.handle(Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*100#"), T0 + 700)
    activate, reply = actions(out)
    assert activate == Activate(OFFER, MSISDN, "data-100mb", Payment.CREDIT, Decimal(50))
    assert isinstance(reply, Reply) and reply.accepted and "100 MB" in reply.text
    view = e.offer(OFFER)
    assert view is not None and view.state is OfferState.ACTIVATING

    # a late DSTK OK and a double dial: answered, never a second activation
    out = e.handle(Responded("r2", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 701)
    assert not any(isinstance(c, Activate) for c in out)
    assert [r.detail["reason"] for r in records(out, RecordKind.REJECTED_RESPONSE)] == ["duplicate"]
    out = e.handle(Responded("r3", MSISDN, ResponseChannel.USSD, option_id="*123*100#"), T0 + 702)
    assert not any(isinstance(c, Activate) for c in out)

    out = e.handle(Activated(OFFER, "data-100mb", Payment.CREDIT, Decimal(50)), T0 + 703)
    (confirmation,) = actions(out)
    assert isinstance(confirmation, SendSms) and not confirmation.promotional
    assert [r.kind for r in records(out)] == [RecordKind.FULFILLED, RecordKind.CLOSED]
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "activated"
    assert e.offer(OFFER) is None and e.next_deadline() is None

    out = e.handle(Responded("r4", MSISDN, ResponseChannel.USSD, option_id="*123*200#"), T0 + 800)
    assert not any(isinstance(c, Activate) for c in out)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and not reply.accepted and reply.text == "This offer was already taken."
    # billing repeating its answer changes nothing
    assert e.handle(Activated(OFFER, "data-100mb", Payment.CREDIT, Decimal(50)), T0 + 801) == []


def test_one_press_of_ok_buys_the_pushed_package() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1, balance="0", credit="400")
    out = e.handle(Responded("ok", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 30)
    assert Activate(OFFER, MSISDN, "data-1gb", Payment.CREDIT, Decimal(350)) in out


def test_balance_pays_first_credit_covers_the_rest() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    out = scored(e, T0 + 1, balance="100", credit="200")
    (push,) = actions(out)  # type: ignore[arg-type]
    assert isinstance(push, PushStk)
    assert [(o.package_id, o.payment) for o in push.options] == [("data-500mb", Payment.CREDIT)]
    e.handle(DeliveryReported(f"{OFFER}:0", True), T0 + 2)
    (sms,) = actions(e.handle(Tick(), T0 + 602))
    assert isinstance(sms, SendSms)
    assert "100 MB 50.00" in sms.text and "200 MB 90.00" in sms.text and "500 MB 200.00" in sms.text
    assert "1000 MB" not in sms.text
    view = e.offer(OFFER)
    assert view is not None
    assert [o.payment for o in view.options] == [Payment.BALANCE, Payment.BALANCE, Payment.CREDIT]


def test_nothing_affordable_closes_the_offer_without_contact() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    out = scored(e, T0 + 1, balance="10", credit="20")
    assert actions(out) == []  # type: ignore[arg-type]
    closed = records(out, RecordKind.CLOSED)  # type: ignore[arg-type]
    assert closed[0].detail == {"outcome": "suppressed", "reason": "nothing affordable"}


def test_hard_cap_when_no_receipt_comes() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    assert actions(e.handle(Tick(), T0 + 1 + 1799)) == []
    (sms,) = actions(e.handle(Tick(), T0 + 1 + 1800))
    assert isinstance(sms, SendSms)


def test_failed_delivery_moves_on_at_once() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    (sms,) = actions(e.handle(DeliveryReported(f"{OFFER}:0", False, "UNDELIV"), T0 + 5))
    assert isinstance(sms, SendSms)
    # a refused submission of the SMS ends the journey; the offer stays open until it expires
    out = e.handle(SubmitFailed(f"{OFFER}:1", "ESME_RTHROTTLED"), T0 + 6)
    assert records(out, RecordKind.FAILED)
    view = e.offer(OFFER)
    assert view is not None and view.state is OfferState.OPEN


def test_offer_expires_and_a_late_answer_is_refused_clearly() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    e.handle(DeliveryReported(f"{OFFER}:0", True), T0 + 2)
    e.handle(Tick(), T0 + 602)  # the SMS
    assert e.next_deadline() == T0 + 602 + 1800  # its hard cap: no receipt
    assert actions(e.handle(Tick(), T0 + 602 + 1800)) == []  # every step done: the offer stands
    view = e.offer(OFFER)
    assert view is not None and view.state is OfferState.OPEN
    assert e.next_deadline() == T0 + 1 + 86400  # 24 h from the first contact
    out = e.handle(Tick(), T0 + 1 + 86400)
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "expired"
    out = e.handle(Responded("late", MSISDN, ResponseChannel.USSD, option_id="*123*200#"), T0 + 90000)
    assert not any(isinstance(c, Activate) for c in out)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and reply.text == "Sorry, this offer has expired."


def test_answer_after_expiry_before_the_tick_is_refused() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    out = e.handle(Responded("ok", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 1 + 86400)
    assert not any(isinstance(c, Activate) for c in out)
    assert [r.detail["reason"] for r in records(out, RecordKind.REJECTED_RESPONSE)] == ["expired"]


def test_declining_the_dialog_ends_the_offer() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    out = e.handle(Responded("no", MSISDN, ResponseChannel.STK_DECLINED, offer_id=OFFER), T0 + 20)
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "declined"
    assert e.next_deadline() is None


def test_option_not_offered_is_refused() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)  # 100 and 200 MB affordable
    out = e.handle(Responded("x", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 20)
    assert not any(isinstance(c, Activate) for c in out)


def test_activation_failure_closes_and_tells_the_subscriber() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    e.handle(Responded("ok", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 20)
    out = e.handle(ActivationFailed(OFFER, "billing refused"), T0 + 21)
    (sms,) = actions(out)
    assert isinstance(sms, SendSms) and "could not activate" in sms.text
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "failed"


def test_scoring_timeout_without_fallback_makes_no_offer() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    out = e.handle(Tick(), T0 + 5)
    assert actions(out) == []
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "suppressed"
    # the answer arriving after the timeout changes nothing
    assert scored(e, T0 + 6) == []


def test_scoring_failure_with_fallback_offers_what_the_fallback_allows() -> None:
    campaign = {**NEW_UPSELL, "scoring": {"timeout": "5s", "fallback": {"credit_limit": "60"}}}
    e = engine(campaigns=[campaign])
    e.handle(exhausted(), T0)
    out = e.handle(CreditFailed(f"{OFFER}:score", MSISDN, "HTTP 503"), T0 + 1)
    (push,) = actions(out)
    assert isinstance(push, PushStk) and [o.package_id for o in push.options] == ["data-100mb"]


def test_re_delivered_trigger_changes_nothing() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    assert e.handle(exhausted(), T0 + 1) == []


def test_second_trigger_while_an_offer_is_open_is_suppressed() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    out = e.handle(exhausted(trigger_id="other-period"), T0 + 10)
    assert actions(out) == []
    assert "still open" in str(records(out, RecordKind.SUPPRESSED)[0].detail["reason"])


def test_quiet_hours_defer_the_push_to_the_local_morning() -> None:
    e = engine()
    night = T0 + 10 * 3600  # 22:00 in Nairobi
    e.handle(exhausted(at=night), night)
    out = scored(e, night + 1)
    assert not any(isinstance(c, PushStk) for c in out)
    (deferred,) = records(out, RecordKind.DEFERRED)  # type: ignore[arg-type]
    morning = T0 + 20 * 3600  # 08:00 the next day in Nairobi
    assert deferred.detail["until"] == morning
    assert e.next_deadline() == morning
    (push,) = actions(e.handle(Tick(), morning))
    assert isinstance(push, PushStk)


def test_do_not_disturb_suppresses_every_push() -> None:
    e = engine()
    dnd = "254700000999"
    e.handle(exhausted(msisdn=dnd), T0)
    out = e.handle(CreditScored(f"{offer_id('upsell-exhaustion', f'{dnd}/data-1gb/p1/100')}:score", dnd, Decimal(0), Decimal(100)), T0 + 1)  # fmt: skip
    assert not any(isinstance(c, PushStk | SendSms) for c in out)
    reasons = [r.detail["reason"] for r in records(out, RecordKind.SUPPRESSED)]
    assert reasons[:2] == ["do not disturb", "do not disturb"]


def test_eligibility_is_checked_again_at_send_time() -> None:
    campaign = {**NEW_UPSELL, "eligibility": {"segments": ["prepaid"]}}
    e = engine(campaigns=[campaign])
    e.handle(ProfileUpdated(Profile(MSISDN, segment="prepaid")), T0 - 10)
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    e.handle(ProfileUpdated(Profile(MSISDN, segment="postpaid")), T0 + 100)
    out = e.handle(Tick(), T0 + 1 + 1800)
    assert not any(isinstance(c, SendSms) for c in out)
    assert "no longer eligible" in str(records(out, RecordKind.CLOSED)[0].detail["reason"])


def test_not_eligible_at_trigger_time_is_recorded_with_the_reason() -> None:
    campaign = {**NEW_UPSELL, "eligibility": {"min_tenure_days": 90}}
    e = engine(campaigns=[campaign])
    e.handle(ProfileUpdated(Profile(MSISDN, tenure_days=30)), T0 - 10)
    out = e.handle(exhausted(), T0)
    assert actions(out) == []
    assert records(out, RecordKind.SUPPRESSED)[0].detail["reason"] == "tenure 30 days < 90"


def test_handset_without_sim_toolkit_gets_the_sms_at_once() -> None:
    e = engine()
    e.handle(ProfileUpdated(Profile(MSISDN, stk_capable=False)), T0 - 10)
    e.handle(exhausted(), T0)
    out = scored(e, T0 + 1)
    (sms,) = actions(out)  # type: ignore[arg-type]
    assert isinstance(sms, SendSms)


def test_old_scenario_info_sms_then_credit_offer_after_24h() -> None:
    e = engine(campaigns=[OLD_UPSELL])
    trigger = TriggerRaised("t90", TriggerKind.THRESHOLD, MSISDN, T0, package_id="data-1gb", level=90)
    e.handle(trigger, T0)
    key = offer_id("upsell-threshold-old", "t90")
    out = e.handle(CreditScored(f"{key}:score", MSISDN, Decimal(500), Decimal(400)), T0 + 1)
    (info,) = actions(out)
    assert (
        isinstance(info, SendSms) and info.text == "You have used 90% of your data." and info.offer_id is None
    )
    assert e.next_deadline() == T0 + 1 + 86400
    (offer_sms,) = actions(e.handle(Tick(), T0 + 1 + 86400))
    assert isinstance(offer_sms, SendSms)
    assert offer_sms.text == "Get 1000 MB on credit: dial *123*1000#"  # payment: credit only


def test_threshold_campaign_ignores_lower_levels() -> None:
    e = engine(campaigns=[OLD_UPSELL])
    out = e.handle(
        TriggerRaised("t80", TriggerKind.THRESHOLD, MSISDN, T0, package_id="data-1gb", level=80), T0
    )
    assert actions(out) == []


EXPERIMENT = {
    "kind": "experiment",
    "id": "upsell-ab",
    "salt": "upsell-ab-2026",
    "arms": [
        {"name": "new", "share": 40, "campaign": "upsell-exhaustion"},
        {"name": "control", "share": 60, "control": True},
    ],
}


def test_control_arm_is_recorded_and_never_contacted() -> None:
    e = engine(experiments=[EXPERIMENT])
    seen = {"new": 0, "control": 0}
    for index in range(200):
        msisdn = f"2547{index:08d}"
        out = e.handle(exhausted(msisdn=msisdn), T0)
        (assigned,) = records(out, RecordKind.ASSIGNED)
        seen[str(assigned.variant)] += 1
        if assigned.variant == "control":
            assert actions(out) == [] and assigned.detail["control"] is True
        else:
            assert isinstance(actions(out)[0], QueryCredit)
    assert 50 <= seen["new"] <= 110 and seen["new"] + seen["control"] == 200


def test_assignment_is_deterministic_across_engines() -> None:
    first = engine(experiments=[EXPERIMENT])
    second = engine(experiments=[EXPERIMENT])
    for index in range(50):
        msisdn = f"2547{index:08d}"
        a = records(first.handle(exhausted(msisdn=msisdn), T0), RecordKind.ASSIGNED)
        b = records(second.handle(exhausted(msisdn=msisdn), T0), RecordKind.ASSIGNED)
        assert a == b


def test_delayed_arm_waits_48h_before_scoring() -> None:
    experiment = {
        **EXPERIMENT,
        "arms": [{"name": "new_48h", "share": 100, "campaign": "upsell-exhaustion", "delay": "48h"}, {"name": "control", "share": 0, "control": True}],
    }  # fmt: skip
    e = engine(experiments=[experiment])
    out = e.handle(exhausted(), T0)
    assert actions(out) == []
    assert e.next_deadline() == T0 + 48 * 3600
    out = e.handle(Tick(), T0 + 48 * 3600)
    assert actions(out) == [QueryCredit(f"{OFFER}:score", MSISDN, 5.0)]


def test_arbitration_priority_then_value() -> None:
    cheap = {**NEW_UPSELL, "id": "cheap", "priority": 10, "offer": {"packages": ["data-100mb"]}}
    dear = {**NEW_UPSELL, "id": "dear", "priority": 10}
    low = {**NEW_UPSELL, "id": "low", "priority": 1}
    e = engine(campaigns=[cheap, low, dear])
    out = e.handle(exhausted(), T0)
    (eligible,) = records(out, RecordKind.ELIGIBLE)
    assert eligible.campaign_id == "dear"
    lost = {r.campaign_id: r.detail["reason"] for r in records(out, RecordKind.SUPPRESSED)}
    assert lost == {"cheap": "arbitration: dear goes first", "low": "arbitration: dear goes first"}


def test_package_ends_in_n_days_follows_the_source_off_by_one() -> None:
    ending = {
        "kind": "campaign",
        "id": "ending",
        "trigger": {"kind": "package_ending", "days_before": [8]},
        "eligibility": {"ends_in_days": 7},
        "journey": [{"channel": "sms", "options": "none", "text": "Your package ends soon."}],
    }
    e = engine(campaigns=[ending])
    today = "2026-06-01"  # T0 is 12:00 on 2026-06-01 in Nairobi

    def trigger(msisdn: str, end: str) -> list[object]:
        e.handle(ProfileUpdated(Profile(msisdn, packages=(ActivePackage("monthly", today, end),))), T0)
        return list(
            e.handle(
                TriggerRaised(
                    f"{msisdn}-end",
                    TriggerKind.PACKAGE_ENDING,
                    msisdn,
                    T0,
                    "monthly",
                    attributes={"days_left": "8"},
                ),
                T0,
            )
        )

    assert any(isinstance(c, SendSms) for c in trigger("254711000001", "2026-06-09"))  # today + 8
    assert not any(isinstance(c, SendSms) for c in trigger("254711000002", "2026-06-08"))  # today + 7


def test_engine_refuses_a_set_with_cross_file_errors() -> None:
    bad = {**NEW_UPSELL, "offer": {"packages": ["data-2gb"]}}
    from protocols.errors import ConfigError

    with pytest.raises(ConfigError, match="data-2gb"):
        Engine(campaign_set(campaigns=[bad]))


def test_a_re_delivered_response_is_handled_once() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    answer = Responded("mo-7", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER)
    first = e.handle(answer, T0 + 20)
    assert any(isinstance(c, Activate) for c in first)
    assert e.handle(answer, T0 + 21) == []  # not "already taken" about their own single answer


def test_control_subscriber_counts_once_per_window() -> None:
    experiment = {**EXPERIMENT, "arms": [{"name": "new", "share": 0, "campaign": "upsell-exhaustion"}, {"name": "control", "share": 100, "control": True}]}  # fmt: skip
    e = engine(experiments=[experiment])
    assert records(e.handle(exhausted(trigger_id="a"), T0), RecordKind.ASSIGNED)
    assert not records(e.handle(exhausted(trigger_id="b"), T0 + 3600), RecordKind.ASSIGNED)
    # the window: the journey's waits (30 min + 30 min) and the offer's 24 h
    assert records(e.handle(exhausted(trigger_id="c"), T0 + 3600 * 26), RecordKind.ASSIGNED)


def test_late_response_to_a_closed_offer_keeps_its_variant() -> None:
    experiment = {**EXPERIMENT, "arms": [{"name": "new", "share": 100, "campaign": "upsell-exhaustion"}, {"name": "control", "share": 0, "control": True}]}  # fmt: skip
    e = engine(experiments=[experiment])
    e.handle(exhausted(), T0)
    scored(e, T0 + 1)
    e.handle(Responded("no", MSISDN, ResponseChannel.STK_DECLINED, offer_id=OFFER), T0 + 5)
    out = e.handle(Responded("ok", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 6)
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.variant == "new" and rejected.campaign_id == "upsell-exhaustion"


def test_an_answer_naming_an_informational_journey_is_refused() -> None:
    info = {
        "kind": "campaign",
        "id": "roaming",
        "trigger": {"kind": "roaming_registered"},
        "journey": [
            {"channel": "sms", "options": "none", "text": "Welcome", "purpose": "transactional"},
            {"channel": "sms", "options": "none", "text": "Tips", "after": "1h"},
        ],
    }
    e = engine(campaigns=[info])
    e.handle(TriggerRaised("roam-1", TriggerKind.ROAMING_REGISTERED, MSISDN, T0), T0)
    key = offer_id("roaming", "roam-1")
    assert e.offer(key) is not None  # waiting for the second message
    out = e.handle(Responded("x", MSISDN, ResponseChannel.STK_OK, offer_id=key), T0 + 5)
    assert not any(isinstance(c, Activate) for c in out)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and not reply.accepted


def test_offers_due_in_one_tick_go_in_deadline_order_whatever_was_asked_before() -> None:
    def run(peek: bool) -> list[str]:
        e = engine()
        first, second = "254700000001", "254700000002"
        e.handle(exhausted(msisdn=first), T0)
        e.handle(exhausted(msisdn=second), T0 + 10)
        for msisdn, at in ((first, T0 + 11), (second, T0 + 12)):
            key = offer_id("upsell-exhaustion", f"{msisdn}/data-1gb/p1/100")
            e.handle(CreditScored(f"{key}:score", msisdn, Decimal(0), Decimal(100)), at)
        # the first offer's receipt comes late: its wait ends after the second offer's hard cap
        key = offer_id("upsell-exhaustion", f"{first}/data-1gb/p1/100")
        e.handle(DeliveryReported(f"{key}:0", True), T0 + 1500)
        if peek:
            e.next_deadline()
        return [c.msisdn for c in e.handle(Tick(), T0 + 5000) if isinstance(c, SendSms)]

    assert run(peek=False) == run(peek=True) == ["254700000002", "254700000001"]


def test_an_unknown_time_zone_falls_back_to_the_policy_default() -> None:
    """Billing names a zone this system does not know: the engine decides as for the policy's default
    zone (as the contact policy does) instead of raising and losing the subscriber's events."""
    from pathlib import Path

    from campaign_core.model import ActivePackage, Profile, ProfileUpdated, TriggerKind, TriggerRaised
    from gateway.campaigns.loader import load_campaign_dir

    campaigns = load_campaign_dir(
        Path(__file__).resolve().parents[2] / "configs" / "campaigns", ussd_menus=None
    )
    now = 1_780_322_400.0  # 2026-06-01 17:00 in Nairobi
    package = (ActivePackage("data_1000mb", "2026-05-27", "2026-06-03"),)
    outputs = []
    for zone in ("Mars/Base", None):
        engine = Engine(campaigns)
        profile = Profile("254700000999", segment="prepaid", tenure_days=400, timezone=zone, packages=package)
        engine.handle(ProfileUpdated(profile), now)
        trigger = TriggerRaised(
            "t-1", TriggerKind.PACKAGE_ENDING, "254700000999", now, "data_1000mb", None, {"days_left": "2"}
        )
        outputs.append(engine.handle(trigger, now))
    assert outputs[0] == outputs[1]
    assert any(getattr(command, "kind", None) is not None for command in outputs[0])  # it decided something

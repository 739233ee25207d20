"""Gaps in the decision trail found by exploratory testing (campaign_core/engine.py): what ``tgw explain``
must show for a trigger of a paused campaign, an offer a reload drops, and what a subscriber is told
when they dial the code of an offer whose activation failed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

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

from campaign_core.codec import event_from_json, event_to_json
from campaign_core.engine import Engine
from campaign_core.model import (
    ActivationFailed,
    CreditScored,
    OfferDropped,
    RecordKind,
    Reply,
    Responded,
    ResponseChannel,
    SendSms,
    Tick,
    TriggerKind,
    TriggerRaised,
    offer_id,
)

OFFER = offer_id("upsell-exhaustion", f"{MSISDN}/data-1gb/p1/100")
OLD_OFFER = offer_id("upsell-threshold-old", f"{MSISDN}/data-1gb/p1/90")


def through_json(data: Any) -> Any:
    return json.loads(json.dumps(data))


def threshold(at: float = T0) -> TriggerRaised:
    return TriggerRaised(f"{MSISDN}/data-1gb/p1/90", TriggerKind.THRESHOLD, MSISDN, at, "data-1gb", 90)


def failed_activation(e: Engine) -> None:
    """The reference offer accepted on the dialog and refused by billing (closed "failed")."""
    e.handle(exhausted(), T0)
    e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(2000)), T0 + 1)
    e.handle(Responded("ok", MSISDN, ResponseChannel.STK_OK, offer_id=OFFER), T0 + 20)
    out = e.handle(ActivationFailed(OFFER, "billing refused the activation (HTTP 402)"), T0 + 21)
    assert records(out, RecordKind.CLOSED)[0].detail["outcome"] == "failed"


# --- a paused campaign ------------------------------------------------------------------------------


def test_a_trigger_of_a_paused_campaign_is_recorded_as_suppressed() -> None:
    """Before: the paused campaign was only disabled, and its trigger left no record at all (``tgw
    explain`` said "nothing recorded")."""
    e = Engine(campaign_set(), paused={"upsell-exhaustion"})
    out = e.handle(exhausted(), T0)
    assert actions(out) == []
    assert [r.kind for r in records(out)] == [RecordKind.TRIGGER, RecordKind.SUPPRESSED]
    (suppressed,) = records(out, RecordKind.SUPPRESSED)
    assert suppressed.campaign_id == "upsell-exhaustion" and suppressed.offer_id is None
    assert suppressed.detail["reason"] == "paused" and suppressed.detail["stage"] == "trigger"
    assert e.open_offers(MSISDN) == [] and e.next_deadline() is None
    assert e.handle(exhausted(), T0 + 1) == []  # the same trigger again: already decided


def test_a_paused_campaign_keeps_its_level_and_leaves_the_others_running() -> None:
    e = Engine(campaign_set(campaigns=[NEW_UPSELL, OLD_UPSELL]), paused={"upsell-threshold-old"})
    low = TriggerRaised(f"{MSISDN}/data-1gb/p1/80", TriggerKind.THRESHOLD, MSISDN, T0, "data-1gb", 80)
    assert e.handle(low, T0) == []  # below the campaign's level: it would not have started anyway
    paused = e.handle(threshold(), T0)
    assert [(r.kind, r.campaign_id) for r in records(paused)] == [
        (RecordKind.TRIGGER, None),
        (RecordKind.SUPPRESSED, "upsell-threshold-old"),
    ]
    running = e.handle(exhausted(), T0 + 1)  # the campaign that is not paused goes on as before
    assert [r.kind for r in records(running)] == [RecordKind.TRIGGER, RecordKind.ELIGIBLE]


def test_an_offer_in_progress_runs_on_when_its_campaign_is_paused() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    paused = Engine(campaign_set(), paused={"upsell-exhaustion"})
    assert paused.restore(through_json(e.snapshot())) == []
    out = paused.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100)), T0 + 1)
    assert records(out, RecordKind.CONTACT)


def test_a_paused_campaign_in_an_experiment_records_its_arm_and_no_control_trial() -> None:
    """The treated subscribers' trail says which arm the paused campaign would have given them; the
    control arm counts no trial while the campaign it is compared with starts nothing."""
    experiment = {
        "kind": "experiment",
        "id": "exp",
        "salt": "s1",
        "arms": [
            {"name": "new", "share": 50, "campaign": "upsell-exhaustion"},
            {"name": "control", "share": 50, "control": True},
        ],
    }
    e = Engine(campaign_set(experiments=[experiment]), paused={"upsell-exhaustion"})
    arms = set()
    for index in range(40):
        out = e.handle(exhausted(msisdn=f"2547{index:08d}"), T0)
        assert actions(out) == [] and not records(out, RecordKind.ELIGIBLE)
        assigned = records(out, RecordKind.ASSIGNED)
        if assigned:
            (suppressed,) = records(out, RecordKind.SUPPRESSED)
            assert assigned[0].variant == suppressed.variant == "new"
            assert suppressed.detail == {"reason": "paused", "stage": "trigger"}
            arms.add("new")
        else:
            assert [r.kind for r in records(out)] == [RecordKind.TRIGGER]  # control: no trial
            arms.add("control")
    assert arms == {"new", "control"}


# --- a redial after a failed activation -------------------------------------------------------------


def test_redialling_a_failed_offer_says_it_failed_not_expired() -> None:
    """Before: "Sorry, this offer has expired." to a subscriber whose activation had failed a minute
    earlier. The answer is the failure text of the option that failed, and the trail says "failed"."""
    e = engine()
    failed_activation(e)
    out = e.handle(Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 60)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and not reply.accepted
    assert reply.text == "Sorry, we could not activate 1000 MB. You have not been charged."
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.detail["reason"] == "failed" and rejected.offer_id == OFFER


def test_the_failed_option_is_kept_across_a_snapshot() -> None:
    e = engine()
    failed_activation(e)
    fresh = engine()
    assert fresh.restore(through_json(e.snapshot())) == []
    assert fresh.snapshot() == through_json(e.snapshot())
    out = fresh.handle(Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 60)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and "could not activate 1000 MB" in reply.text


def test_a_snapshot_without_the_failed_option_still_restores() -> None:
    """A snapshot written before the failed option was kept (five fields per closed offer) restores;
    a redial is then answered as before (the option is not known)."""
    e = engine()
    failed_activation(e)
    old = through_json(e.snapshot())
    for row in old["subscribers"]:
        row[5] = [entry[:5] for entry in row[5]]
    fresh = engine()
    assert fresh.restore(old) == []
    out = fresh.handle(Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 60)
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.detail["reason"] == "failed"


def test_an_expired_offer_is_still_answered_expired() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(2000)), T0 + 1)
    e.handle(Responded("no", MSISDN, ResponseChannel.STK_DECLINED, offer_id=OFFER), T0 + 20)
    out = e.handle(Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 60)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and reply.text == "Sorry, this offer has expired."


# --- an offer a reload drops ------------------------------------------------------------------------


def test_a_dropped_offer_gets_its_end_in_the_trail() -> None:
    """Before: ``restore`` returned the ids only, and nothing recorded the offers' end. Now it keeps an
    ``OfferDropped`` event per offer with the reason; handled, it writes the CLOSED record."""
    e = engine(campaigns=[NEW_UPSELL, OLD_UPSELL])
    e.handle(exhausted(), T0)
    e.handle(threshold(), T0 + 30)
    fresh = Engine(campaign_set(campaigns=[NEW_UPSELL]))
    assert fresh.restore(through_json(e.snapshot())) == [OLD_OFFER]
    (event,) = fresh.dropped
    assert event == OfferDropped(
        OLD_OFFER,
        MSISDN,
        "upsell-threshold-old",
        None,
        "campaign upsell-threshold-old is no longer in the campaign directory",
    )
    assert event_from_json(through_json(event_to_json(event))) == event  # it is stored as any event
    out = fresh.handle(event, T0 + 40)
    assert actions(out) == []
    (closed,) = records(out)
    assert closed.kind is RecordKind.CLOSED and closed.offer_id == OLD_OFFER
    assert closed.campaign_id == "upsell-threshold-old" and closed.msisdn == MSISDN
    assert dict(closed.detail) == {"outcome": "dropped", "reason": event.reason}
    assert [v.offer_id for v in fresh.open_offers(MSISDN)] == [OFFER]  # the other offer goes on


def sms_sent_then_campaign_gone() -> Engine:
    """The reference offer's SMS went out listing every option; a reload then left its campaign out."""
    e = engine()
    e.handle(exhausted(), T0)
    e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(2000)), T0 + 1)
    out = e.handle(Tick(), T0 + 1 + 1800)  # no receipt: the hard cap moves on to the SMS
    assert any(isinstance(c, SendSms) and "*123*1000#" in c.text for c in actions(out))
    fresh = Engine(campaign_set(campaigns=[OLD_UPSELL]))
    assert fresh.restore(through_json(e.snapshot())) == [OFFER]
    (event,) = fresh.dropped
    fresh.handle(event, T0 + 1900)
    return fresh


def test_dialling_a_dropped_offers_code_says_it_ended() -> None:
    """Before: "You have no open offer" to a subscriber dialling a code from the SMS they had just got,
    and a trail naming no offer. The restore now remembers the dropped offer as closed ("dropped"),
    as ``_close`` does when a replay still has it: the answer is the expired text, the trail names
    the offer, its campaign and why."""
    e = sms_sent_then_campaign_gone()
    out = e.handle(Responded("r1", MSISDN, ResponseChannel.USSD, option_id="*123*1000#"), T0 + 2000)
    (reply,) = actions(out)
    assert isinstance(reply, Reply) and not reply.accepted
    assert reply.text == "Sorry, this offer has expired."
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.detail["reason"] == "dropped"
    assert (rejected.offer_id, rejected.campaign_id) == (OFFER, "upsell-exhaustion")
    # a code that offer never listed still finds no offer
    out = e.handle(Responded("r2", MSISDN, ResponseChannel.USSD, option_id="*123*999#"), T0 + 2001)
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.detail["reason"] == "no open offer" and rejected.offer_id is None


def test_a_dropped_offer_stays_remembered_across_a_snapshot() -> None:
    e = sms_sent_then_campaign_gone()
    again = Engine(campaign_set(campaigns=[OLD_UPSELL]))
    assert again.restore(through_json(e.snapshot())) == [] and again.dropped == ()
    out = again.handle(Responded("r1", MSISDN, ResponseChannel.USSD, option_id="data-500mb"), T0 + 2000)
    (rejected,) = records(out, RecordKind.REJECTED_RESPONSE)
    assert rejected.detail["reason"] == "dropped" and rejected.offer_id == OFFER


def test_an_offer_whose_step_is_gone_is_dropped_with_that_reason() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    e.handle(CreditScored(f"{OFFER}:score", MSISDN, Decimal(0), Decimal(100)), T0 + 1)
    out = e.handle(Tick(), T0 + 1 + 1800)  # no receipt: the hard cap moves on to the SMS
    assert any(isinstance(c, SendSms) for c in actions(out))
    shorter = {**NEW_UPSELL, "journey": NEW_UPSELL["journey"][:1]}
    fresh = Engine(campaign_set(campaigns=[shorter]))
    assert fresh.restore(through_json(e.snapshot())) == [OFFER]
    assert [d.reason for d in fresh.dropped] == ["campaign upsell-exhaustion no longer has journey step 2"]


def test_a_replayed_drop_closes_the_offer_if_the_engine_still_has_it() -> None:
    """A replay of the event log under a directory that kept the campaign: the stored drop closes the
    offer as it did live, so the journey does not go on in the replay."""
    e = engine()
    e.handle(exhausted(), T0)
    out = e.handle(OfferDropped(OFFER, MSISDN, "upsell-exhaustion", None, "gone"), T0 + 2)
    assert [r.kind for r in records(out)] == [RecordKind.SUPPRESSED, RecordKind.CLOSED]
    assert records(out, RecordKind.CLOSED)[0].detail == {"outcome": "dropped", "reason": "gone"}
    assert e.open_offers(MSISDN) == [] and e.next_deadline() is None


def test_a_restore_that_drops_nothing_has_no_drops() -> None:
    e = engine()
    e.handle(exhausted(), T0)
    fresh = engine()
    assert fresh.restore(through_json(e.snapshot())) == [] and fresh.dropped == ()

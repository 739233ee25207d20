"""Scenario files, the simulated population and the behaviour model (simulators/scenario.py, issue #8).

The shipped scenarios load; a mistake names file, line and reason; the population is a function of the
seed (and of each MSISDN alone); every behaviour decision is a function of (seed, subscriber, key), not of
the order it is asked in; and what is drawn matches the configured shares. The statistical checks use a
few thousand seeded draws with tolerances of about four standard deviations: being seeded, they cannot
flake, and the tolerance keeps them meaningful if a draw's details change.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from campaign_core.config import CatalogueConfig
from gateway.campaigns.loader import load_campaign_dir
from gateway.configfile import parse_yaml_model
from protocols.errors import ConfigError
from simulators.scenario import (
    Action,
    Behaviour,
    ChoiceDistribution,
    ExponentialDistribution,
    LogNormalDistribution,
    Scenario,
    SimSubscriber,
    assumptions,
    build_population,
    load_scenario,
    profile,
    rng,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "configs" / "scenarios"
DEMO = SCENARIOS / "upsell_ab.yaml"
SMALL = SCENARIOS / "small.yaml"


@pytest.fixture(scope="module")
def catalogue() -> CatalogueConfig:
    return load_campaign_dir(ROOT / "configs" / "campaigns", ussd_menus=None).catalogue


@pytest.fixture(scope="module")
def demo(catalogue: CatalogueConfig) -> Scenario:
    return load_scenario(DEMO, catalogue=catalogue)


def _sized(scenario: Scenario, subscribers: int, **changes: object) -> Scenario:
    return scenario.model_copy(update={"subscribers": subscribers, **changes})


# --- loading -------------------------------------------------------------------------------------


def test_shipped_scenarios_load_against_the_shipped_catalogue() -> None:
    demo = load_scenario(DEMO, base=ROOT)
    small = load_scenario(SMALL, base=ROOT)
    assert demo.name == "upsell_ab"
    assert small.name == "small"
    assert small.subscribers == 200
    assert small.days == 7
    assert demo.start == datetime(2026, 6, 1, tzinfo=ZoneInfo("Africa/Nairobi"))
    # quota, validity and price come from the catalogue
    monthly = next(p for p in demo.population.packages if p.package == "monthly_1gb")
    assert (monthly.quota_mb, monthly.validity_days, monthly.price, monthly.recurring) == (
        1000,
        30,
        Decimal("250.00"),
        True,
    )
    assert demo.behaviour.stk_dialog.ok == pytest.approx(0.62)
    assert demo.behaviour.interest_half_life == 12 * 3600
    assert len(build_population(small)) == 200


def test_the_name_defaults_to_the_file_stem(tmp_path: Path, catalogue: CatalogueConfig) -> None:
    path = tmp_path / "my_run.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace("name: upsell_ab\n", ""), encoding="utf-8")
    assert load_scenario(path, catalogue=catalogue).name == "my_run"


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "reason", "at"),
    [
        ("ok: 62%", "ok: 0.62", "ambiguous: write 62% or 0.62%", "ok: 0.62"),
        ("ok: 62%", "ok: 162%", "not between 0% and 100%", "ok: 162%"),
        # a rule across fields is reported at the mapping that holds them (the line of its first key)
        ("decline: 13%", "decline: 53%", "ok and decline add up to 115%", "ok: 62%"),
        ("share: 15%", "share: 16%", "package shares add up to 101%", "- package: monthly_1gb"),
        ("package: data_200mb", "package: data_999mb", "'data_999mb' is not in the catalogue", "data_999mb"),
        ("days: 30 ", "days: 0 ", "days: Input should be greater than or equal to 1", "days: 0 "),
        (
            '"2026-06-01T00:00:00+03:00"',
            '"2026-06-01T00:00:00"',
            "start: Input should have timezone",
            "start:",
        ),
        ("timezone: Africa/Nairobi", "timezone: Africa/Atlantis", "not an IANA time zone", "Atlantis"),
        ("tenure_days: {kind: lognormal", "tenure_days: {kind: lognorm", "'lognorm'", "tenure_days:"),
        ("amount: {kind: choice", "amount: {kind: dice", "population.top_up.amount", "kind: dice"),
        (
            "median: 40, sigma: 0.8, max: 900",
            "median: 40, sigma: -1, max: 900",
            "greater than or",
            "sigma: -1",
        ),
        (
            "balance: {kind: lognormal, median: 30,",
            "balance: {kind: lognormal, median: 30, mean: 30,",
            "median or",
            "balance:",
        ),
        (
            "values: [50, 100, 200, 500], weights: [40, 30, 20, 10]",
            "values: [50, 100], weights: [1]",
            "1 weights",
            "amount: {kind: choice, values: [50, 100]",
        ),
        ("largest: 45%", "largest: 55%", "add up to 110%", "largest: 55%"),
        (
            "interest_half_life: 12h",
            "interest_half_life: soon",
            "is not a duration",
            "interest_half_life: soon",
        ),
        ("usage_factor: 0.5 ", "usage_factor: -0.5 ", "greater than or equal to 0", "usage_factor: -0.5"),
        (
            "stk_capable: 80%",
            "stk_capable: 80%\n  colour: blue",
            "colour: Extra inputs are not permitted",
            "colour:",
        ),
    ],
)
def test_a_mistake_names_the_file_and_line(  # noqa: PLR0917 - parametrized
    tmp_path: Path, catalogue: CatalogueConfig, old: str, new: str, reason: str, at: str
) -> None:
    """``reason``: in the error's text; ``at``: a text on the line the error must name."""
    shipped = DEMO.read_text(encoding="utf-8")
    assert shipped.count(old) == 1
    text = shipped.replace(old, new, 1)
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, catalogue=catalogue)
    error = caught.value
    assert error.file == str(path)
    assert reason in error.reason
    assert error.line == _line_of(text, at)
    assert str(error).startswith(f"{path}:{error.line}: ")


def test_a_package_outside_the_catalogue_needs_its_own_quota(
    tmp_path: Path, catalogue: CatalogueConfig
) -> None:
    text = DEMO.read_text(encoding="utf-8").replace(
        "    - package: data_200mb\n",
        '    - package: legacy_2gb\n      quota_mb: 2000\n      validity_days: 30\n      price: "300.00"\n'
        "      recurring: false\n",
    )
    path = tmp_path / "legacy.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path, catalogue=catalogue)
    legacy = next(s for s in build_population(_sized(scenario, 400)) if s.package.package_id == "legacy_2gb")
    assert legacy.package.quota_mb == 2000
    assert legacy.package.price == Decimal("300.00")


def test_msisdns_must_fit_the_number(tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8").replace('first_msisdn: "254700000000"', 'first_msisdn: "99999"')
    with pytest.raises(ConfigError, match="overflow the number"):
        parse_yaml_model(text, Scenario, "x.yaml")


def test_an_unresolved_scenario_refuses_to_build() -> None:
    scenario = parse_yaml_model(DEMO.read_text(encoding="utf-8"), Scenario, str(DEMO))
    with pytest.raises(ConfigError, match="not resolved"):
        build_population(scenario)


@pytest.mark.parametrize(
    ("written", "fraction"), [("62%", 0.62), ("0.5%", 0.005), (62, 0.62), (0, 0.0), (1, 0.01)]
)
def test_percentages(written: object, fraction: float, demo: Scenario) -> None:
    data = demo.model_dump(by_alias=True)
    data["behaviour"]["sms_offer"]["dial"] = written
    assert Scenario.model_validate(data).behaviour.sms_offer.dial == pytest.approx(fraction)


# --- the population ------------------------------------------------------------------------------


def test_the_population_is_a_function_of_the_seed(demo: Scenario) -> None:
    scenario = _sized(demo, 300)
    first = build_population(scenario)
    assert first == build_population(scenario)
    other = build_population(_sized(demo, 300, seed=demo.seed + 1))
    assert [s.msisdn for s in other] == [s.msisdn for s in first]
    assert sum(a != b for a, b in zip(first, other, strict=True)) == 300  # every subscriber redrawn


def test_a_larger_population_only_adds_subscribers(demo: Scenario) -> None:
    small = build_population(_sized(demo, 50))
    large = build_population(_sized(demo, 500))
    assert large[:50] == small
    assert len({s.msisdn for s in large}) == 500
    assert large[0].msisdn == demo.first_msisdn
    assert large[-1].msisdn == str(int(demo.first_msisdn) + 499)


def test_population_shares_follow_the_scenario(demo: Scenario) -> None:
    people = build_population(_sized(demo, 4000))
    n = len(people)
    for share in demo.population.packages:
        drawn = sum(s.package.package_id == share.package for s in people) / n
        assert drawn == pytest.approx(share.share, abs=0.03), share.package
    assert sum(s.stk_capable for s in people) / n == pytest.approx(0.80, abs=0.03)
    # data use: lognormal with a mean of 45 MB (clamped at 1000, which hardly matters)
    assert sum(s.usage.mean_mb_per_day for s in people) / n == pytest.approx(45, rel=0.08)
    balances = sorted(s.balance for s in people)
    assert balances[n // 2] == pytest.approx(Decimal(30), rel=Decimal("0.1"))  # the median
    assert all(Decimal(0) <= s.balance <= Decimal(2000) for s in people)
    assert all(s.balance == s.balance.quantize(Decimal("0.01")) for s in people)
    amounts = {s.top_up.amount for s in people}
    assert amounts == {Decimal("50.00"), Decimal("100.00"), Decimal("200.00"), Decimal("500.00")}
    assert all(1 <= s.top_up.interval_days <= 45 for s in people)
    assert all(0 <= s.top_up.first_in_days <= s.top_up.interval_days for s in people)


def test_packages_start_part_way_through_their_period(demo: Scenario) -> None:
    for sub in build_population(_sized(demo, 500)):
        package = sub.package
        assert package.period_start <= demo.start_time < package.period_end
        assert 0 <= package.used_mb_at_start <= 0.8 * package.quota_mb + 1e-9


def test_profile_is_billings_view_at_the_start(demo: Scenario) -> None:
    sub = build_population(_sized(demo, 1))[0]
    seen = profile(sub)
    assert seen.msisdn == sub.msisdn
    assert seen.stk_capable == sub.stk_capable
    assert seen.tenure_days == sub.tenure_days
    assert seen.timezone == "Africa/Nairobi"
    (package,) = seen.packages
    assert package.package_id == sub.package.package_id
    start = datetime.fromtimestamp(sub.package.period_start, ZoneInfo("Africa/Nairobi")).date()
    assert package.start_date == start.isoformat()
    assert (datetime.fromisoformat(package.end_date) - datetime.fromisoformat(package.start_date)).days == (
        sub.package.validity_days
    )


# --- behaviour -----------------------------------------------------------------------------------

OPTIONS = (1000, 500, 200, 100)  # as the SMS lists them: largest first


def _decisions(behaviour: Behaviour, sub: SimSubscriber, key: str) -> tuple[object, ...]:
    return (
        behaviour.stk_reaction(sub, key, OPTIONS),
        behaviour.sms_reaction(sub, key, OPTIONS, age_s=3600),
        behaviour.saves_after_warning(sub, key),
        behaviour.self_purchase(sub, key, OPTIONS),
        behaviour.daily_usage_mb(sub, 3),
        behaviour.top_ups(sub, behaviour.start.timestamp() + 30 * 86400),
    )


def test_decisions_do_not_depend_on_the_order_they_are_asked_in(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    people = build_population(_sized(demo, 200))
    asks = [(sub, f"offer-{k}") for sub in people for k in range(3)]
    forward = {(sub.msisdn, key): _decisions(behaviour, sub, key) for sub, key in asks}
    shuffled = asks[:]
    random.Random(5).shuffle(shuffled)
    backward = {}
    for sub, key in shuffled:
        behaviour.stk_reaction(sub, "noise", OPTIONS)  # other questions in between change nothing
        backward[(sub.msisdn, key)] = _decisions(behaviour, sub, key)
    assert backward == forward
    # a fresh Behaviour of the same scenario answers the same; another seed answers differently
    again = Behaviour.of(demo)
    assert all(_decisions(again, sub, key) == forward[(sub.msisdn, key)] for sub, key in asks[:30])
    other = Behaviour.of(demo.model_copy(update={"seed": 1}))
    assert sum(_decisions(other, sub, key) != forward[(sub.msisdn, key)] for sub, key in asks) > 500


def test_keys_are_independent_draws(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    sub = build_population(_sized(demo, 1))[0]
    actions = {behaviour.stk_reaction(sub, f"offer-{k}", OPTIONS).action for k in range(60)}
    assert actions == {Action.OK, Action.DECLINE, Action.IGNORE}


def _rates(reactions: list[object], n: int) -> dict[object, float]:
    out: dict[object, float] = {}
    for r in reactions:
        out[r] = out.get(r, 0) + 1 / n
    return out


def test_stk_dialog_shares_and_delays(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    people = build_population(_sized(demo, 4000))
    reactions = [behaviour.stk_reaction(sub, "o1", (1000,)) for sub in people]
    rates = _rates([r.action for r in reactions], len(people))
    assert rates[Action.OK] == pytest.approx(0.62, abs=0.03)
    assert rates[Action.DECLINE] == pytest.approx(0.13, abs=0.03)
    assert rates[Action.IGNORE] == pytest.approx(0.25, abs=0.03)
    answered = sorted(r.delay_s for r in reactions if r.action is not Action.IGNORE)
    assert answered[len(answered) // 2] == pytest.approx(40, rel=0.1)  # the configured median
    assert max(answered) <= 900
    assert all(r.option == 0 for r in reactions if r.accepted)  # a confirm dialog has one option
    assert all(r.option is None and r.delay_s == 0 for r in reactions if r.action is Action.IGNORE)


def test_sms_offer_and_option_choice_shares(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    people = build_population(_sized(demo, 4000))
    reactions = [behaviour.sms_reaction(sub, "o1", OPTIONS) for sub in people]
    dialled = [r for r in reactions if r.accepted]
    assert len(dialled) / len(people) == pytest.approx(0.18, abs=0.025)
    assert {r.action for r in reactions} == {Action.OK, Action.IGNORE}
    # the choice, over many offers to everyone (enough draws for the three shares)
    picks = [
        behaviour.sms_reaction(sub, f"o{k}", OPTIONS).option
        for sub in people[:1000]
        for k in range(20)
        if behaviour.sms_reaction(sub, f"o{k}", OPTIONS).accepted
    ]
    rates = _rates([OPTIONS[i] for i in picks if i is not None], len(picks))
    assert rates[1000] == pytest.approx(0.45, abs=0.04)  # largest
    assert rates[200] == pytest.approx(0.35, abs=0.04)  # the lower middle of four
    assert rates[100] == pytest.approx(0.20, abs=0.04)  # smallest
    assert 500 not in rates


def test_choice_follows_volume_not_position(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    sub = build_population(_sized(demo, 1))[0]
    for k in range(200):
        forward = behaviour.stk_reaction(sub, f"m{k}", (100, 200, 500))
        backward = behaviour.stk_reaction(sub, f"m{k}", (500, 200, 100))
        assert forward.action is backward.action
        if forward.accepted:
            assert forward.option is not None and backward.option is not None
            assert (100, 200, 500)[forward.option] == (500, 200, 100)[backward.option]


def test_interest_fades_with_the_offers_age(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    people = build_population(_sized(demo, 4000))
    assert behaviour.interest(0) == 1
    assert behaviour.interest(12 * 3600) == pytest.approx(0.5)
    late = sum(behaviour.stk_reaction(sub, "o1", (1000,), age_s=48 * 3600).accepted for sub in people)
    assert late / len(people) == pytest.approx(0.62 / 16, abs=0.012)
    # fading only moves takers to not taking: nobody accepts late who refused at once
    for sub in people[:500]:
        if behaviour.sms_reaction(sub, "o2", OPTIONS, age_s=86400).accepted:
            assert behaviour.sms_reaction(sub, "o2", OPTIONS).accepted
    timeless = Behaviour.of(
        demo.model_copy(update={"behaviour": demo.behaviour.model_copy(update={"interest_half_life": None})})
    )
    assert timeless.interest(10 * 86400) == 1


def test_saving_and_self_purchase_shares(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    people = build_population(_sized(demo, 4000))
    n = len(people)
    assert sum(behaviour.saves_after_warning(sub, "p1") for sub in people) / n == pytest.approx(
        0.30, abs=0.03
    )
    purchases = [behaviour.self_purchase(sub, "p1", OPTIONS) for sub in people]
    bought = [p for p in purchases if p is not None]
    assert len(bought) / n == pytest.approx(0.08, abs=0.015)
    assert all(0 <= p.delay_s <= 172800 and 0 <= p.option < len(OPTIONS) for p in bought)
    assert behaviour.self_purchase(people[0], "p1", ()) is None
    assert behaviour.saving_factor == 0.5
    assert behaviour.after_purchase_factor == pytest.approx(1.1)


def test_daily_use_averages_to_the_subscribers_mean_and_follows_the_hours(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    sub = build_population(_sized(demo, 1))[0]
    days = [behaviour.daily_usage_mb(sub, day) for day in range(3000)]
    assert sum(days) / len(days) == pytest.approx(sub.usage.mean_mb_per_day, rel=0.03)
    hours = behaviour.hourly_usage_mb(sub, 2)
    assert len(hours) == 24
    assert sum(hours) == pytest.approx(behaviour.daily_usage_mb(sub, 2))
    assert max(range(24), key=hours.__getitem__) == 20  # the profile's evening peak
    timed = behaviour.usage_hours(sub, 1)
    midnight = datetime(2026, 6, 2, tzinfo=ZoneInfo("Africa/Nairobi")).timestamp()
    assert [at for at, _ in timed] == [midnight + 3600 * h for h in range(24)]
    assert behaviour.day_start(sub, 1) == midnight
    assert [mb for _, mb in timed] == list(behaviour.hourly_usage_mb(sub, 1))


def test_local_hours_follow_a_clock_change(demo: Scenario) -> None:
    berlin = demo.model_copy(
        update={"timezone": "Europe/Berlin", "start": datetime(2026, 3, 28, tzinfo=ZoneInfo("Europe/Berlin"))}
    )
    behaviour = Behaviour.of(berlin)
    sub = build_population(_sized(berlin, 1))[0]
    assert sub.zone == "Europe/Berlin"
    # day 1 is 29 March 2026, when 02:00 becomes 03:00: 23 hours long
    hours = [at for at, _ in behaviour.usage_hours(sub, 1)]
    assert hours[0] == datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert behaviour.day_start(sub, 2) - behaviour.day_start(sub, 1) == 23 * 3600
    assert hours == sorted(hours)
    assert hours[3] - hours[1] == 3600  # 01:00 and 03:00 are an hour apart; 02:00 does not exist
    assert [at for at, _ in behaviour.usage_hours(sub, 0)][1:] == [
        behaviour.day_start(sub, 0) + 3600 * h for h in range(1, 24)
    ]


def test_top_ups_follow_the_habit(demo: Scenario) -> None:
    behaviour = Behaviour.of(demo)
    start = demo.start_time
    for sub in build_population(_sized(demo, 100)):
        top_ups = behaviour.top_ups(sub, demo.end_time)
        assert all(start <= t.at <= demo.end_time and t.amount == sub.top_up.amount for t in top_ups)
        if top_ups:
            assert top_ups[0].at == pytest.approx(start + sub.top_up.first_in_days * 86400)
        interval = sub.top_up.interval_days * 86400
        for a, b in itertools.pairwise(top_ups):
            assert 0.7 * interval - 1e-6 <= b.at - a.at <= 1.3 * interval + 1e-6


# --- distributions and the assumptions -----------------------------------------------------------


def test_lognormal_mean_and_median_are_two_ways_to_say_one_thing() -> None:
    by_median = LogNormalDistribution.model_validate({"kind": "lognormal", "median": 30, "sigma": 0.9})
    by_mean = LogNormalDistribution.model_validate(
        {"kind": "lognormal", "mean": 30 * math.exp(0.9**2 / 2), "sigma": 0.9}
    )
    assert by_median.mu == pytest.approx(by_mean.mu)
    assert by_median.mean() == pytest.approx(by_mean.mean())
    with pytest.raises(ValueError, match="median or mean"):
        LogNormalDistribution.model_validate({"kind": "lognormal", "sigma": 0.9})


def test_exponential_and_choice_distributions_through_behaviour(demo: Scenario) -> None:
    exponential = ExponentialDistribution.model_validate({"kind": "exponential", "mean": 100, "max": 1000})
    choice = ChoiceDistribution.model_validate({"kind": "choice", "values": [1, 2], "weights": [3, 1]})
    assert exponential.mean() == 100
    assert choice.mean() == pytest.approx(1.25)
    offer = demo.behaviour.sms_offer.model_copy(update={"delay_s": exponential})
    behaviour = Behaviour.of(
        demo.model_copy(update={"behaviour": demo.behaviour.model_copy(update={"sms_offer": offer})})
    )
    people = build_population(_sized(demo, 4000))
    delays = [r.delay_s for sub in people if (r := behaviour.sms_reaction(sub, "e", OPTIONS)).accepted]
    assert all(0 <= d <= 1000 for d in delays)
    assert sum(delays) / len(delays) == pytest.approx(100 * (1 - math.exp(-10)), rel=0.2)


def test_assumptions_state_every_behaviour_in_words(demo: Scenario) -> None:
    lines = assumptions(demo, "KES")
    text = "\n".join(lines)
    for expected in (
        "5000 subscribers",
        "seed 20260601",
        "62 % of subscribers who see a DSTK dialog",
        "13 % press No",
        "25 % ignore it",
        "median of 40 s",
        "18 % of subscribers who get an SMS offer",
        "45 % choose the largest",
        "halves for every 12 h",
        "48 h late 16 times less often",
        "30 % of subscribers who get a 90 % usage warning save data",
        "8 % of subscribers who run out of data",
        "80 % of handsets",
        "60 % monthly_1gb (1000 MB for 30 days, 250.00 KES, recurring)",
        "median of 30.00 KES",
        "110 % of their usual data",
    ):
        assert expected in text, expected
    assert "renews a recurring package" in text and "pay-as-you-go and not charged" in text
    assert len(lines) == 15


def test_rng_is_a_seeded_random_per_decision() -> None:
    a = rng(1, "254700000001", "k")
    assert a.random() == rng(1, "254700000001", "k").random()
    assert rng(1, "254700000001", "k").random() != rng(1, "254700000001", "j").random()
    assert rng(1, "254700000001", "k").random() != rng(2, "254700000001", "k").random()

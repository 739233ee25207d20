"""The campaign file schema (campaign_core.config): every rule refuses a bad value at the right file:line.

Each file kind starts from a small valid file; each case changes one line and expects the error at the
line of the value at fault (a rule of a whole mapping is reported at that mapping: a journey step, an
arm, the file), with a reason that names the mistake. The files go through
``gateway.configfile.load_yaml_model``, as the campaign loader reads them. The rules across files
(``CampaignSet.check``) are tested on the models directly here and through whole directories in
tests/gateway/test_campaign_loader.py.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from campaign_core.config import (
    CampaignConfig,
    CampaignSet,
    CatalogueConfig,
    CrossFileError,
    ExperimentConfig,
    PolicyConfig,
    parse_duration,
)
from campaign_core.model import Channel, OfferOption, Payment, TriggerKind
from campaign_core.texts import OPTION_FIELDS, TEXT_FIELDS, check_template, render_step_text
from gateway.configfile import load_yaml_model
from protocols.errors import ConfigError

CATALOGUE = """\
kind: catalogue
currency: KES
packages:
  - id: data_100mb
    volume_mb: 100
    price: "20.00"
    ussd_code: "*123*100#"
  - id: data_1000mb
    volume_mb: 1000
    price: "180.00"
    ussd_code: "*123*1000#"
    validity_days: 7
    recurring: false
"""

POLICY = """\
kind: policy
version: 1
default_timezone: Africa/Nairobi
caps:
  - {channel: sms, purpose: promotional, max: 2, per: day}
  - {purpose: subscriber_initiated, max: 10, per: day}
quiet_hours:
  start: "21:00"
  end: "08:00"
  action: defer
do_not_disturb:
  - "254700000099"
"""

CAMPAIGN = """\
kind: campaign
id: upsell
trigger:
  kind: exhausted
eligibility:
  min_tenure_days: 30
  package_duration_days: 30
  ends_in_days: 3
scoring:
  timeout: 3s
  fallback: {balance: "0", credit_limit: "20.00"}
offer:
  packages: [data_100mb, data_1000mb]
  payment: balance_then_credit
  expires_after: 24h
journey:
  - channel: stk
    style: confirm
    options: largest
    text: "Buy {volume_mb}MB for {price} {currency}?"
    wait: 10m
    hard_cap: 30m
  - channel: sms
    options: all
    text: "Dial:\\n{options}"
    option_format: "{volume_mb}MB {price}: {ussd_code}"
    max_parts: 1
cooldown: 1d
"""

EXPERIMENT = """\
kind: experiment
id: upsell_ab
salt: s1
arms:
  - name: new
    share: 50
    campaign: upsell
  - name: delayed
    share: 40
    campaign: upsell
    delay: 48h
  - name: control
    share: 10
    control: true
"""

FILES: dict[str, tuple[str, type[pydantic.BaseModel]]] = {
    "catalogue": (CATALOGUE, CatalogueConfig),
    "policy": (POLICY, PolicyConfig),
    "campaign": (CAMPAIGN, CampaignConfig),
    "experiment": (EXPERIMENT, ExperimentConfig),
}


def write(tmp_path: Path, text: str, name: str = "file.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line of ``text`` that contains ``needle``."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("kind", FILES)
def test_the_base_files_are_valid(tmp_path: Path, kind: str) -> None:
    text, model = FILES[kind]
    assert isinstance(load_yaml_model(write(tmp_path, text), model), model)


def test_values_are_read_as_meant(tmp_path: Path) -> None:
    catalogue = load_yaml_model(write(tmp_path, CATALOGUE), CatalogueConfig)
    assert catalogue.packages[1].price == Decimal("180.00")
    assert catalogue.packages[0].validity_days == 30  # the default
    policy = load_yaml_model(write(tmp_path, POLICY), PolicyConfig)
    assert policy.quiet_hours is not None
    assert (policy.quiet_hours.start, policy.quiet_hours.end) == (time(21), time(8))
    campaign = load_yaml_model(write(tmp_path, CAMPAIGN), CampaignConfig)
    assert campaign.trigger.kind is TriggerKind.EXHAUSTED
    assert campaign.journey[0].channel is Channel.STK
    assert (campaign.journey[0].wait, campaign.journey[0].hard_cap) == (600.0, 1800.0)
    assert campaign.offer is not None and campaign.offer.expires_after == 86400.0
    assert campaign.cooldown == 86400.0
    experiment = load_yaml_model(write(tmp_path, EXPERIMENT), ExperimentConfig)
    assert experiment.arms[1].delay == 48 * 3600


# (kind, the line to replace, its replacement, a word the reason must hold, where the error is: the
# text of the line it must point at, after the change)
CASES = [
    # --- catalogue ---
    ("catalogue", "currency: KES", "currency: Kenyan shilling", "currency", "currency:"),
    ("catalogue", '    price: "20.00"', "    price: 20.5", "write prices as strings", "price: 20.5"),
    ("catalogue", '    price: "20.00"', '    price: "-1"', "price", 'price: "-1"'),
    ("catalogue", '    price: "20.00"', '    price: "0.00001"', "decimal places", 'price: "0.00001"'),
    ("catalogue", "    volume_mb: 100", "    volume_mb: 0", "volume_mb", "volume_mb: 0"),
    ("catalogue", '    ussd_code: "*123*100#"', '    ussd_code: "123"', "ussd_code", 'ussd_code: "123"'),
    ("catalogue", "    validity_days: 7", "    validity_days: 0", "validity_days", "validity_days: 0"),
    (
        "catalogue",
        "  - id: data_1000mb",
        "  - id: data_100mb",
        "package id 'data_100mb' appears twice",
        "- id: data_100mb",
    ),
    (
        "catalogue",
        '    ussd_code: "*123*1000#"',
        '    ussd_code: "*123*100#"',
        "USSD code",
        "- id: data_100mb",
    ),
    ("catalogue", "  - id: data_100mb", "  - id: bad id!", "id", "id: bad id!"),
    ("catalogue", "    recurring: false", "    recuring: false", "recuring", "recuring:"),
    ("catalogue", "packages:", "packages: []\nold_packages:", "packages", "packages: []"),
    # --- policy ---
    ("policy", "version: 1", "version: 0", "version", "version: 0"),
    ("policy", "default_timezone: Africa/Nairobi", "default_timezone: Nairobi", "IANA", "default_timezone"),
    ("policy", '  end: "08:00"', '  end: "21:00"', "same time", "start:"),
    ("policy", "  action: defer", "  action: later", "action", "action: later"),
    ("policy", '  - "254700000099"', '  - "+254 700"', "do_not_disturb", '"+254 700"'),
    ("policy", "per: day}\n  - {purpose", "per: month}\n  - {purpose", "per", "per: month"),
    ("policy", "max: 2", "max: -1", "max", "max: -1"),
    ("policy", "purpose: promotional", "purpose: marketing", "purpose", "purpose: marketing"),
    ("policy", "channel: sms", "channel: email", "channel", "channel: email"),
    # --- campaign ---
    ("campaign", "id: upsell", "id: -upsell", "id", "id: -upsell"),
    ("campaign", "  kind: exhausted", "  kind: exhaused", "kind", "kind: exhaused"),
    ("campaign", "  kind: exhausted", "  kind: threshold", "level is required", "kind: threshold"),
    ("campaign", "  kind: exhausted", "  kind: exhausted\n  level: 90", "level", "kind: exhausted"),
    ("campaign", "  kind: exhausted", "  kind: threshold\n  level: 100", "level", "level: 100"),
    (
        "campaign",
        "  kind: exhausted",
        "  kind: exhausted\n  days_before: [3]",
        "days_before",
        "kind: exhausted",
    ),
    ("campaign", "  ends_in_days: 3", "  ends_in_days: -1", "ends_in_days", "ends_in_days: -1"),
    (
        "campaign",
        "  package_duration_days: 30",
        "  package_duration_days: 0",
        "package_duration",
        "duration_days: 0",
    ),
    ("campaign", "  min_tenure_days: 30", "  min_tenure_days: -5", "min_tenure_days", "min_tenure_days"),
    ("campaign", "  timeout: 3s", "  timeout: 3 secs", "not a duration", "timeout: 3 secs"),
    ("campaign", 'credit_limit: "20.00"', 'credit_limit: "-1"', "credit_limit", "fallback:"),
    ("campaign", "  packages: [data_100mb, data_1000mb]", "  packages: []", "packages", "packages: []"),
    ("campaign", "  payment: balance_then_credit", "  payment: later", "payment", "payment: later"),
    ("campaign", "  expires_after: 24h", "  expires_after: 24 hours", "not a duration", "expires_after"),
    ("campaign", "    wait: 10m", "    wait: 10mins", "not a duration", "wait: 10mins"),
    ("campaign", "    wait: 10m", "    wait: -10", "negative", "wait: -10"),
    ("campaign", "    wait: 10m", "    wait: 1h", "hard_cap must be at least wait", "- channel: stk"),
    (
        "campaign",
        "    options: largest",
        "    options: none",
        "an stk step offers something",
        "- channel: stk",
    ),
    ("campaign", "    style: confirm", "    style: popup", "style", "style: popup"),
    ("campaign", "  - channel: sms", "  - channel: fax", "channel", "channel: fax"),
    (
        "campaign",
        '    text: "Dial:\\n{options}"',
        '    text: "Dial {volumes}"',
        "unknown field {volumes}",
        'text: "Dial {volumes}"',
    ),
    (
        "campaign",
        '    text: "Dial:\\n{options}"',
        '    text: "Dial {price:>8}"',
        "unknown field {price}",
        'text: "Dial {price:>8}"',
    ),
    ("campaign", '    text: "Dial:\\n{options}"', '    text: "Dial {"', "template", 'text: "Dial {"'),
    ("campaign", '    text: "Dial:\\n{options}"', '    text: ""', "text", 'text: ""'),
    (
        "campaign",
        '{price}: {ussd_code}"',
        '{price}: {options}"',
        "unknown field {options}",
        "{price}: {options}",
    ),
    ("campaign", "    max_parts: 1", "    max_parts: 11", "max_parts", "max_parts: 11"),
    ("campaign", "cooldown: 1d", "cooldown: a day", "not a duration", "cooldown: a day"),
    ("campaign", "cooldown: 1d", "cooldown: 1d\njourny: []", "journy", "journy"),
    (
        "campaign",
        "offer:\n  packages: [data_100mb, data_1000mb]",
        "offers:\n  packages: [data_100mb]",
        "offers",
        "packages: [data_100mb]",
    ),
    # --- experiment ---
    ("experiment", "    share: 10", "    share: 20", "add up to 110, not 100", "  - name:"),
    ("experiment", "    share: 10", "    share: 101", "share", "share: 101"),
    ("experiment", "  - name: delayed", "  - name: new", "arm name 'new' appears twice", "  - name:"),
    (
        "experiment",
        "    control: true",
        "    control: true\n    campaign: upsell",
        "not both",
        "- name: control",
    ),
    ("experiment", "    control: true", "    control: false", "control arm", "- name: control"),
    ("experiment", "    delay: 48h", "    delay: 48hours", "not a duration", "delay: 48hours"),
    ("experiment", "salt: s1", 'salt: ""', "salt", 'salt: ""'),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}-{case[3]}")
def test_a_bad_value_is_refused_at_its_line(tmp_path: Path, case: tuple[str, str, str, str, str]) -> None:
    kind, old, new, reason, at = case
    base, model = FILES[kind]
    assert old in base, old
    text = base.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(path, model)
    assert caught.value.file == str(path)
    assert reason in caught.value.reason
    assert caught.value.line == line_of(text, at), caught.value


def test_a_campaign_that_offers_needs_an_offer(tmp_path: Path) -> None:
    start = CAMPAIGN.index("offer:")
    end = CAMPAIGN.index("journey:")
    text = CAMPAIGN[:start] + CAMPAIGN[end:]
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(write(tmp_path, text), CampaignConfig)
    assert "needs an offer section" in caught.value.reason
    assert caught.value.line == 1


def test_experiment_needs_two_arms(tmp_path: Path) -> None:
    text = "kind: experiment\nid: e\nsalt: s\narms:\n  - {name: all, share: 100, campaign: upsell}\n"
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(write(tmp_path, text), ExperimentConfig)
    assert caught.value.line == 5 and "arms" in caught.value.reason


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("cooldown: 1d", "cooldown: 1d\ncooldown: 2d")
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(write(tmp_path, text), CampaignConfig)
    assert "'cooldown' appears twice" in caught.value.reason
    assert caught.value.line == line_of(text, "cooldown: 2d")


def test_a_file_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_model(write(tmp_path, POLICY), CampaignConfig)
    assert caught.value.line == 1 and "kind" in caught.value.reason


# --- durations and templates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("0.5h", 1800.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10 min", "1w", "h", "", True, None, -5, "-5s", [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_templates_allow_only_their_fields() -> None:
    check_template("{options} {volume_mb} {price} {currency} {ussd_code} {payment}", TEXT_FIELDS)
    check_template("{volume_mb}", OPTION_FIELDS)
    for bad in ("{options}", "{msisdn}", "{price.real}", "{price[0]}", "{price!r}", "{0}", "{}"):
        with pytest.raises(ValueError, match="unknown field"):
            check_template(bad, OPTION_FIELDS)
    with pytest.raises(ValueError, match="template"):
        check_template("{unclosed", TEXT_FIELDS)


def test_rendering_lists_the_options_and_names_the_largest() -> None:
    options = [
        OfferOption("b", 1000, Decimal("180"), Payment.CREDIT, "*123*1000#"),
        OfferOption("a", 100, Decimal("20.5"), Payment.BALANCE, "*123*100#"),
    ]
    text = render_step_text("{volume_mb} {payment}|{options}", options, "KES", "{volume_mb}={price}", ";")
    assert text == "1000 credit|1000=180.00;100=20.50"
    assert render_step_text("Hi {volume_mb}!", [], "KES", "{price}", "\n") == "Hi !"


# --- CampaignSet.check: the rules across files ----------------------------------------------------


def _models(tmp_path: Path) -> tuple[CatalogueConfig, PolicyConfig, CampaignConfig, ExperimentConfig]:
    return (
        load_yaml_model(write(tmp_path, CATALOGUE, "c.yaml"), CatalogueConfig),
        load_yaml_model(write(tmp_path, POLICY, "p.yaml"), PolicyConfig),
        load_yaml_model(write(tmp_path, CAMPAIGN, "u.yaml"), CampaignConfig),
        load_yaml_model(write(tmp_path, EXPERIMENT, "e.yaml"), ExperimentConfig),
    )


def test_cross_file_rules_pass_for_a_consistent_set(tmp_path: Path) -> None:
    catalogue, policy, campaign, experiment = _models(tmp_path)
    assert CampaignSet(catalogue, policy, (campaign,), (experiment,)).check() == []


def test_cross_file_rules(tmp_path: Path) -> None:
    catalogue, policy, campaign, experiment = _models(tmp_path)
    text = CAMPAIGN.replace("[data_100mb, data_1000mb]", "[data_100mb, data_5gb]").replace(
        "  ends_in_days: 3", "  ends_in_days: 3\n  packages: [weekly]"
    )
    other = load_yaml_model(
        write(tmp_path, text.replace("id: upsell", "id: other"), "o.yaml"), CampaignConfig
    )
    second = load_yaml_model(
        write(
            tmp_path,
            EXPERIMENT.replace("id: upsell_ab", "id: second").replace(
                "campaign: upsell\n    delay", "campaign: ghost\n    delay"
            ),
            "x.yaml",
        ),
        ExperimentConfig,
    )
    sources = {"upsell": "u.yaml", "other": "o.yaml", "upsell_ab": "e.yaml", "second": "x.yaml"}
    errors = CampaignSet(
        catalogue, policy, (campaign, other, campaign), (experiment, second), sources
    ).check()
    assert (
        CrossFileError("o.yaml", ("offer", "packages", 1), "package 'data_5gb' is not in the catalogue")
        in errors
    )
    assert (
        CrossFileError("o.yaml", ("eligibility", "packages", 0), "package 'weekly' is not in the catalogue")
        in errors
    )
    assert CrossFileError("u.yaml", ("id",), "campaign id 'upsell' is used twice") in errors
    assert CrossFileError("x.yaml", ("arms", 1, "campaign"), "campaign 'ghost' does not exist") in errors
    assert (
        CrossFileError(
            "x.yaml", ("arms", 0, "campaign"), "campaign 'upsell' is already in experiment 'upsell_ab'"
        )
        in errors
    )
    assert len(errors) == 5

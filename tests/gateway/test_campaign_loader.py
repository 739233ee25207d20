"""Campaign directories (gateway.campaigns): loading, the rules across files and the channel checks, each
error at its file and line; ``tgw validate``.

The shipped ``configs/campaigns`` must validate. Small directories in tmp_path break one rule each: a
missing or second catalogue / policy, an unknown kind, duplicate keys and ids, unknown packages and
campaigns, a campaign in two experiments (mapped back to the line of the value at fault), a USSD code
the menus do not route to ``buy_package``, an SMS over its parts, a DSTK dialog over one SMS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.campaigns import (
    CampaignDirError,
    default_stk_targets,
    load_campaign_dir,
    validate_campaign_dir,
)
from gateway.campaigns.validate import DEFAULT_REPLY_TO, _resolve
from gateway.cli import main as gateway_main
from gateway.configfile import yaml_line
from gateway.ussd.menus import load_menus
from gateway.ussd.navigator import MenuSession, UssdContext
from protocols.errors import ConfigError
from protocols.ussd import PROFILES, parse_service_code

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "configs" / "campaigns"
MENUS = ROOT / "configs" / "ussd" / "menus.yaml"
SIM_KEYS = ROOT / "configs" / "sim_keys.example.yaml"
TGW = str(Path(sys.executable).parent / "tgw")

CATALOGUE = """\
kind: catalogue
currency: KES
packages:
  - id: data_100mb
    volume_mb: 100
    price: "20.00"
    ussd_code: "*123*100#"
  - id: data_200mb
    volume_mb: 200
    price: "50.00"
    ussd_code: "*123*200#"
  - id: data_500mb
    volume_mb: 500
    price: "100.00"
    ussd_code: "*123*500#"
  - id: data_1000mb
    volume_mb: 1000
    price: "180.00"
    ussd_code: "*123*1000#"
"""

POLICY = """\
kind: policy
version: 1
caps:
  - {channel: sms, max: 2, per: day}
"""

CAMPAIGN = """\
kind: campaign
id: upsell
trigger: {kind: exhausted}
offer:
  packages: [data_100mb, data_200mb, data_500mb, data_1000mb]
journey:
  - channel: stk
    style: confirm
    options: largest
    text: "Buy {volume_mb}MB for {price}?"
  - channel: sms
    options: all
    text: "Dial:\\n{options}"
    option_format: "{volume_mb}MB {price} {ussd_code}"
"""

EXPERIMENT = """\
kind: experiment
id: upsell_ab
salt: s
arms:
  - {name: new, share: 90, campaign: upsell}
  - {name: control, share: 10, control: true}
"""


def make_dir(tmp_path: Path, **files: str | None) -> Path:
    """A campaign directory: catalogue, policy, campaign and experiment files unless a keyword replaces
    one (name=text) or leaves it out (name=None); other keywords add files."""
    contents: dict[str, str | None] = {
        "catalogue.yaml": CATALOGUE,
        "policy.yaml": POLICY,
        "upsell.yaml": CAMPAIGN,
        "upsell_ab.yaml": EXPERIMENT,
    }
    for name, text in files.items():
        contents[name.replace("__", ".")] = text
    directory = tmp_path / "campaigns"
    directory.mkdir(parents=True)
    for name, text in contents.items():
        if text is not None:
            (directory / name).write_text(text, encoding="utf-8")
    return directory


def errors_of(directory: Path, **kwargs: object) -> list[ConfigError]:
    kwargs.setdefault("ussd_menus", MENUS)
    return validate_campaign_dir(directory, **kwargs)  # type: ignore[arg-type]


def line_in(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return lines[occurrence - 1]


def only_error(directory: Path, **kwargs: object) -> ConfigError:
    errors = errors_of(directory, **kwargs)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# --- the shipped directory -------------------------------------------------------------------------


def test_the_shipped_campaigns_validate() -> None:
    assert errors_of(SHIPPED) == []
    campaigns = load_campaign_dir(SHIPPED, ussd_menus=MENUS)
    ids = {c.id for c in campaigns.campaigns}
    assert ids == {
        "upsell_new",
        "upsell_old",
        "trial_ending",
        "weekly_1gb_ending",
        "monthly_winback",
        "roaming_welcome",
    }
    assert [e.id for e in campaigns.experiments] == ["upsell_ab"]
    assert campaigns.policy.default_timezone == "Africa/Nairobi"
    assert campaigns.sources["upsell_new"] == str(SHIPPED / "upsell_new.yaml")
    assert campaigns.sources["catalogue"] == str(SHIPPED / "catalogue.yaml")
    assert campaigns.sources["policy"] == str(SHIPPED / "policy.yaml")


def test_the_shipped_campaigns_fit_every_card_of_the_example_key_file() -> None:
    assert errors_of(SHIPPED, sim_keys=SIM_KEYS) == []


def test_the_reference_sms_is_checked_with_all_four_options(tmp_path: Path) -> None:
    """One more character in the option lines of the shipped reference journey and it needs 2 parts."""
    directory = tmp_path / "shipped"
    shutil.copytree(SHIPPED, directory)
    path = directory / "upsell_new.yaml"
    text = path.read_text()
    old = 'option_format: "{volume_mb}MB {price} {currency} {ussd_code}"'
    assert old in text
    path.write_text(text.replace(old, 'option_format: "{volume_mb}MB {price} {currency} - {ussd_code}"'))
    error = only_error(directory)
    assert (error.file, error.line) == (str(path), line_in(path, 'text: "Out of data? Dial'))
    assert "needs 2 parts" in error.reason and "1000 MB, 500 MB, 200 MB, 100 MB" in error.reason


def test_the_shipped_monthly_code_walks_the_menus_to_buy_package(tmp_path: Path) -> None:
    """*123*1*3*1*1# reaches buy_package with mb 1000 and price 250: a different price is caught."""
    directory = tmp_path / "shipped"
    shutil.copytree(SHIPPED, directory)
    path = directory / "catalogue.yaml"
    path.write_text(path.read_text().replace('price: "250.00"', 'price: "260.00"'))
    error = only_error(directory)
    assert (error.file, error.line) == (str(path), line_in(path, 'ussd_code: "*123*1*3*1*1#"'))
    assert "costs 250" in error.reason and "monthly_1gb" in error.reason


# --- one file at a time --------------------------------------------------------------------------


def test_a_small_directory_is_valid(tmp_path: Path) -> None:
    directory = make_dir(tmp_path)
    assert errors_of(directory) == []
    campaigns = load_campaign_dir(directory, ussd_menus=MENUS)
    assert [c.id for c in campaigns.campaigns] == ["upsell"]


def test_a_link_to_nothing_is_reported_not_skipped(tmp_path: Path) -> None:
    """A campaign file that is a dangling link (or a link loop) would silently drop its campaign."""
    directory = make_dir(tmp_path)
    (directory / "winback.yaml").symlink_to(tmp_path / "gone.yaml")
    (directory / "loop.yml").symlink_to(directory / "loop.yml")
    (directory / "linked.yaml").symlink_to(directory / "upsell.yaml")  # a good link is read as usual
    errors = errors_of(directory)
    assert sorted(Path(e.file).name for e in errors if "a link to nothing" in str(e)) == [
        "loop.yml",
        "winback.yaml",
    ], [str(e) for e in errors]
    assert any("gone.yaml" in str(e) for e in errors)


def test_only_yaml_files_are_read(tmp_path: Path) -> None:
    directory = make_dir(
        tmp_path, README__md="not: [yaml", extra__yml=CAMPAIGN.replace("id: upsell", "id: b")
    )
    (directory / "sub").mkdir()
    (directory / "sub" / "x.yaml").write_text("kind: nonsense\n")
    assert errors_of(directory) == []
    assert {c.id for c in load_campaign_dir(directory, ussd_menus=MENUS).campaigns} == {"upsell", "b"}


def test_an_unknown_kind_is_an_error_at_its_line(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, roaming__yaml="# roaming\nkind: campain\nid: roaming\n")
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "roaming.yaml"), 2)
    assert "unknown kind 'campain'" in error.reason


def test_a_missing_kind_is_an_error(tmp_path: Path) -> None:
    directory = make_dir(
        tmp_path, roaming__yaml="# roaming\nid: roaming\ntrigger: {kind: roaming_registered}\n"
    )
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "roaming.yaml"), 2)
    assert "top-level kind" in error.reason


@pytest.mark.parametrize("text", ["", "- kind: campaign\n", "just words\n"])
def test_a_file_that_is_no_mapping_is_an_error(tmp_path: Path, text: str) -> None:
    error = only_error(make_dir(tmp_path, odd__yaml=text))
    assert error.file is not None and error.file.endswith("odd.yaml")


def test_duplicate_keys_are_an_error_at_the_second(tmp_path: Path) -> None:
    text = CAMPAIGN + "trigger: {kind: threshold, level: 90}\n"
    directory = make_dir(tmp_path, upsell__yaml=text)
    errors = errors_of(directory)
    path = directory / "upsell.yaml"
    assert (errors[0].file, errors[0].line) == (str(path), line_in(path, "trigger:", 2))
    assert "'trigger' appears twice" in errors[0].reason
    # the experiment's arm names a campaign whose file is broken: not reported a second time
    assert len(errors) == 1


def test_a_duration_typo_is_an_error_at_its_line(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN + "cooldown: 1 day\n")
    error = only_error(directory)
    assert error.line == line_in(directory / "upsell.yaml", "cooldown")
    assert "not a duration" in error.reason


def test_a_float_price_is_an_error_at_its_line(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, catalogue__yaml=CATALOGUE.replace('price: "50.00"', "price: 50.5"))
    errors = errors_of(directory)
    path = directory / "catalogue.yaml"
    assert (errors[0].file, errors[0].line) == (str(path), line_in(path, "price: 50.5"))
    assert "write prices as strings" in errors[0].reason


def test_an_unknown_template_field_is_an_error(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("Dial:\\n{options}", "Dial {option}"))
    errors = errors_of(directory)
    path = directory / "upsell.yaml"
    assert errors[0].file == str(path)
    assert errors[0].line == line_in(path, "Dial {option}")  # the text itself
    assert "unknown field {option}" in errors[0].reason


def test_shares_not_adding_to_100(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell_ab__yaml=EXPERIMENT.replace("share: 10,", "share: 20,"))
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "upsell_ab.yaml"), 5)  # the arms
    assert "add up to 110, not 100" in error.reason


def test_every_error_is_collected(tmp_path: Path) -> None:
    directory = make_dir(
        tmp_path,
        policy__yaml=POLICY.replace("version: 1", "version: 0"),
        upsell_ab__yaml=EXPERIMENT.replace("share: 10,", "share: 20,"),
        other__yaml="kind: banner\n",
    )
    errors = errors_of(directory)
    assert [Path(e.file or "").name for e in errors] == ["other.yaml", "policy.yaml", "upsell_ab.yaml"]
    with pytest.raises(CampaignDirError) as caught:
        load_campaign_dir(directory, ussd_menus=MENUS)
    assert [str(e) for e in caught.value.errors] == [str(e) for e in errors]
    assert str(caught.value).splitlines() == [str(e) for e in errors]
    assert (caught.value.file, caught.value.line) == (errors[0].file, errors[0].line)


# --- the directory as a whole ----------------------------------------------------------------------


def test_missing_policy(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, policy__yaml=None)
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory), None)
    assert "no policy" in error.reason
    with pytest.raises(CampaignDirError, match="no policy"):
        load_campaign_dir(directory, ussd_menus=MENUS)


def test_missing_catalogue(tmp_path: Path) -> None:
    error = only_error(make_dir(tmp_path, catalogue__yaml=None))
    assert "no catalogue" in error.reason


def test_two_catalogues(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, shop__yaml="# the second\n" + CATALOGUE)
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "shop.yaml"), 2)
    assert "a second catalogue" in error.reason and "catalogue.yaml" in error.reason


def test_two_policies(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, zz_policy__yaml=POLICY)
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "zz_policy.yaml"), 1)
    assert "a second policy" in error.reason


def test_not_a_directory(tmp_path: Path) -> None:
    error = only_error(tmp_path / "nowhere")
    assert "not a directory" in error.reason


def test_unknown_package_in_an_offer_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = CAMPAIGN.replace(
        "packages: [data_100mb, data_200mb, data_500mb, data_1000mb]",
        "packages:\n    - data_100mb\n    - data_5gb\n    - data_1000mb",
    )
    directory = make_dir(tmp_path, upsell__yaml=text)
    error = only_error(directory)
    assert (error.file, error.line) == (
        str(directory / "upsell.yaml"),
        line_in(directory / "upsell.yaml", "data_5gb"),
    )
    assert error.reason == "package 'data_5gb' is not in the catalogue"


def test_unknown_package_in_eligibility(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("offer:", "eligibility:\n  packages: [weekly_5gb]\noffer:")
    directory = make_dir(tmp_path, upsell__yaml=text)
    error = only_error(directory)
    assert error.line == line_in(directory / "upsell.yaml", "weekly_5gb")
    assert "'weekly_5gb' is not in the catalogue" in error.reason


def test_a_campaign_in_two_experiments(tmp_path: Path) -> None:
    second = EXPERIMENT.replace("id: upsell_ab", "id: upsell_cd")
    directory = make_dir(tmp_path, upsell_cd__yaml=second)
    error = only_error(directory)
    path = directory / "upsell_cd.yaml"
    assert (error.file, error.line) == (str(path), line_in(path, "campaign: upsell"))
    assert "campaign 'upsell' is already in experiment 'upsell_ab'" in error.reason


def test_an_arm_naming_no_campaign(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell_ab__yaml=EXPERIMENT.replace("campaign: upsell", "campaign: upsel"))
    error = only_error(directory)
    assert error.line == line_in(directory / "upsell_ab.yaml", "campaign: upsel")
    assert "campaign 'upsel' does not exist" in error.reason


def test_an_arm_naming_a_reserved_id_is_reported(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell_ab__yaml=EXPERIMENT.replace("campaign: upsell", "campaign: policy"))
    assert only_error(directory).reason == "campaign 'policy' does not exist"


def test_a_campaign_id_used_twice(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, zz_copy__yaml="# a copy\n" + CAMPAIGN)
    error = only_error(directory)
    assert (error.file, error.line) == (str(directory / "zz_copy.yaml"), 3)
    assert "campaign id 'upsell' is already used by the campaign in" in error.reason


def test_an_experiment_may_not_take_a_campaign_id(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell_ab__yaml=EXPERIMENT.replace("id: upsell_ab", "id: upsell"))
    error = only_error(directory)
    assert "experiment id 'upsell' is already used by the campaign" in error.reason


def test_the_source_names_are_not_ids(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("id: upsell", "id: policy"))
    errors = errors_of(directory)
    assert "id 'policy' is reserved" in errors[0].reason
    assert errors[0].line == 2
    assert [e.reason for e in errors[1:]] == ["campaign 'upsell' does not exist"]  # it is called policy now


# --- USSD codes --------------------------------------------------------------------------------------


def test_a_ussd_code_without_a_handler(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, catalogue__yaml=CATALOGUE.replace('"*123*500#"', '"*150*500#"'))
    error = only_error(directory)
    path = directory / "catalogue.yaml"
    assert (error.file, error.line) == (str(path), line_in(path, "*150*500#"))
    assert "USSD code *150*500# of package 'data_500mb' (offered by upsell)" in error.reason
    assert "no service code of the menus answers it" in error.reason


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        # not a one-shot amount: *123# walked with the shortcut 250, which the main menu refuses
        ("*123*250#", "stops at the menu screen 'main', which waits for input (wrong inputs on the way: 250"),
        ("*123*9*9*9*9#", "the screen 'main' gives up after too many wrong inputs"),
        ("*123#", "stops at the menu screen 'main', which waits for input"),
        ("*123*5#", "ends at the final screen 'help'"),
        ("*123*2#", "reaches the dynamic screen 'my_offers'"),
        ("*123*1*3*1#", "stops at the menu screen 'confirm'"),
        ("*123*3*0712345678*500*1#", "reaches the handler 'gift_data'"),
    ],
)
def test_a_ussd_code_that_does_not_reach_buy_package(tmp_path: Path, code: str, problem: str) -> None:
    directory = make_dir(tmp_path, catalogue__yaml=CATALOGUE.replace('"*123*500#"', f'"{code}"'))
    error = only_error(directory)
    assert "does not reach the 'buy_package' handler" in error.reason
    assert problem in error.reason


WALKED_CODES = [
    "*123*100#",
    "*123*1000#",
    "*123*250#",
    "*123#",
    "*123*5#",
    "*123*1*3*1*1#",
    "*123*1*3*1*2#",
    "*123*1*3*99*8*1#",
    "*123*1*3*8*1#",
    "*123*1*3*99#",
    "*123*1*3*99*0*1*1#",
    "*123*1*0*1*3*1*1#",
    "*123*1*3*00*1*3*1*1#",
    "*123*9*1*3*1*1#",
    "*123*9*9*9*9#",
    "*123*9*9*9*1#",
    "*123*1*2*3*1#",
    "*123*3*0712345678*500*1#",
    "*123*3*123*500*1#",
    "*150#",
]


@pytest.mark.parametrize("code", WALKED_CODES)
async def test_the_static_walk_agrees_with_the_menu_engine(code: str) -> None:
    """The USSD check walks the menus without running them: it must reach the handler (with the same
    args) that a real dialogue (gateway.ussd.navigator) calls for the same code, and no other."""
    menus = load_menus(MENUS)
    profile = PROFILES["standard"]
    called: list[tuple[str, dict[str, str]]] = []

    async def caller(kind: str, name: str, context: UssdContext) -> object:
        if kind == "provider":
            return []
        called.append((name, dict(context.args)))
        return "done"

    dialled = parse_service_code(code)
    match = menus.route_for(dialled)
    if match is not None:
        session = MenuSession(
            menus,
            profile,
            caller,
            msisdn="254700000001",
            session_id="1",
            service_code=code,
            base_code=dialled.base,
            params=dialled.params,
            named=match.named,
        )
        if match.route.menu is not None:
            await session.start_menu(match.route.menu, match.shortcut_inputs)
        else:
            assert match.route.handler is not None
            await session.start_handler(match.route.handler, match.route.args)
    walked = _resolve(menus, code, profile)
    if called:
        assert (walked.handler, dict(walked.args)) == called[0]
    else:
        assert walked.handler is None and walked.problem


def test_a_ussd_code_that_buys_another_volume(tmp_path: Path) -> None:
    catalogue = CATALOGUE.replace('"*123*200#"', '"*123*X#"').replace('"*123*100#"', '"*123*200#"')
    directory = make_dir(tmp_path, catalogue__yaml=catalogue.replace('"*123*X#"', '"*123*100#"'))
    errors = errors_of(directory)
    assert len(errors) == 2
    assert "USSD code *123*200# buys 200 MB" in errors[0].reason and "'data_100mb'" in errors[0].reason
    assert errors[0].line == line_in(directory / "catalogue.yaml", "*123*200#")


def test_a_ussd_code_that_buys_only_after_wrong_inputs(tmp_path: Path) -> None:
    catalogue = CATALOGUE.replace('"*123*1000#"', '"*123*1*9*3*1*1#"').replace('"180.00"', '"250"')
    error = only_error(make_dir(tmp_path, catalogue__yaml=catalogue))
    assert (
        "only through wrong inputs, each showing the subscriber an error: 9 at the screen 'buy_data'"
        in error.reason
    )


def test_packages_no_campaign_offers_are_not_checked(tmp_path: Path) -> None:
    catalogue = CATALOGUE + '  - id: spare\n    volume_mb: 5\n    price: "1"\n    ussd_code: "*999#"\n'
    assert errors_of(make_dir(tmp_path, catalogue__yaml=catalogue)) == []


def test_the_ussd_check_can_be_left_out(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, catalogue__yaml=CATALOGUE.replace('"*123*500#"', '"*150*500#"'))
    assert validate_campaign_dir(directory, ussd_menus=None) == []


def test_a_broken_menu_file_is_reported(tmp_path: Path) -> None:
    menus = tmp_path / "menus.yaml"
    menus.write_text("version: 1\nservices: []\n")
    errors = errors_of(make_dir(tmp_path), ussd_menus=menus)
    assert len(errors) == 1 and errors[0].file == str(menus)


# --- SMS parts ---------------------------------------------------------------------------------------


def test_an_sms_over_its_parts(tmp_path: Path) -> None:
    long_text = "Your data is used up. " * 5 + "Dial:\\n{options}"
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("Dial:\\n{options}", long_text))
    error = only_error(directory)
    path = directory / "upsell.yaml"
    assert (error.file, error.line) == (str(path), line_in(path, "Your data is used up."))
    # 110 + 6 + the four lines (24 + 22 + 21 + 21) + 3 separators = 207 GSM characters
    assert "the text needs 2 parts, max_parts is 1: 207 GSM 7-bit characters" in error.reason
    assert "47 over the 160 that fit 1 part" in error.reason


def test_an_sms_within_max_parts(tmp_path: Path) -> None:
    long_text = "Your data is used up. " * 5 + "Dial:\\n{options}"
    text = CAMPAIGN.replace("Dial:\\n{options}", long_text) + "    max_parts: 2\n"
    assert errors_of(make_dir(tmp_path, upsell__yaml=text)) == []


def test_sms_worst_case_is_each_possible_largest_option(tmp_path: Path) -> None:
    """``options: largest``: the longest rendering over every package that may be the largest."""
    text = CAMPAIGN.replace("options: all", "options: largest").replace(
        "Dial:\\n{options}", "x" * 143 + " {price} {ussd_code}"
    )
    error = only_error(make_dir(tmp_path, upsell__yaml=text))  # 100 MB: 143 + 16 fits, 1000 MB: 143 + 18 not
    assert (
        "the text needs 2 parts, max_parts is 1: 161 GSM 7-bit characters with option 1000 MB" in error.reason
    )
    assert "1 over the 160" in error.reason


def test_ucs2_text_counts_ucs2_characters(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("Dial:\\n{options}", "Пакет исчерпан. Наберите {ussd_code}").replace(
        "options: all", "options: largest"
    )
    assert errors_of(make_dir(tmp_path, upsell__yaml=text)) == []
    longer = text.replace("Пакет исчерпан.", "Пакет исчерпан. " * 4)
    error = only_error(make_dir(tmp_path / "b", upsell__yaml=longer))
    assert "UCS-2 characters" in error.reason and "over the 70 that fit 1 part" in error.reason


# --- DSTK fit ----------------------------------------------------------------------------------------


def test_an_oversize_dstk_menu(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("style: confirm", "style: menu").replace("options: largest", "options: all")
    directory = make_dir(tmp_path, upsell__yaml=text)
    error = only_error(directory)
    path = directory / "upsell.yaml"
    assert (error.file, error.line) == (str(path), line_in(path, "Buy {volume_mb}MB"))
    assert "the DSTK dialog does not fit one SMS" in error.reason
    assert "SELECT ITEM menu with options 1000 MB, 500 MB, 200 MB, 100 MB" in error.reason
    assert "one SMS carries 98 under AES" in error.reason
    match = re.search(r"(\d+) octets over; .* makes a (\d+)-octet DSTK offer", error.reason)
    assert match is not None
    assert int(match[2]) - int(match[1]) == 98


def test_a_dstk_menu_of_two_packages_fits(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("style: confirm", "style: menu").replace(
        "[data_100mb, data_200mb, data_500mb, data_1000mb]", "[data_100mb, data_200mb]"
    )
    directory = make_dir(tmp_path, upsell__yaml=text)
    assert errors_of(directory) == []


def test_a_long_confirm_prompt_names_the_octets_over(tmp_path: Path) -> None:
    prompt = "Your data is used up. Buy {volume_mb}MB now for {price} {currency}?"  # 52 with 1000 MB
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("Buy {volume_mb}MB for {price}?", prompt))
    error = only_error(directory)
    # DISPLAY TEXT (handsets without yes/no GET INKEY) adds " Press OK to buy"
    assert "the DISPLAY TEXT with option 1000 MB" in error.reason
    assert "12 octets over" in error.reason  # 42 + 16 + 52 octets against 98


def test_dstk_budgets_of_a_key_file(tmp_path: Path) -> None:
    """The example cards: AES with yes/no GET INKEY (98 octets) and 3DES handsets showing DISPLAY TEXT
    (106): a prompt that only the default worst case (DISPLAY TEXT under AES) refuses passes."""
    prompt = "Your data is used up! Buy {volume_mb}MB for {price} {currency}?"  # 48 with 1000 MB
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("Buy {volume_mb}MB for {price}?", prompt))
    assert "8 octets over" in only_error(directory).reason  # DISPLAY TEXT: 42 + 16 + 48 against 98
    assert errors_of(directory, sim_keys=SIM_KEYS) == []


def test_a_longer_reply_to_costs_octets(tmp_path: Path) -> None:
    prompt = "Out of data. Buy {volume_mb}MB for {price} {currency}?"  # 39: 97 octets with 5 digits
    directory = make_dir(tmp_path, upsell__yaml=CAMPAIGN.replace("Buy {volume_mb}MB for {price}?", prompt))
    assert errors_of(directory, reply_to=DEFAULT_REPLY_TO) == []
    assert ": 1 octet over; " in only_error(directory, reply_to="1234567").reason


def test_default_budget_is_the_strongest_default_security() -> None:
    targets = default_stk_targets()
    assert {t.budget for t in targets} == {98}  # AES-128, CMAC, ciphering, counter (sim_keys example)
    assert {(t.supports_yes_no, t.select_item) for t in targets} == {
        (True, True),
        (False, True),
        (False, False),
    }


# --- configfile.yaml_line ----------------------------------------------------------------------------


def test_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("# c\na: 1\nb:\n  - x\n  - {y: 2,\n     z: 3}\n")
    assert yaml_line(path, ("a",)) == 2
    assert yaml_line(path, ("b", 1, "z")) == 6
    assert yaml_line(path, ("b", 7)) == 4  # no such item: the list
    assert yaml_line(path, ()) == 2
    assert yaml_line(tmp_path / "none.yaml", ("a",)) is None
    (tmp_path / "bad.yaml").write_text("a: [\n")
    assert yaml_line(tmp_path / "bad.yaml", ("a",)) is None


# --- tgw validate ------------------------------------------------------------------------------------


def test_cli_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_main(["validate", str(SHIPPED), "--ussd-menus", str(MENUS)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{SHIPPED}: 6 campaigns, 1 experiments OK\n"
    assert err == ""


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_dir(
        tmp_path,
        policy__yaml=None,
        catalogue__yaml=CATALOGUE.replace('"*123*500#"', '"*150*500#"'),
    )
    assert gateway_main(["validate", str(directory), "--ussd-menus", str(MENUS)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{directory}: no policy: the directory needs one file with kind: policy"
    assert lines[1].startswith(
        f"{directory / 'catalogue.yaml'}:{line_in(directory / 'catalogue.yaml', '*150*500#')}: "
    )
    assert len(lines) == 2


def test_cli_bad_menus_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway_main(["validate", str(make_dir(tmp_path)), "--ussd-menus", str(tmp_path / "no.yaml")]) == 1
    assert "cannot read the menu file" in capsys.readouterr().err


def test_tgw_script_has_validate() -> None:
    """The console script (simulators.cli) keeps the gateway command, run from the project root."""
    proc = subprocess.run(
        [TGW, "validate", "configs/campaigns"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "configs/campaigns: 6 campaigns, 1 experiments OK\n",
        "",
    )

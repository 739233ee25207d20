"""Tests of the configuration files and the CLI's answers to bad ones (found by mutating
copies of the shipped ``configs/``): every mistake is reported as ``file:line: reason`` at the line of
the key or value at fault, with what is expected, exit status 64 and no traceback, and nothing starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tgw_kit import ROOT, copy_configs, edit, line_of

from gateway.campaigns.loader import validate_campaign_dir
from gateway.config import load_gateway_config
from protocols.errors import ConfigError
from simulators.scenario import load_scenario

TGW = Path(sys.executable).parent / "tgw"
ENV = {"TGW_SMSC_PASSWORD": "secret", "TGW_ADMIN_TOKEN": "0123456789abcdef-token"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A copy of configs/ to break."""
    return copy_configs(tmp_path)


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(path)
    return caught.value


def _tgw(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TGW), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **ENV},
        check=False,
    )


# --- the gateway config ----------------------------------------------------------------------------


def test_a_missing_environment_secret_names_the_line_of_its_key(
    configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TGW_SMSC_PASSWORD", raising=False)
    monkeypatch.setenv("TGW_ADMIN_TOKEN", ENV["TGW_ADMIN_TOKEN"])
    config = configs / "gateway.yaml"
    exc = _error(config)
    assert exc.line == line_of(config, "password_env: TGW_SMSC_PASSWORD")
    assert exc.reason.startswith("smsc.password_env: ") and "TGW_SMSC_PASSWORD" in exc.reason
    assert "Value error" not in exc.reason


def test_a_secret_given_twice_names_the_second_key(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  password_env: TGW_SMSC_PASSWORD", "  password: abc\n  password_env: TGW_SMSC_PASSWORD")
    exc = _error(config)
    assert exc.line == line_of(config, "password_env: TGW_SMSC_PASSWORD")
    assert "not both" in exc.reason


def test_a_short_admin_token_from_the_environment_names_its_line(
    env: None, configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGW_ADMIN_TOKEN", "short")
    config = configs / "gateway.yaml"
    exc = _error(config)
    assert exc.line == line_of(config, "token_env: TGW_ADMIN_TOKEN")
    assert "16 characters" in exc.reason and "TGW_ADMIN_TOKEN" in exc.reason


def test_every_schema_error_is_listed_with_its_own_line(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  window: 100 ", "  window: lots ")
    edit(config, "  level: INFO", "  level: LOUD")
    exc = _error(config)
    assert exc.line == line_of(config, "window: lots")
    assert f"{config}:{line_of(config, 'level: LOUD')}: logging.level: " in str(exc)


def test_a_typo_in_a_key_suggests_the_key(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  window: 100 ", "  windw: 100 ")
    exc = _error(config)
    assert exc.line == line_of(config, "windw: 100")
    assert "unknown key 'windw', did you mean 'window'?" in exc.reason


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  window: 100 ", "  window: true ", "true is not a number"),
        ("  port: 8088", "  port: false", "false is not a number"),
        ("admin:\n  enabled: true", "admin:\n  enabled: 1", "1 is not true or false"),
    ],
)
def test_booleans_and_numbers_are_not_taken_for_each_other(
    env: None, configs: Path, old: str, new: str, expected: str
) -> None:
    config = configs / "gateway.yaml"
    edit(config, old, new)
    exc = _error(config)
    assert exc.line == line_of(config, new.splitlines()[-1])
    assert expected in exc.reason


def test_an_unquoted_number_where_text_is_expected_says_to_quote_it(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  password_env: TGW_SMSC_PASSWORD", "  password: 12345678")
    exc = _error(config)
    assert exc.line == line_of(config, "password: 12345678")
    assert 'quote it, "12345678"' in exc.reason


def test_an_unknown_ussd_profile_reason_names_no_placeholder_file(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  profile: standard", "  profile: klingon")
    exc = _error(config)
    assert "<config>" not in str(exc) and "klingon" in exc.reason


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  dir: campaigns", "  dir: gateway.yaml", "campaigns.dir: "),
        ("  menus: ussd/menus.yaml", "  menus: ussd", "ussd.menus: "),
        ("sim_keys: sim_keys.example.yaml", "sim_keys: no_such_keys.yaml", "sim_keys: "),
        ("sim_keys: sim_keys.example.yaml", "sim_keys: campaigns", "sim_keys: "),
        ("state_dir: ../var/gateway", "state_dir: gateway.yaml", "state_dir: "),
    ],
)
def test_a_named_path_of_the_wrong_kind_names_the_config_line(
    env: None, configs: Path, old: str, new: str, expected: str
) -> None:
    config = configs / "gateway.yaml"
    edit(config, old, new)
    exc = _error(config)
    assert exc.file == str(config) and exc.line == line_of(config, new)
    assert exc.reason.startswith(expected)


def test_tls_files_of_the_diameter_listener_are_checked_at_their_line(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(
        config,
        "    origin_realm: localdomain\n    allowed_peers:",
        "    origin_realm: localdomain\n    tls: {cert: certs/gw.crt, key: certs/gw.key}\n    allowed_peers:",
    )
    exc = _error(config)
    assert exc.line == line_of(config, "tls: {cert: certs/gw.crt")
    assert "ingest.diameter.tls" in exc.reason and "gw.crt" in exc.reason


def test_check_refuses_two_listeners_on_one_port(configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(
        config, "  http:\n    host: 127.0.0.1\n    port: 8081", "  http:\n    host: 127.0.0.1\n    port: 8088"
    )
    result = _tgw("run", "--config", str(config), "--check")
    assert result.returncode == 64, result.stderr
    assert "Traceback" not in result.stderr
    lines = config.read_text().splitlines()
    admin = lines.index("admin:")
    port = next(n for n in range(admin, len(lines)) if lines[n].startswith("  port:")) + 1
    assert f"{config}:{port}: admin.port: 127.0.0.1:8088 is also the listen address of ingest.http" in (
        result.stderr
    )


def test_check_refuses_a_state_dir_that_is_a_file_without_a_traceback(configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "state_dir: ../var/gateway", "state_dir: gateway.yaml")
    result = _tgw("run", "--config", str(config), "--check")
    assert result.returncode == 64, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config}:{line_of(config, 'state_dir: gateway.yaml')}: state_dir: " in result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [("  tps: 200", "  tps: .inf"), ("  response_timeout: 30", "  response_timeout: .nan")],
)
def test_non_finite_numbers_are_refused(env: None, configs: Path, old: str, new: str) -> None:
    config = configs / "gateway.yaml"
    edit(config, old, new)
    exc = _error(config)
    assert exc.line == line_of(config, new) and "finite" in exc.reason


# --- campaign files --------------------------------------------------------------------------------


def _campaign_errors(configs: Path) -> list[ConfigError]:
    return validate_campaign_dir(configs / "campaigns", ussd_menus=configs / "ussd" / "menus.yaml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  expires_after: 24h", "  expires_after: .inf", "finite"),
        ("  timeout: 3s", "  timeout: .nan", "finite"),
        ("cooldown: 24h", "cooldown: 99999999999d", "at most"),
        ("  timeout: 3s", "  timeout: 0", "greater than 0"),
    ],
)
def test_durations_must_be_finite_and_sane(configs: Path, old: str, new: str, expected: str) -> None:
    campaign = configs / "campaigns" / "upsell_new.yaml"
    edit(campaign, old, new)
    errors = _campaign_errors(configs)
    assert [(e.file, e.line) for e in errors] == [(str(campaign), line_of(campaign, new.strip()))]
    assert expected in errors[0].reason


def test_quiet_hours_with_a_zone_offset_are_refused(configs: Path) -> None:
    policy = configs / "campaigns" / "policy.yaml"
    edit(policy, 'start: "21:00"', 'start: "21:00+03:00"')
    errors = _campaign_errors(configs)
    assert [(e.file, e.line) for e in errors] == [(str(policy), line_of(policy, 'start: "21:00+03:00"'))]
    assert "offset" in errors[0].reason


def test_a_broken_catalogue_is_reported_once(configs: Path) -> None:
    catalogue = configs / "campaigns" / "catalogue.yaml"
    edit(catalogue, "    volume_mb: 200\n", "    volume_mb: 200\n    volume_mb: 300\n")
    errors = _campaign_errors(configs)
    assert [(e.file, e.line) for e in errors] == [(str(catalogue), line_of(catalogue, "volume_mb: 300"))]
    assert "twice" in errors[0].reason


def test_a_volume_of_true_is_refused(configs: Path) -> None:
    catalogue = configs / "campaigns" / "catalogue.yaml"
    edit(catalogue, "    volume_mb: 200\n", "    volume_mb: true\n")
    errors = _campaign_errors(configs)
    assert [(e.file, e.line) for e in errors] == [(str(catalogue), line_of(catalogue, "volume_mb: true"))]
    assert "not a number" in errors[0].reason


# --- scenario files --------------------------------------------------------------------------------


def _scenario_error(configs: Path, old: str, new: str) -> tuple[Path, ConfigError]:
    scenario = configs / "scenarios" / "small.yaml"
    edit(scenario, old, new)
    with pytest.raises(ConfigError) as caught:
        load_scenario(scenario, base=ROOT)
    return scenario, caught.value


def test_a_scenario_naming_a_missing_campaign_directory_names_its_line(configs: Path) -> None:
    scenario, exc = _scenario_error(configs, "campaigns: configs/campaigns", "campaigns: configs/nowhere")
    assert (exc.file, exc.line) == (str(scenario), line_of(scenario, "campaigns: configs/nowhere"))
    assert "configs/nowhere" in exc.reason


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('start: "2026-06-01T00:00:00+03:00"', 'start: "9999-12-25T00:00:00+03:00"', "start"),
        ("balance: {kind: lognormal, median: 50,", "balance: {kind: lognormal, median: 1.0e308,", "balance"),
        ("interest_half_life: 12h", "interest_half_life: .inf", "finite"),
        ("days: 7", "days: true", "not a number"),
    ],
)
def test_scenario_values_the_simulation_cannot_run_are_refused(
    configs: Path, old: str, new: str, expected: str
) -> None:
    scenario, exc = _scenario_error(configs, old, new)
    assert (exc.file, exc.line) == (str(scenario), line_of(scenario, new))
    assert expected in exc.reason


def test_simulate_with_a_far_start_exits_64_without_a_traceback(configs: Path) -> None:
    scenario = configs / "scenarios" / "small.yaml"
    edit(scenario, 'start: "2026-06-01T00:00:00+03:00"', 'start: "9999-12-25T00:00:00+03:00"')
    out = configs.parent / "out"
    result = _tgw("simulate", "--scenario", str(scenario), "--quiet", "--no-pcap", "--out", str(out))
    assert result.returncode == 64, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{scenario}:{line_of(scenario, 'start:')}: start: " in result.stderr
    assert not out.exists()  # nothing started


@pytest.mark.parametrize("code", ["+12345", "SHOP"])
def test_a_short_code_no_sim_card_can_answer_to_names_its_line(env: None, configs: Path, code: str) -> None:
    """With SIM keys the cards answer our DSTK offers to the short code: one they cannot dial (a '+',
    letters: the smsc schema allows both for SMS) is refused at its line, not only when the push
    service starts."""
    config = configs / "gateway.yaml"
    edit(config, 'short_code: "12345"', f'short_code: "{code}"')
    exc = _error(config)
    assert exc.file == str(config) and exc.line == line_of(config, f'short_code: "{code}"')
    assert exc.reason.startswith("smsc.short_code: ") and "a SIM card cannot answer to it" in exc.reason

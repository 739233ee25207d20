"""The gateway's config file (gateway/config.py): the shipped example validates, and every mistake, in
it or in a file it names, is reported with its file, line and reason before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tgw_kit import ROOT, copy_configs, edit, line_of

from gateway.config import load_gateway_config
from gateway.run import settings_of
from protocols.errors import ConfigError

SHIPPED = ROOT / "configs" / "gateway.yaml"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGW_SMSC_PASSWORD", "secret")
    monkeypatch.setenv("TGW_ADMIN_TOKEN", "0123456789abcdef-token")


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A copy of configs/ to break."""
    return copy_configs(tmp_path)


def test_the_shipped_config_validates(env: None) -> None:
    loaded = load_gateway_config(SHIPPED)
    assert loaded.campaigns_dir == ROOT / "configs" / "campaigns"
    assert loaded.sim_keys is not None and len(loaded.sim_keys) > 0
    settings = settings_of(loaded)
    assert settings.smpp.password == "secret" and settings.short_code == "12345"
    assert settings.ingest.journal.path == loaded.state_dir / "ingest.sqlite"
    assert loaded.config.admin.bearer() == "0123456789abcdef-token"


def test_a_wrong_value_names_its_line(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  window: 100 ", "  window: lots ")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(config)
    assert caught.value.file == str(config)
    assert caught.value.line == line_of(config, "window: lots")
    assert "window" in str(caught.value)


def test_an_unknown_key_is_refused(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  short_code:", "  shortcode: x\n  short_code:")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(config)
    assert caught.value.line == line_of(config, "shortcode: x")


def test_a_missing_secret_is_reported(configs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TGW_SMSC_PASSWORD", raising=False)
    monkeypatch.setenv("TGW_ADMIN_TOKEN", "0123456789abcdef-token")
    with pytest.raises(ConfigError, match="TGW_SMSC_PASSWORD"):
        load_gateway_config(configs / "gateway.yaml")


def test_the_admin_api_needs_a_token(env: None, configs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TGW_ADMIN_TOKEN")
    with pytest.raises(ConfigError, match="TGW_ADMIN_TOKEN"):
        load_gateway_config(configs / "gateway.yaml")
    config = configs / "gateway.yaml"
    edit(config, "  token_env: TGW_ADMIN_TOKEN", "  token: short")
    with pytest.raises(ConfigError, match="16 characters"):
        load_gateway_config(config)


def test_a_mistake_in_a_campaign_file_names_that_file(env: None, configs: Path) -> None:
    campaign = configs / "campaigns" / "upsell_new.yaml"
    edit(campaign, "  packages: [data_100mb,", "  packages: [data_150mb,")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(configs / "gateway.yaml")
    assert "upsell_new.yaml" in str(caught.value) and "data_150mb" in str(caught.value)


def test_a_missing_directory_is_reported(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  dir: campaigns", "  dir: nowhere")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(config)
    assert "does not exist" in str(caught.value) and caught.value.line == line_of(config, "dir: nowhere")


def test_a_bad_ussd_profile_is_reported(env: None, configs: Path) -> None:
    config = configs / "gateway.yaml"
    edit(config, "  profile: standard", "  profile: klingon")
    with pytest.raises(ConfigError, match="klingon") as caught:
        load_gateway_config(config)
    assert caught.value.line == line_of(config, "profile: klingon")

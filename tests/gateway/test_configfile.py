"""YAML config files validated by pydantic models: errors name the file, the line and the reason."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from gateway.configfile import load_yaml_model, parse_yaml_model
from protocols.errors import ConfigError


class Peer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    host: str
    realm: str = "*"


class Server(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    port: int = pydantic.Field(3868, ge=0, le=65535)
    peers: list[Peer] = []
    enabled: bool = True


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, Server, "server.yaml")
    return caught.value


def test_valid_file_gives_the_model() -> None:
    server = parse_yaml_model("port: 3870\npeers:\n  - host: a\n  - {host: b, realm: r}\n", Server, "x")
    assert server.port == 3870
    assert [(p.host, p.realm) for p in server.peers] == [("a", "*"), ("b", "r")]


def test_wrong_value_names_its_line() -> None:
    exc = error("enabled: true\nport: 70000\n")
    assert (exc.file, exc.line) == ("server.yaml", 2)
    assert "port" in exc.reason and "65535" in exc.reason


def test_error_inside_a_list_names_the_item_line() -> None:
    exc = error("peers:\n  - host: a\n  - host: b\n    realm: [1]\n")
    assert exc.line == 4
    assert exc.reason.startswith("peers.1.realm")


def test_missing_field_is_reported_at_its_mapping() -> None:
    exc = error("port: 1\npeers:\n  - realm: r\n")
    assert exc.line == 3
    assert "host" in exc.reason and "required" in exc.reason.lower()


def test_unknown_field_is_an_error_with_its_line() -> None:
    exc = error("port: 1\nprot: 2\n")
    assert exc.line == 2
    assert "prot" in exc.reason


def test_duplicate_key_is_an_error() -> None:
    exc = error("port: 1\nport: 2\n")
    assert exc.line == 2
    assert "twice" in exc.reason


def test_several_errors_are_counted() -> None:
    exc = error("port: -1\nenabled: maybe\n")
    assert "1 more error" in exc.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [("port: [1\n", "not valid YAML"), ("", "empty"), ("!!python/object:os.system x\n", "bad value")],
)
def test_broken_files(text: str, reason: str) -> None:
    assert reason in error(text).reason


def test_load_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("port: 1\n", encoding="utf-8")
    assert load_yaml_model(path, Server).port == 1
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml_model(tmp_path / "missing.yaml", Server)
    path.write_bytes(b"port: \xff\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_yaml_model(path, Server)

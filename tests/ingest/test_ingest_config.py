"""The ingest configuration: the shipped example loads, and mistakes name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest.config import load_ingest_config
from protocols.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "ingest.yaml"


def test_shipped_example_loads() -> None:
    config = load_ingest_config(SHIPPED)
    assert config.diameter is not None and config.diameter.port == 3868
    assert config.diameter.allowed_peers[0].origin_host == "pcef*.localdomain"
    assert config.diameter.sy_statuses["threshold-90"].percent == 90
    assert config.mqtt is not None and config.mqtt.topics == ("usage/#",)
    assert config.http is not None and config.http.port == 8081
    assert config.triggers.thresholds == (90,)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("ingest:\n  http:\n    port: 99999\n", 3, "port"),
        ("ingest:\n  http: {}\n  triggers:\n    thresholds: [90, 100]\n", 4, "percentages"),
        ("ingest:\n  mqtt:\n    topics: ['a/#/b']\n", 3, "last level"),
        ("ingest:\n  diameter:\n    origin_host: gw\n    origin_realm: r\n", 3, "allowed_peers"),
        ("ingest:\n  http:\n    enabled: false\n", 2, "no intake enabled"),
        ("ingest:\n  http: {}\n  jornal: {}\n", 3, "jornal"),
        (
            "ingest:\n  diameter:\n    origin_host: gw\n    origin_realm: r\n    allowed_peers: [{origin_host: a}]\n"
            "    sy_statuses:\n      x: {kind: gone}\n",
            7,
            "kind",
        ),
    ],
)
def test_mistakes_name_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_ingest_config(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line, caught.value
    assert reason in caught.value.reason

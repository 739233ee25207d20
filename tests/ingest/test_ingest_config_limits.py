"""The ingest config refuses what would only fail, or never act, once running (RFC 3539, RFC 6733).

- ``watchdog_interval`` (Tw, RFC 3539 3.4.1): ``.inf`` or ``.nan`` meant no watchdog at all (a dead
  peer never noticed), and a day or more is a unit typo; refused at its line with the bounds.
- ``vendor_id`` is a Diameter Unsigned32 (RFC 6733 5.3.3): a larger one passed the config and failed
  when the first Capabilities-Exchange was encoded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest.config import load_ingest_config
from protocols.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "ingest.yaml"

DIAMETER = (
    "ingest:\n"
    "  diameter:\n"
    "    origin_host: gw.example\n"
    "    origin_realm: example\n"
    "    allowed_peers: [{origin_host: pcef}]\n"
)


def _error(tmp_path: Path, extra: str) -> ConfigError:
    path = tmp_path / "ingest.yaml"
    path.write_text(DIAMETER + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_ingest_config(path)
    error = info.value
    assert error.file == str(path) and error.line == 6, str(error)
    assert str(error).startswith(f"{path}:6: "), str(error)
    return error


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (".inf", "finite"),
        ("-.inf", "finite"),
        (".nan", "finite"),
        ("1e12", "less than or equal to 3600"),
        ("86400", "less than or equal to 3600"),
        ("5", "greater than or equal to 6"),
    ],
)
def test_watchdog_interval_must_be_finite_and_sane(tmp_path: Path, value: str, reason: str) -> None:
    error = _error(tmp_path, f"    watchdog_interval: {value}\n")
    assert error.reason.startswith("ingest.diameter.watchdog_interval: "), error.reason
    assert reason in error.reason, error.reason


def test_watchdog_interval_bounds_load(tmp_path: Path) -> None:
    for value in ("6", "30", "300", "3600"):
        path = tmp_path / f"ingest-{value}.yaml"
        path.write_text(DIAMETER + f"    watchdog_interval: {value}\n", encoding="utf-8")
        config = load_ingest_config(path)
        assert config.diameter is not None and config.diameter.watchdog_interval == float(value)
    shipped = load_ingest_config(SHIPPED)
    assert shipped.diameter is not None and shipped.diameter.watchdog_interval == 30


def test_vendor_id_is_an_unsigned32(tmp_path: Path) -> None:
    error = _error(tmp_path, "    vendor_id: 4294967296\n")
    assert error.reason.startswith("ingest.diameter.vendor_id: "), error.reason
    path = tmp_path / "top.yaml"
    path.write_text(DIAMETER + "    vendor_id: 4294967295\n", encoding="utf-8")
    config = load_ingest_config(path)
    assert config.diameter is not None and config.diameter.vendor_id == 2**32 - 1

"""Config and command-line checks of the simulators, driven as an operator would: ``tgw simulate`` as a
real subprocess, the billing simulator's YAML file from disk.

- ``tgw simulate --days 0`` / ``--subscribers -3`` are usage errors (exit 64, one line naming the option,
  no traceback), checked before anything runs: ``model_copy(update=...)`` validates nothing.
- The billing simulator's config refuses a catalogue id given twice and non-finite seconds
  (``latency: [0.1, .inf]`` would hold a request for ever), each at its file and line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protocols.errors import ConfigError
from simulators.billing import load_billing_config

ROOT = Path(__file__).resolve().parents[2]
TGW = str(Path(sys.executable).parent / "tgw")
SCENARIO = ROOT / "configs" / "scenarios" / "small.yaml"
SHIPPED_BILLING = ROOT / "configs" / "simulators" / "billing.yaml"


def _simulate(tmp_path: Path, *options: str, scenario: Path = SCENARIO) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "report"
    return subprocess.run(
        [TGW, "simulate", "--scenario", str(scenario), "--out", str(out), "--quiet", "--no-pcap", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("options", "option", "reason"),
    [
        (("--days", "0"), "--days", "greater than or equal to 1"),
        (("--days", "367"), "--days", "less than or equal to 366"),
        (("--subscribers", "-3"), "--subscribers", "greater than or equal to 1"),
        (("--subscribers", "0", "--days", "1"), "--subscribers", "greater than or equal to 1"),
    ],
)
def test_simulate_refuses_out_of_range_overrides(
    tmp_path: Path, options: tuple[str, ...], option: str, reason: str
) -> None:
    done = _simulate(tmp_path, *options)
    assert done.returncode == 64, (done.returncode, done.stdout[-500:], done.stderr[-500:])
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"tgw: {option}: "), done.stderr
    assert reason in done.stderr, done.stderr
    assert not (tmp_path / "report").exists()  # refused before anything ran or was written


def test_simulate_refuses_subscribers_that_overflow_the_numbers(tmp_path: Path) -> None:
    """2,000 subscribers are within the scenario's limit but, from the first number 999999999000, not
    within 12-digit numbers: a rule across fields the override must meet too."""
    text = SCENARIO.read_text(encoding="utf-8")
    assert text.count('first_msisdn: "254711000000"') == 1
    scenario = tmp_path / "high_numbers.yaml"
    scenario.write_text(text.replace('"254711000000"', '"999999999000"'), encoding="utf-8")
    done = _simulate(tmp_path, "--subscribers", "2000", scenario=scenario)
    assert done.returncode == 64, (done.returncode, done.stderr[-500:])
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("tgw: --subscribers: "), done.stderr
    assert "overflow" in done.stderr, done.stderr
    assert not (tmp_path / "report").exists()


# --- the billing simulator's config file ---------------------------------------------------------------


def _billing_error(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "billing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_billing_config(path)
    error = info.value
    assert error.file == str(path)
    assert str(error).startswith(f"{path}:{error.line}: "), str(error)
    return error


def test_shipped_billing_config_loads() -> None:
    config = load_billing_config(SHIPPED_BILLING)
    assert len({p.id for p in config.catalogue}) == len(config.catalogue) == 5


def test_billing_catalogue_id_given_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    text = (
        "currency: KES\n"
        "catalogue:\n"
        '  - {id: data_100mb, volume_mb: 100, price: "20.00", validity_days: 1}\n'
        '  - {id: data_200mb, volume_mb: 200, price: "50.00"}\n'
        '  - {id: data_100mb, volume_mb: 150, price: "25.00"}\n'  # line 5
    )
    error = _billing_error(tmp_path, text)
    assert error.line == 5, str(error)
    assert "catalogue.2.id" in error.reason and "'data_100mb'" in error.reason, error.reason
    assert "line 3" in error.reason, error.reason  # where it was first given


@pytest.mark.parametrize(
    ("faults", "key", "line"),
    [
        ("  latency: [0.1, .inf]\n", "faults.latency.1", 3),
        ("  latency: [.nan, 0.1]\n", "faults.latency.0", 3),
        ("  seed: 1\n  retry_after: .inf\n", "faults.retry_after", 4),
    ],
)
def test_billing_non_finite_seconds_are_refused(tmp_path: Path, faults: str, key: str, line: int) -> None:
    error = _billing_error(tmp_path, "currency: KES\nfaults:\n" + faults)
    assert error.line == line, str(error)
    assert error.reason.startswith(f"{key}: "), error.reason
    assert "finite" in error.reason, error.reason


def test_billing_absurd_latency_is_refused(tmp_path: Path) -> None:
    """A latency of a day per request is a typo (ms for s): every request would time out."""
    error = _billing_error(tmp_path, "faults:\n  latency: [0.1, 86400]\n")
    assert error.line == 2 and error.reason.startswith("faults.latency.1: "), str(error)

"""The ingest service built from a YAML config: Diameter over mutual TLS, Sy statuses from config,
triggers out, and configuration mistakes refused before anything listens."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from campaign_core.usage import Trigger, TriggerKind
from gateway.ingest.config import load_ingest_config
from gateway.ingest.diameter import DiameterClient, DiameterSettings
from gateway.ingest.service import IngestService, diameter_settings
from protocols.diameter.credit_control import PolicyCounterStatusReport, build_sy_snr, result_code
from protocols.errors import ConfigError, TransportError


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl binary is needed to make test certificates: apt-get install openssl")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def write(tmp_path: Path, port: int, tls: str) -> Path:
    path = tmp_path / "ingest.yaml"
    path.write_text(
        f"""ingest:
  diameter:
    port: {port}
    origin_host: gw.localdomain
    origin_realm: localdomain
    allowed_peers: [{{origin_host: ocs.localdomain}}]
{tls}
    sy_statuses:
      almost-there: {{kind: threshold, percent: 80}}
      gone: {{kind: exhausted}}
  journal:
    path: {tmp_path / "ingest.sqlite"}
  triggers:
    thresholds: [80]
""",
        encoding="utf-8",
    )
    return path


def snr(msisdn: str, status: str) -> object:
    return build_sy_snr(
        session_id=f"ocs.localdomain;{msisdn}",
        origin_host="ocs.localdomain",
        origin_realm="localdomain",
        destination_realm="localdomain",
        destination_host="gw.localdomain",
        policy_counter_status_report=[
            PolicyCounterStatusReport(policy_counter_identifier="data-1gb", policy_counter_status=status)
        ],
        msisdn=msisdn,
    )


async def test_mutual_tls_and_sy_statuses_from_the_config(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    gw_cert, gw_key = certificate(tmp_path, "gw.localdomain")
    ocs_cert, ocs_key = certificate(tmp_path, "ocs.localdomain")
    tls = f"    tls: {{cert: {gw_cert}, key: {gw_key}, ca: {ocs_cert}}}"
    config = load_ingest_config(write(tmp_path, free_port(), tls))
    triggers: list[Trigger] = []
    async with IngestService(config, triggers.append) as service:
        assert service.diameter_address is not None
        host, port = service.diameter_address

        trusted = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(gw_cert))
        trusted.load_cert_chain(ocs_cert, ocs_key)
        ocs = DiameterSettings(origin_host="ocs.localdomain", origin_realm="localdomain", tls=trusted)
        client = DiameterClient(ocs, host, port, server_hostname="gw.localdomain")
        await client.start()
        try:
            for status in ("almost-there", "unknown-status", "gone"):
                answer = await client.request(snr("254700000001", status))  # type: ignore[arg-type]
                assert result_code(answer) == 2001
        finally:
            await client.stop()

        # no client certificate: the TLS handshake fails, no CER ever reaches the engine
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(gw_cert))
        stranger = DiameterClient(
            DiameterSettings(origin_host="ocs.localdomain", origin_realm="localdomain", tls=anonymous),
            host,
            port,
            server_hostname="gw.localdomain",
        )
        await stranger.start()
        try:
            with pytest.raises(TransportError):
                await stranger.wait_open(1.0)
        finally:
            await stranger.stop()
    assert [(t.kind, t.level, t.msisdn, t.source) for t in triggers] == [
        (TriggerKind.THRESHOLD, 80, "254700000001", "diameter:sy"),
        (TriggerKind.EXHAUSTED, 100, "254700000001", "diameter:sy"),
    ]


def test_unreadable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    config = load_ingest_config(
        write(tmp_path, 0, f"    tls: {{cert: {tmp_path}/none.crt, key: {tmp_path}/none.key}}")
    )
    assert config.diameter is not None
    with pytest.raises(ConfigError, match=r"diameter\.tls"):
        diameter_settings(config.diameter)

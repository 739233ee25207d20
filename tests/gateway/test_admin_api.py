"""The admin HTTP API (gateway/admin.py) of a whole gateway on loopback.

The gateway (``gateway.app.Gateway``) runs against the SMSC simulator with handsets and SIM cards and
the billing simulator over HTTP, as in test_campaign_channels.py; the tests talk to ``AdminServer``
over a real socket with aiohttp's client: the bearer token on every route (from the OpenAPI document),
liveness and readiness, campaigns (pause, resume, reload), a subscriber's decision trail, KPIs and a
test message that reaches the handset. ``network`` and ``Network`` are shared with test_metrics.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_bed import (
    CAMPAIGNS,
    DIAMETER,
    MSISDNS,
    TOKEN,
    Network,
    exhausted,
    kinds,
    until,
)

from campaign_core.model import RecordKind
from gateway.admin import OPENAPI
from protocols.errors import ConfigError
from simulators.handset import ReactionDelay, UserAction, UserPolicy


def _documented() -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item)


def _concrete(path: str) -> str:
    return path.replace("{campaign_id}", "upsell_new").replace("{msisdn}", MSISDNS[0])


async def test_the_openapi_document_describes_every_route_and_no_other(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    served = await network.call(admin, "GET", "/openapi.json")
    assert served.status == 200
    document = served.json()
    assert document == OPENAPI
    assert document["openapi"].startswith("3.1")
    assert admin.routes() == set(_documented())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (method, path)
            parameters = {p["name"] for p in operation.get("parameters", ())}
            assert parameters == set(re.findall(r"\{(\w+)\}", path)), (method, path)


@pytest.mark.parametrize(("method", "path"), _documented())
async def test_every_route_needs_the_token(network: Network, method: str, path: str) -> None:
    """No token, another token, another scheme: 401, ``WWW-Authenticate: Bearer``, the same body, and
    nothing done (a refused pause pauses nothing, a refused test message sends nothing)."""
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    url = _concrete(path)
    body = {"to": MSISDNS[0], "text": "hello"} if method == "POST" else None
    answers = [
        await network.call(admin, method, url, token=None, body=body),
        await network.call(admin, method, url, token="not-the-token", body=body),
        await network.call(admin, method, url, token=TOKEN + "x", body=body),
        await network.call(admin, method, url, authorization=f"Basic {TOKEN}", body=body),
        await network.call(admin, method, url, authorization=TOKEN, body=body),
    ]
    for answer in answers:
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json() == {"error": "unauthorized"}
    assert not any(status.paused for status in gateway.campaign_status())
    assert network.handsets[MSISDNS[0]].inbox == []
    assert gateway.smpp.stats.submitted == 0
    authorized = await network.call(admin, method, url, body=body)
    assert authorized.status != 401


async def test_401_comes_before_404_and_405(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    for method, path in (("GET", "/nowhere"), ("DELETE", "/v1/campaigns"), ("GET", "/v1/campaigns/x/pause")):
        refused = await network.call(admin, method, path, token=None)
        assert (refused.status, refused.json()) == (401, {"error": "unauthorized"})
    missing = await network.call(admin, "GET", "/nowhere")
    assert missing.status == 404 and set(missing.json()) == {"error"}
    wrong_method = await network.call(admin, "DELETE", "/v1/campaigns")
    assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]
    assert set(wrong_method.json()) == {"error"}


# --- health ----------------------------------------------------------------------------------------


async def test_live_and_ready(network: Network) -> None:
    """Ready while SMPP is bound and the store writable; 503 naming what is wrong otherwise."""
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    live = await network.call(admin, "GET", "/health/live")
    assert (live.status, live.json()) == (200, {"status": "alive"})
    ready = await network.call(admin, "GET", "/health/ready")
    assert ready.status == 200, ready.json()
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"smpp", "store"}  # no Diameter configured

    # the store's file gone: not writable
    store = Path(gateway.store.path)
    moved = store.with_name("moved.sqlite")
    store.rename(moved)
    try:
        gone = await network.call(admin, "GET", "/health/ready")
    finally:
        moved.rename(store)
    assert gone.status == 503
    assert gone.json()["checks"]["store"]["ok"] is False
    assert gone.json()["checks"]["smpp"]["ok"] is True
    assert len(gone.json()["reasons"]) == 1 and "campaign store" in gone.json()["reasons"][0]
    assert (await network.call(admin, "GET", "/health/ready")).status == 200

    # the SMSC goes away: the bind is lost
    await network.smsc.stop()
    await until(lambda: not gateway.smpp.is_bound)
    down = await network.call(admin, "GET", "/health/ready")
    assert down.status == 503
    assert down.json()["status"] == "not ready"
    assert down.json()["checks"]["smpp"]["ok"] is False
    assert any("SMPP not bound" in reason for reason in down.json()["reasons"])
    assert (await network.call(admin, "GET", "/health/live")).status == 200


async def test_ready_needs_the_outgoing_diameter_peers(network: Network) -> None:
    # a port nobody listens on: the outgoing peer never opens
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    closed_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    gateway = await network.gateway(
        ingest={"diameter": {**DIAMETER, "connect_to": [{"host": "127.0.0.1", "port": closed_port}]}}
    )
    admin = await network.admin(gateway)
    answer = await network.call(admin, "GET", "/health/ready")
    assert answer.status == 503
    diameter = answer.json()["checks"]["diameter"]
    assert diameter["ok"] is False and diameter["open_peers"] == 0
    assert answer.json()["reasons"] == [f"Diameter peer 127.0.0.1:{closed_port} not open"]


# --- campaigns -------------------------------------------------------------------------------------


async def test_campaigns_list_pause_resume(network: Network, caplog: pytest.LogCaptureFixture) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    listed = await network.call(admin, "GET", "/v1/campaigns")
    assert listed.status == 200
    (upsell,) = listed.json()["campaigns"]
    assert upsell["id"] == "upsell_new" and upsell["status"] == "running" and upsell["trigger"] == "exhausted"
    assert upsell["source"].endswith("upsell_new.yaml")

    with caplog.at_level(logging.INFO, logger="gateway.admin"):
        paused = await network.call(admin, "POST", "/v1/campaigns/upsell_new/pause")
    assert (paused.status, paused.json()["status"], paused.json()["paused"]) == (200, "paused", True)
    assert any(getattr(r, "campaign_id", None) == "upsell_new" for r in caplog.records)
    one = await network.call(admin, "GET", "/v1/campaigns/upsell_new")
    assert one.json()["status"] == "paused"
    assert one.json()["config"]["offer"]["packages"][0] == "data_100mb"

    # a paused campaign starts no journey
    await gateway.on_trigger(exhausted(MSISDNS[0], network.clock))
    assert RecordKind.ELIGIBLE not in kinds(gateway, MSISDNS[0])
    assert RecordKind.CONTACT not in kinds(gateway, MSISDNS[0])

    resumed = await network.call(admin, "POST", "/v1/campaigns/upsell_new/resume")
    assert (resumed.status, resumed.json()["status"]) == (200, "running")
    await gateway.on_trigger(exhausted(MSISDNS[1], network.clock))
    assert RecordKind.ELIGIBLE in kinds(gateway, MSISDNS[1])
    await until(lambda: RecordKind.CONTACT in kinds(gateway, MSISDNS[1]))

    for method, path in (
        ("GET", "/v1/campaigns/nope"),
        ("POST", "/v1/campaigns/nope/pause"),
        ("POST", "/v1/campaigns/nope/resume"),
    ):
        missing = await network.call(admin, method, path)
        assert missing.status == 404 and "nope" in missing.json()["error"]


async def test_a_broken_campaign_file_is_refused_and_the_old_campaigns_run(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    broken = network.campaigns / "broken.yaml"
    broken.write_text("kind: campaign\nid: broken\ntrigger:\n  kind: nonsense\n", encoding="utf-8")
    refused = await network.call(admin, "POST", "/v1/campaigns/reload")
    assert refused.status == 422
    error = refused.json()["error"]
    assert "broken.yaml:4" in error and "trigger.kind" in error and "\n" not in error
    listed = await network.call(admin, "GET", "/v1/campaigns")
    assert [c["id"] for c in listed.json()["campaigns"]] == ["upsell_new"]
    await gateway.on_trigger(exhausted(MSISDNS[0], network.clock))
    await until(lambda: RecordKind.CONTACT in kinds(gateway, MSISDNS[0]))

    # fixed: the reload goes through
    broken.unlink()
    shutil.copy(CAMPAIGNS / "upsell_old.yaml", network.campaigns / "upsell_old.yaml")
    reloaded = await network.call(admin, "POST", "/v1/campaigns/reload")
    assert reloaded.status == 200, reloaded.json()
    assert reloaded.json()["status"] == "reloaded"
    assert sorted(reloaded.json()["campaigns"]) == ["upsell_new", "upsell_old"]
    assert reloaded.json()["dropped_offers"] == []
    listed = await network.call(admin, "GET", "/v1/campaigns")
    assert sorted(c["id"] for c in listed.json()["campaigns"]) == ["upsell_new", "upsell_old"]


@dataclass(frozen=True)
class ConfigReload:
    """The shape of ``tgw run``'s reload outcome: a refusal is reported in ``error``."""

    applied: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()
    error: str | None = None


async def test_reload_calls_the_given_reload(network: Network) -> None:
    """``tgw run`` hands its configuration reload: the API calls it instead of ``Gateway.reload``; a
    bad configuration, raised as ``ConfigError`` or reported in ``error``, is a 422."""
    gateway = await network.gateway()
    outcomes: list[object] = [
        ConfigError("smsc.tps: must be positive", "/etc/tgw/gateway.yaml", 12),
        ConfigReload(error="/etc/tgw/gateway.yaml:3: admin.token: too short"),
        ConfigReload(applied=("campaigns", "logging"), restart_needed=("smsc",)),
        {"config": "/etc/tgw/gateway.yaml"},
    ]

    async def reload() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    admin = await network.admin(gateway, reload=reload)
    answers = [await network.call(admin, "POST", "/v1/campaigns/reload") for _ in range(4)]
    assert [a.status for a in answers] == [422, 422, 200, 200]
    assert answers[0].json() == {"error": "/etc/tgw/gateway.yaml:12: smsc.tps: must be positive"}
    assert answers[1].json() == {"error": "/etc/tgw/gateway.yaml:3: admin.token: too short"}
    assert answers[2].json() == {
        "status": "reloaded",
        "applied": ["campaigns", "logging"],
        "restart_needed": ["smsc"],
    }
    assert answers[3].json() == {"status": "reloaded", "config": "/etc/tgw/gateway.yaml"}
    assert outcomes == []


async def test_a_new_token_takes_effect(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    admin.set_token("another-token-0123456789")
    assert (await network.call(admin, "GET", "/health/live")).status == 401
    live = await network.call(admin, "GET", "/health/live", token="another-token-0123456789")
    assert live.status == 200


# --- subscribers, KPIs ------------------------------------------------------------------------------


async def test_explain_and_kpis_after_a_journey(network: Network) -> None:
    msisdn = MSISDNS[0]
    network.handsets[msisdn].user = UserPolicy(UserAction.ACCEPT, delay=ReactionDelay.fixed(0.1))
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    await gateway.on_trigger(exhausted(msisdn, network.clock))
    await until(
        lambda: RecordKind.FULFILLED in kinds(gateway, msisdn),
        describe=lambda: kinds(gateway, msisdn),
    )

    answer = await network.call(admin, "GET", f"/v1/subscribers/{msisdn}/explain")
    assert answer.status == 200
    trail = answer.json()
    assert trail["msisdn"] == msisdn
    recorded = [record["kind"] for record in trail["records"]]
    assert recorded == [kind.value for kind in kinds(gateway, msisdn)]
    assert {"trigger", "eligible", "scored", "contact", "response", "fulfilled"} <= set(recorded)
    assert all(record["type"] == "Record" for record in trail["records"])
    assert trail["text"].startswith(f"decision trail of {msisdn}: {len(recorded)} records\n")
    assert "fulfilled" in trail["text"]
    assert isinstance(trail["pending"], list)
    plus = await network.call(admin, "GET", f"/v1/subscribers/+{msisdn}/explain")
    assert plus.json()["records"] == trail["records"]

    unknown = await network.call(admin, "GET", "/v1/subscribers/254799999999/explain")
    assert unknown.status == 404 and "254799999999" in unknown.json()["error"]
    bad = await network.call(admin, "GET", "/v1/subscribers/abc/explain")
    assert bad.status == 400

    kpis = await network.call(admin, "GET", "/v1/kpis")
    assert kpis.status == 200
    (row,) = kpis.json()["kpis"]
    assert row["campaign_id"] == "upsell_new"
    assert (row["triggers"], row["offers"], row["activations"]) == (1, 1, 1)
    assert row["contacts"] == {"stk": 1}
    assert row["latency_p50"] is not None and row["latency_p50"] >= 1.0  # the event was 1 s old
    assert "upsell_new" in kpis.json()["table"]


# --- the test message ------------------------------------------------------------------------------


async def test_a_test_message_reaches_the_handset(network: Network) -> None:
    msisdn = MSISDNS[2]
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    sent = await network.call(
        admin, "POST", "/v1/messages/test", body={"to": f"+{msisdn}", "text": "Test from the NOC"}
    )
    assert sent.status == 200, sent.json()
    ids = sent.json()["message_ids"]
    assert len(ids) == 1 and ids[0]
    phone = network.handsets[msisdn]
    await until(lambda: "Test from the NOC" in phone.inbox, describe=lambda: phone.inbox)
    receipt = await gateway.smpp.wait_receipt(ids[0], timeout=5.0)  # registered_delivery=1
    assert receipt.stat == "DELIVRD"

    long_text = "A long test message. " * 20  # three parts
    parts = await network.call(admin, "POST", "/v1/messages/test", body={"to": msisdn, "text": long_text})
    assert parts.status == 200 and len(parts.json()["message_ids"]) == 3
    await until(lambda: long_text in phone.inbox, describe=lambda: phone.inbox)


WRONG_TEST_MESSAGES = [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "must be an object"),
    (b'{"text": "hi"}', "to:"),
    (b'{"to": "12ab", "text": "hi"}', "to:"),
    (b'{"to": "254700000201"}', "text:"),
    (b'{"to": "254700000201", "text": ""}', "text:"),
    (b'{"to": "254700000201", "text": "hi", "from": "x"}', "unknown member 'from'"),
    (b'{"to": "254700000201", "text": "' + b"x" * 2000 + b'"}', "SMS parts"),
]


async def test_a_wrong_test_message_is_refused(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    for raw, fragment in WRONG_TEST_MESSAGES:
        answer = await network.call(admin, "POST", "/v1/messages/test", raw=raw)
        assert answer.status == 400, raw
        assert fragment in answer.json()["error"], (raw, answer.json())
    too_big = await network.call(
        admin, "POST", "/v1/messages/test", raw=b'{"to": "1", "text": "' + b"x" * 70_000 + b'"}'
    )
    assert too_big.status == 413 and set(too_big.json()) == {"error"}
    assert gateway.smpp.stats.submitted == 0


async def test_a_test_message_without_a_bind_is_refused(network: Network) -> None:
    gateway = await network.gateway()
    admin = await network.admin(gateway)
    await network.smsc.stop()
    await until(lambda: not gateway.smpp.is_bound)
    answer = await network.call(admin, "POST", "/v1/messages/test", body={"to": MSISDNS[0], "text": "hi"})
    assert answer.status == 503 and "not bound" in answer.json()["error"]

"""``POST /v1/events`` (gateway.ingest.http) over a real loopback socket with the aiohttp client, into
the real pipeline: single objects, arrays, JSON lines with per-line errors, and every refusal
(400, 401, 413, 415, 503)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import pytest

from campaign_core.usage import TriggerKind, UsageEvent
from gateway.ingest.http import HttpIngest
from protocols.errors import TransportError

MakeDpi = Callable[..., dict[str, Any]]
TOKEN = "s3cret-token"
LIMIT = 64 * 1024


@pytest.fixture
async def server(rig: Any) -> AsyncIterator[HttpIngest]:
    ingest = HttpIngest(rig.pipeline, "127.0.0.1", 0, token=TOKEN, max_body_bytes=LIMIT)
    await ingest.start()
    yield ingest
    await ingest.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield session


async def post(
    client: aiohttp.ClientSession, url: str, body: bytes, content_type: str, **headers: str
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    async with client.post(url, data=body, headers={"Content-Type": content_type, **headers}) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, response.headers


def lines(*items: dict[str, Any] | bytes) -> bytes:
    return (
        b"\n".join(item if isinstance(item, bytes) else json.dumps(item).encode() for item in items) + b"\n"
    )


async def test_one_event_object_is_accepted_and_triggers(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi
) -> None:
    event = make_dpi("ev-90", used_bytes=4_600, quota_bytes=5_000)
    status, answer, _ = await post(client, server.url, json.dumps(event).encode(), "application/json")
    assert (status, answer) == (202, {"accepted": 1, "rejected": 0, "errors": []})
    assert [(t.kind, t.level, t.event_id, t.source) for t in rig.triggers] == [
        (TriggerKind.THRESHOLD, 90, "ev-90", "dpi:http")
    ]


async def test_an_array_is_one_batch(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi
) -> None:
    events = [make_dpi(f"e{i}", msisdn=f"4670000{i:04d}", kind="exhausted") for i in range(20)]
    status, answer, _ = await post(
        client, server.url, json.dumps(events).encode(), "application/json; charset=utf-8"
    )
    assert (status, answer["accepted"], answer["rejected"]) == (202, 20, 0)
    assert len(rig.triggers) == 20
    assert rig.pipeline.counters.batches_taken == 1
    # durably taken before the answer: another connection to the file sees the batch
    with sqlite3.connect(rig.path) as conn:
        assert conn.execute("SELECT sum(event_count) FROM batches").fetchone() == (20,)


@pytest.mark.parametrize(
    "content_type", ["application/x-ndjson", "application/jsonl", "application/x-jsonlines"]
)
async def test_json_lines_with_bad_lines_take_the_good_ones(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi, content_type: str
) -> None:
    body = lines(
        make_dpi("good-1", percent=95.0),
        b"{oops",
        make_dpi("bad-msisdn", msisdn="12"),
        make_dpi("good-2", msisdn="46709999999", kind="payg_started"),
        make_dpi("bad-time", timestamp="2024-06-01T12:00:00"),
    )
    status, answer, _ = await post(client, server.url, body, content_type)
    assert status == 202
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    assert [(e["line"], e.get("event_id")) for e in answer["errors"]] == [
        (2, None),
        (3, "bad-msisdn"),
        (5, "bad-time"),
    ]
    assert answer["errors"][0]["error"].startswith("invalid JSON")
    assert answer["errors"][1]["error"].startswith("msisdn: must be 5 to 15 digits")
    assert "no UTC offset" in answer["errors"][2]["error"]
    assert sorted(t.event_id for t in rig.triggers) == ["good-1", "good-2"]
    assert rig.pipeline.counters.bad_events == 3
    assert (server.counters.accepted, server.counters.rejected) == (2, 3)


async def test_no_valid_event_is_400_with_the_same_body(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi
) -> None:
    status, answer, _ = await post(
        client, server.url, lines(b"[]", make_dpi("x", kind="nope")), "application/x-ndjson"
    )
    assert status == 400
    assert (answer["accepted"], answer["rejected"]) == (0, 2)
    assert [e["line"] for e in answer["errors"]] == [1, 2]
    status, answer, _ = await post(client, server.url, b"", "application/json")
    assert status == 400 and answer["errors"][0]["line"] == 0
    assert rig.pipeline.counters.events_taken == 0


async def test_bodies_over_the_limit_are_413(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi
) -> None:
    one = json.dumps(make_dpi("e")).encode() + b"\n"
    big = one * (LIMIT // len(one) + 1)
    status, answer, _ = await post(client, server.url, big, "application/x-ndjson")
    assert status == 413
    assert f"larger than {LIMIT}" in answer["errors"][0]["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    async with client.post(
        server.url, data=chunks(), headers={"Content-Type": "application/x-ndjson"}
    ) as response:
        assert response.status == 413
    fits = one * (LIMIT // len(one))
    status, answer, _ = await post(client, server.url, fits, "application/x-ndjson")
    assert status == 202 and answer["accepted"] == LIMIT // len(one)


async def test_other_content_types_are_415(
    server: HttpIngest, client: aiohttp.ClientSession, make_dpi: MakeDpi
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        status, answer, _ = await post(client, server.url, json.dumps(make_dpi("e")).encode(), content_type)
        assert status == 415
        assert "application/x-ndjson" in answer["errors"][0]["error"]


async def test_the_bearer_token_is_required(server: HttpIngest, rig: Any, make_dpi: MakeDpi) -> None:
    body = json.dumps(make_dpi("e", percent=99.0)).encode()
    async with aiohttp.ClientSession() as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            status, answer, response_headers = await post(
                anonymous, server.url, body, "application/json", **headers
            )
            assert status == 401
            assert response_headers["WWW-Authenticate"].startswith("Bearer")
            assert answer["accepted"] == 0
        assert rig.triggers == []
        status, _, _ = await post(
            anonymous, server.url, body, "application/json", Authorization=f"Bearer {TOKEN}"
        )
        assert status == 202


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    async def take(self, events: Sequence[UsageEvent]) -> None:
        self.calls += 1
        raise TransportError("journal ingest.sqlite: disk I/O error")


async def test_a_journal_failure_is_503_and_nothing_accepted(make_dpi: MakeDpi) -> None:
    sink = FailingSink()
    async with HttpIngest(sink, "127.0.0.1", 0) as ingest, aiohttp.ClientSession() as client:
        body = lines(make_dpi("a"), b"junk")
        status, answer, headers = await post(client, ingest.url, body, "application/x-ndjson")
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert (answer["accepted"], answer["rejected"]) == (0, 2)
    assert "disk I/O error" in answer["errors"][0]["error"]
    assert answer["errors"][1]["line"] == 2
    assert sink.calls == 1
    assert ingest.counters.unavailable == 1


async def test_only_post_on_the_events_path(server: HttpIngest, client: aiohttp.ClientSession) -> None:
    async with client.get(server.url) as response:
        assert response.status == 405
    async with client.post(server.url.replace("/v1/events", "/v2/events"), data=b"{}") as response:
        assert response.status == 404


async def test_json_lines_are_journaled_as_posted_and_replay_to_the_same_triggers(
    server: HttpIngest, client: aiohttp.ClientSession, rig: Any, make_dpi: MakeDpi, make_rig: Any
) -> None:
    body = lines(
        *(make_dpi(f"e{i}", msisdn=f"+4670000{i:04d}", kind="exhausted") for i in range(5)),
        make_dpi("bad", kind="nope"),
    )
    status, answer, _ = await post(client, server.url, body, "application/x-ndjson")
    assert (status, answer["accepted"], answer["rejected"]) == (202, 5, 1)
    with sqlite3.connect(rig.path) as conn:
        rows = conn.execute("SELECT format, events FROM batches").fetchall()
    conn.close()
    assert len(rows) == 1 and rows[0][0] == "dpi-jsonl"
    assert rows[0][1] == b"\n".join(body.split(b"\n")[:5])  # the valid lines, as posted
    status, _, _ = await post(client, server.url, json.dumps([make_dpi("arr")]).encode(), "application/json")
    assert status == 202
    first = [(t.event_id, t.msisdn, t.source) for t in rig.triggers]
    assert [msisdn for _, msisdn, _ in first][:5] == [f"4670000{i:04d}" for i in range(5)]

    await rig.pipeline.close()
    with sqlite3.connect(rig.path) as conn:  # as if the process died before marking anything
        conn.execute("UPDATE batches SET processed = 0")
    conn.close()
    restarted = await make_rig()
    assert await restarted.pipeline.recover() == 2
    assert [(t.event_id, t.msisdn, t.source) for t in restarted.triggers] == first
    await restarted.pipeline.close()
    await restarted.journal.close()

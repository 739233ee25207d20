"""The network simulator's Diameter emitter against the gateway's Diameter server over loopback."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from campaign_core.usage import UsageEvent, UsageKind
from gateway.ingest.diameter import DiameterClient, DiameterServer, DiameterSettings
from simulators.network import DiameterDialect, DiameterEmitter, UsageMeter


class Recorder:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    async def take(self, events: Sequence[UsageEvent]) -> None:
        self.events.extend(events)


@pytest.mark.parametrize("dialect", list(DiameterDialect))
async def test_a_period_of_usage_reaches_the_gateway_in_each_dialect(dialect: DiameterDialect) -> None:
    sink = Recorder()
    server = DiameterServer(
        DiameterSettings(
            origin_host="gw.localdomain", origin_realm="localdomain", port=0, allowed_peers=(("*", "*"),)
        ),
        sink,
    )
    host, port = await server.start()
    client = DiameterClient(
        DiameterSettings(origin_host="pcef.localdomain", origin_realm="localdomain"), host, port
    )
    await client.start()
    try:
        emitter = DiameterEmitter(
            client,
            dialect,
            origin_host="pcef.localdomain",
            origin_realm="localdomain",
            destination_realm="localdomain",
            destination_host="gw.localdomain",
        )
        meter = UsageMeter((90,))
        meter.subscribe("254700000001", "data-1gb", 1000)
        notes = [*meter.use("254700000001", 950, 10.0), *meter.use("254700000001", 50, 20.0)]
        notes.append(meter.renew("254700000001", 30.0))
        await emitter.emit(notes)
    finally:
        await client.stop()
        await server.stop()
    kinds = [(e.kind, e.msisdn, e.event_time) for e in sink.events if e.kind is not UsageKind.USAGE]
    if dialect is DiameterDialect.GX:
        # Gx reports usage; the armed threshold (GSU) turns it into a percentage
        assert [(e.kind, e.percent, e.package_id) for e in sink.events] == [
            (UsageKind.USAGE, 95.0, "mk:data-1gb"),
            (UsageKind.USAGE, 5.0, "mk:data-1gb"),
        ]
        assert emitter.answered == 2
    elif dialect is DiameterDialect.GY:
        assert kinds == [
            (UsageKind.THRESHOLD, "254700000001", 10.0),
            (UsageKind.EXHAUSTED, "254700000001", 20.0),
        ]
        assert {e.package_id for e in sink.events} == {"rg:10"}
        assert emitter.answered == 3  # CCR-I and two CCR-U
    else:
        # an SNR carries no Event-Timestamp: the gateway stamps its receive time
        assert [(e.kind, e.percent, e.package_id) for e in sink.events] == [
            (UsageKind.THRESHOLD, 90.0, "pc:data-1gb"),
            (UsageKind.EXHAUSTED, None, "pc:data-1gb"),
            (UsageKind.RENEWED, None, "pc:data-1gb"),
        ]
        assert emitter.answered == 3

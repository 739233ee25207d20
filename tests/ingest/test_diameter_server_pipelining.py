"""The Diameter server under pipelined load (RFC 6733 section 3 framing): many requests in one TCP
segment are handed to the engine as runs of whole frames, at most ``max_in_flight`` at a time, and a
broken frame, an engine error or a refused CER in the middle of a run ends the connection as before."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from campaign_core.usage import UsageEvent
from gateway.ingest.diameter import DiameterServer, DiameterSettings
from protocols.diameter.codec import CommandFlag, Message, decode, encode
from protocols.diameter.credit_control import (
    CcRequestType,
    GrantedServiceUnit,
    MultipleServicesCreditControl,
    RequestedServiceUnit,
    UsedServiceUnit,
    answer_services,
    build_gy_ccr,
    encode_answer,
    parse_request,
    result_code,
)
from protocols.diameter.dictionary import avp

GW = "gw.localdomain"
REALM = "localdomain"
PCEF = "pcef.localdomain"


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[UsageEvent]] = []

    async def take(self, events: Sequence[UsageEvent]) -> None:
        await asyncio.sleep(0)  # let the reader run meanwhile, as a journal would
        self.batches.append(list(events))


def settings(**changes: object) -> DiameterSettings:
    values: dict[str, object] = {
        "origin_host": GW,
        "origin_realm": REALM,
        "port": 0,
        "allowed_peers": ((PCEF, REALM),),
        "origin_state_id": 1234,
        "disconnect_timeout": 1.0,
        "gy_grant_octets": 1000,
    }
    values.update(changes)
    return DiameterSettings(**values)  # type: ignore[arg-type]


def cer(origin_host: str = PCEF) -> bytes:
    return encode(
        Message(
            command_flags=int(CommandFlag.REQUEST),
            command_code=257,
            application_id=0,
            hop_by_hop=1,
            end_to_end=1,
            avps=(avp("Origin-Host", origin_host), avp("Origin-Realm", REALM), avp("Auth-Application-Id", 4)),
        )
    )


def ccr(number: int) -> Message:
    message = build_gy_ccr(
        session_id=f"pcef;{number % 7}",
        origin_host=PCEF,
        origin_realm=REALM,
        destination_realm=REALM,
        cc_request_type=CcRequestType.UPDATE_REQUEST,
        cc_request_number=number,
        msisdn=f"2547{number % 7:08d}",
        multiple_services_credit_control=[
            MultipleServicesCreditControl(
                rating_group=number % 3,
                requested_service_unit=RequestedServiceUnit(),
                used_service_unit=(UsedServiceUnit(cc_total_octets=number),),
            )
        ],
    )
    return Message(
        command_flags=message.command_flags,
        command_code=message.command_code,
        application_id=message.application_id,
        hop_by_hop=1000 + number,
        end_to_end=1000 + number,
        avps=message.avps,
    )


async def read_message(reader: asyncio.StreamReader, timeout: float = 5.0) -> Message:
    head = await asyncio.wait_for(reader.readexactly(4), timeout)
    rest = await asyncio.wait_for(reader.readexactly(int.from_bytes(head[1:4], "big") - 4), timeout)
    return decode(head + rest)


async def started(
    sink: Sink, **changes: object
) -> tuple[DiameterServer, asyncio.StreamReader, asyncio.StreamWriter]:
    server = DiameterServer(settings(**changes), sink)
    host, port = await server.start()
    reader, writer = await asyncio.open_connection(host, port)
    return server, reader, writer


async def test_a_burst_in_one_write_is_answered_in_runs_within_max_in_flight() -> None:
    sink = Sink()
    server, reader, writer = await started(sink, max_in_flight=64)
    try:
        requests = [ccr(n) for n in range(300)]
        writer.write(cer() + b"".join(encode(r) for r in requests))  # the CER and 300 CCRs at once
        cea = await read_message(reader)
        assert (cea.command_code, result_code(cea)) == (257, 2001)
        answers = {}
        for _ in requests:
            reply = await read_message(reader)
            answers[reply.hop_by_hop] = encode(reply)
        granted = GrantedServiceUnit(cc_total_octets=1000)
        for request in requests:  # each answer is the very CCA encode_answer builds for it
            parsed = parse_request(request)
            services = answer_services(parsed, 2001, granted)  # type: ignore[arg-type]
            expected = encode_answer(
                request, 2001, origin_host=GW, origin_realm=REALM, multiple_services_credit_control=services
            )
            assert answers[request.hop_by_hop] == expected
        assert sum(len(batch) for batch in sink.batches) == 300
        assert max(len(batch) for batch in sink.batches) <= 64 and len(sink.batches) >= 5
        assert server.answers[272, 2001] == 300
    finally:
        writer.close()
        await server.stop()


async def test_frames_cut_across_writes_are_answered() -> None:
    sink = Sink()
    server, reader, writer = await started(sink)
    try:
        stream = cer() + b"".join(encode(ccr(n)) for n in range(5))
        for at in range(0, len(stream), 97):  # cuts land inside headers and AVPs alike
            writer.write(stream[at : at + 97])
            await writer.drain()
            await asyncio.sleep(0.001)
        replies = [await read_message(reader) for _ in range(6)]
        assert sorted(r.hop_by_hop for r in replies) == [1, 1000, 1001, 1002, 1003, 1004]
        assert {result_code(r) for r in replies} == {2001}
    finally:
        writer.close()
        await server.stop()


async def test_requests_before_a_broken_frame_are_taken_then_5015_and_close() -> None:
    sink = Sink()
    server, reader, writer = await started(sink)
    try:
        writer.write(cer())
        await read_message(reader)
        broken = bytearray(encode(ccr(9)))
        broken[1:4] = (18).to_bytes(3, "big")  # shorter than a header: the stream cannot be framed further
        writer.write(encode(ccr(1)) + encode(ccr(2)) + bytes(broken))
        reply = await read_message(reader)
        assert (reply.hop_by_hop, result_code(reply)) == (1009, 5015)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        for _ in range(100):
            if sink.batches:
                break
            await asyncio.sleep(0.01)
        assert [e.sequence for batch in sink.batches for e in batch] == [1, 2]  # taken; the peer re-sends
    finally:
        writer.close()
        await server.stop()


async def test_an_engine_error_in_a_run_closes_after_the_requests_before_it() -> None:
    sink = Sink()
    server, reader, writer = await started(sink)
    try:
        writer.write(cer())
        await read_message(reader)
        bad_answer = bytearray(
            encode(
                Message(
                    command_flags=0,
                    command_code=280,
                    application_id=0,
                    hop_by_hop=5,
                    end_to_end=5,
                    avps=(avp("Result-Code", 2001),),
                )
            )
        )
        bad_answer[20 + 5 : 20 + 8] = (400).to_bytes(3, "big")  # an answer whose AVP overruns: unanswerable
        writer.write(encode(ccr(1)) + bytes(bad_answer) + encode(ccr(2)))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        for _ in range(100):
            if sink.batches:
                break
            await asyncio.sleep(0.01)
        assert [e.sequence for batch in sink.batches for e in batch] == [1]
    finally:
        writer.close()
        await server.stop()


async def test_a_refused_cer_with_requests_behind_it_takes_none() -> None:
    sink = Sink()
    server, reader, writer = await started(sink)
    try:
        writer.write(cer("intruder.example.org") + encode(ccr(1)) + encode(ccr(2)))
        cea = await read_message(reader)
        assert (cea.command_code, result_code(cea), cea.is_error) == (257, 3010, True)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await asyncio.sleep(0.05)
        assert sink.batches == []
    finally:
        writer.close()
        await server.stop()

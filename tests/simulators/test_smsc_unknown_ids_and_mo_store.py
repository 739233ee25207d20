"""SMSC simulator gaps found by testing: query/cancel/replace of unknown messages,
and MO store-and-forward while no ESME is bound.

SMPP 3.4 section 5.1.3 (command_status): a query_sm the SMSC cannot answer is ESME_RQUERYFAIL, a
cancel_sm that cancels nothing ESME_RCANCELFAIL, a replace_sm that replaces nothing
ESME_RREPLACEFAIL; a message_id that is no message id at all (empty) is ESME_RINVMSGID. A real
SMSC stores an MO it cannot hand to an ESME and forwards it on the next bind (store and forward,
within the message's validity period).
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.smpp.client import ClientConfig, SmppClient, SubmitError
from protocols.smpp.constants import CommandStatus, MessageState
from protocols.smpp.pdu import CancelSm, DataSm, DeliverSm, QuerySm, QuerySmResp, ReplaceSm, SubmitSm
from simulators.smsc import SmscSimulator

SYSTEM_ID = "gateway"
PASSWORD = "secret"
S = CommandStatus


def config(port: int) -> ClientConfig:
    return ClientConfig(
        "127.0.0.1", port, SYSTEM_ID, PASSWORD, window=10, response_timeout=5.0, connect_timeout=5.0,
        reconnect_initial=0.05, reconnect_max=0.2,
    )  # fmt: skip


async def status_of(esme: SmppClient, pdu: QuerySm | CancelSm | ReplaceSm) -> int:
    try:
        await esme.request(pdu)
    except SubmitError as exc:
        return exc.status
    return 0


# --- query_sm / cancel_sm / replace_sm ---------------------------------------------------------------


async def test_query_of_an_unknown_message_fails(smsc: SmscSimulator, esme: SmppClient) -> None:
    assert await status_of(esme, QuerySm(message_id="deadbeef", source_addr="12345")) == S.ESME_RQUERYFAIL
    assert await status_of(esme, QuerySm(message_id="", source_addr="12345")) == S.ESME_RINVMSGID


async def test_query_of_a_known_message_tells_its_state(smsc: SmscSimulator, esme: SmppClient) -> None:
    smsc.register_handset("31600000001", lambda mt: MessageState.UNDELIVERABLE)
    result = await esme.submit(
        SubmitSm(source_addr="12345", destination_addr="31600000001", short_message=b"x")
    )
    answer = await esme.request(QuerySm(message_id=result.message_id, source_addr="12345"))
    assert isinstance(answer, QuerySmResp) and answer.command_status == 0
    assert answer.message_id == result.message_id
    assert answer.message_state == MessageState.UNDELIVERABLE and len(answer.final_date or "") == 16
    # another originator may not query it (section 4.8.1: message_id and source_addr name it)
    assert (
        await status_of(esme, QuerySm(message_id=result.message_id, source_addr="99999")) == S.ESME_RQUERYFAIL
    )


async def test_cancel_and_replace_of_unknown_messages_fail(smsc: SmscSimulator, esme: SmppClient) -> None:
    assert await status_of(esme, CancelSm(message_id="deadbeef", source_addr="12345")) == S.ESME_RCANCELFAIL
    replace = ReplaceSm(message_id="deadbeef", source_addr="12345", short_message=b"y")
    assert await status_of(esme, replace) == S.ESME_RREPLACEFAIL
    assert await status_of(esme, ReplaceSm(message_id="", source_addr="12345")) == S.ESME_RINVMSGID
    nothing = CancelSm(source_addr="12345", destination_addr="31600000001")  # by addresses: none sent
    assert await status_of(esme, nothing) == S.ESME_RCANCELFAIL


async def test_cancel_and_replace_name_a_message_of_that_originator(
    smsc: SmscSimulator, esme: SmppClient
) -> None:
    result = await esme.submit(
        SubmitSm(source_addr="12345", destination_addr="31600000001", short_message=b"x")
    )
    mine = result.message_id
    assert await status_of(esme, CancelSm(message_id=mine, source_addr="99999")) == S.ESME_RCANCELFAIL
    other = ReplaceSm(message_id=mine, source_addr="99999", short_message=b"y")
    assert await status_of(esme, other) == S.ESME_RREPLACEFAIL
    assert await status_of(esme, CancelSm(message_id=mine, source_addr="12345")) == 0
    assert await status_of(esme, CancelSm(source_addr="12345", destination_addr="31600000001")) == 0


# --- MO store and forward ------------------------------------------------------------------------------


async def bound_esme(smsc: SmscSimulator, got: list[DeliverSm]) -> SmppClient:
    def take(pdu: DeliverSm | DataSm) -> None:
        assert isinstance(pdu, DeliverSm)
        got.append(pdu)

    client = SmppClient(config(smsc.address[1]))
    client.add_mo_handler(take)  # before the bind: the stored MOs come right after it
    await asyncio.wait_for(client.start(), 10)
    return client


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_mo_while_no_esme_is_bound_is_forwarded_on_the_next_bind() -> None:
    async with SmscSimulator({SYSTEM_ID: PASSWORD}, mo_validity=60.0) as smsc:
        # a DSTK answer and a text, while the gateway is down: the SMSC takes them (RP-ACK to the phone)
        assert await smsc.inject_mo("31600000001", "12345", b"\x02\x71\x00answer", protocol_id=0x7F) == 0
        assert await smsc.inject_mo("31600000002", "12345", b"YES") == 0
        assert smsc.stats.mo_stored == 2
        got: list[DeliverSm] = []
        esme = await bound_esme(smsc, got)
        try:
            await wait_for(lambda: len(got) == 2)
            assert [(p.source_addr, p.short_message) for p in got] == [
                ("31600000001", b"\x02\x71\x00answer"),
                ("31600000002", b"YES"),
            ]
            assert got[0].protocol_id == 0x7F
            assert smsc.stats.mo_forwarded == 2 and smsc.stored_mo == 0
        finally:
            await esme.close(drain_timeout=1.0)


async def test_stored_mo_expires_after_its_validity_and_the_store_is_bounded() -> None:
    async with SmscSimulator({SYSTEM_ID: PASSWORD}, mo_validity=0.2, mo_store_limit=2) as smsc:
        assert await smsc.inject_mo("31600000001", "12345", b"one") == 0
        assert await smsc.inject_mo("31600000001", "12345", b"two") == 0
        with pytest.raises(ConnectionError, match="full"):
            await smsc.inject_mo("31600000001", "12345", b"three")
        await asyncio.sleep(0.3)
        assert await smsc.inject_mo("31600000001", "12345", b"four") == 0  # the expired ones made room
        got: list[DeliverSm] = []
        esme = await bound_esme(smsc, got)
        try:
            await wait_for(lambda: smsc.stored_mo == 0)
            await asyncio.sleep(0.1)
            assert [p.short_message for p in got] == [b"four"]
            assert smsc.stats.mo_expired == 2
        finally:
            await esme.close(drain_timeout=1.0)


async def test_stored_mo_refused_for_now_is_tried_again() -> None:
    async with SmscSimulator({SYSTEM_ID: PASSWORD}, mo_validity=60.0, mo_retry_interval=0.1) as smsc:
        assert await smsc.inject_mo("31600000001", "12345", b"answer") == 0
        seen: list[bytes] = []

        def busy_once(pdu: DeliverSm | DataSm) -> None:
            assert isinstance(pdu, DeliverSm)
            seen.append(pdu.short_message)
            if len(seen) == 1:
                raise RuntimeError("store busy")  # the ESME answers ESME_RX_T_APPN: try later

        client = SmppClient(config(smsc.address[1]))
        client.add_mo_handler(busy_once)
        await asyncio.wait_for(client.start(), 10)
        try:
            await wait_for(lambda: smsc.stats.mo_forwarded == 1)
            assert seen == [b"answer", b"answer"] and smsc.stored_mo == 0
        finally:
            await client.close(drain_timeout=1.0)


async def test_without_store_and_forward_an_unbound_mo_still_fails() -> None:
    async with SmscSimulator({SYSTEM_ID: PASSWORD}) as smsc:
        with pytest.raises(ConnectionError, match="no ESME bound"):
            await smsc.inject_mo("31600000001", "12345", b"x")
    async with SmscSimulator({SYSTEM_ID: PASSWORD}, mo_validity=60.0) as smsc:
        with pytest.raises(ConnectionError, match="nobody"):  # no such account: nobody to keep it for
            await smsc.inject_mo("31600000001", "12345", b"x", system_id="nobody")

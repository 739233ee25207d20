"""Long MT messages are reassembled by the SMSC simulator before a handset sees them.

Each part keeps its own message id and receipt; the handset handler is called once, with the whole
text in ``MtMessage.text``. SIM data download (PID 0x7F) and binary messages go over part by part.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.smpp.client import SmppClient
from protocols.gsm.split import build_submits
from protocols.gsm.udh import Concat8, SimToolkitSecurity, encode_udh
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import SubmitSm
from simulators.smsc import MtMessage, SmscSimulator

PHONE = "254700000002"
SENDER = "12345"
WAIT = 10.0
LONG = "Buy more data: dial *123*1# for 100MB, *123*2# for 200MB, *123*3# for 500MB. " * 4


def catch(smsc: SmscSimulator, state: MessageState | None = None) -> list[MtMessage]:
    seen: list[MtMessage] = []

    def handler(mt: MtMessage) -> MessageState | None:
        seen.append(mt)
        return state

    smsc.register_handset(PHONE, handler)
    return seen


async def submit_all(esme: SmppClient, pdus: list[SubmitSm]) -> list[str]:
    return [(await asyncio.wait_for(esme.submit(pdu), WAIT)).message_id for pdu in pdus]


@pytest.mark.parametrize(
    ("method", "concat"),
    [("udh", "8bit"), ("udh", "16bit"), ("sar", "8bit")],
)
async def test_parts_in_any_order_reach_the_handset_once(
    smsc: SmscSimulator, esme: SmppClient, method: str, concat: str
) -> None:
    seen = catch(smsc, MessageState.REJECTED)
    pdus = build_submits(
        LONG,
        SENDER,
        PHONE,
        method=method,
        reference=300 if concat == "16bit" else 30,
        concat=concat,  # type: ignore[arg-type]
        registered_delivery=1,
    )
    assert len(pdus) >= 3
    order = [pdus[-1], *pdus[:-1]]  # the last part first
    ids = await submit_all(esme, order)
    assert len(set(ids)) == len(pdus)
    assert len(seen) == 1
    assert seen[0].text == LONG
    assert seen[0].message_id == ids[-1]  # the part that completed the message
    stats = [(await esme.wait_receipt(message_id, WAIT)).stat for message_id in ids]
    assert stats == ["DELIVRD"] * (len(ids) - 1) + ["REJECTD"]  # the handset's verdict on the last part
    assert len(smsc.messages) == len(pdus)  # every part is still recorded


async def test_message_payload_and_single_texts(smsc: SmscSimulator, esme: SmppClient) -> None:
    seen = catch(smsc)
    await submit_all(esme, build_submits(LONG, SENDER, PHONE, method="payload"))
    await submit_all(esme, build_submits("Привет", SENDER, PHONE))  # UCS-2, one part
    await submit_all(esme, build_submits("hi", SENDER, PHONE))
    assert [mt.text for mt in seen] == [LONG, "Привет", "hi"]


async def test_binary_and_sim_data_download_go_part_by_part(smsc: SmscSimulator, esme: SmppClient) -> None:
    seen = catch(smsc)
    binary = [
        SubmitSm(
            source_addr=SENDER,
            destination_addr=PHONE,
            esm_class=0x40,
            data_coding=0x04,
            short_message=encode_udh([Concat8(9, 2, n)]) + b"\x00\x01",
        )
        for n in (1, 2)
    ]
    ota = [
        SubmitSm(
            source_addr=SENDER,
            destination_addr=PHONE,
            esm_class=0x40,
            protocol_id=0x7F,
            data_coding=0xF6,
            short_message=encode_udh([SimToolkitSecurity(), Concat8(10, 2, n)]) + b"\x00\x10",
        )
        for n in (1, 2)
    ]
    await submit_all(esme, binary + ota)
    assert len(seen) == 4
    assert [mt.text for mt in seen] == [None] * 4
    assert [mt.short_message for mt in seen] == [pdu.short_message for pdu in binary + ota]


async def test_broken_udh_is_handed_over_as_it_came(smsc: SmscSimulator, esme: SmppClient) -> None:
    seen = catch(smsc)
    broken = SubmitSm(source_addr=SENDER, destination_addr=PHONE, esm_class=0x40, short_message=b"\x09\x00")
    await submit_all(esme, [broken])
    assert [(mt.short_message, mt.text) for mt in seen] == [(b"\x09\x00", None)]


async def test_stale_parts_are_dropped(smsc: SmscSimulator, esme: SmppClient) -> None:
    smsc._reassembler.timeout = 0.05  # the constructor's reassembly_timeout, shortened for the test
    seen = catch(smsc)
    first, second, third = build_submits(LONG[:400], SENDER, PHONE, method="udh", reference=77)
    await submit_all(esme, [first, second])
    await asyncio.sleep(0.1)
    await submit_all(esme, [third])  # the first two expired: still incomplete
    assert seen == []
    await submit_all(esme, [first, second])
    assert [mt.text for mt in seen] == [LONG[:400]]


def test_reassembly_timeout_is_configurable() -> None:
    assert SmscSimulator({}, reassembly_timeout=5.0)._reassembler.timeout == 5.0

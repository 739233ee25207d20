"""SmppClient.send_text against the real SMSC simulator: coding choice and splitting (TS 23.038,
TS 23.040 9.2.3.24.1 / .8, SMPP 3.4 5.3.2.22-24 and 5.3.2.32).

What went on the wire is read back two ways: the simulator's record of MT messages, and the decoded
submit_sm PDUs of a relay in front of it, reassembled with ``protocols.gsm.Reassembler``.
"""

from __future__ import annotations

import asyncio

import pytest
from stk_harness import WAIT, SubmitTap

from gateway.smpp.client import SmppClient
from protocols.errors import LocalProtocolError
from protocols.gsm import Coding, Concat8, Concat16, Reassembler, decode_udh, encode_gsm7, parts_needed
from protocols.smpp.constants import MessageState
from protocols.smpp.pdu import SubmitSm
from protocols.smpp.tlv import Tag, find_tlv
from simulators.smsc import SmscSimulator

SENDER = "12345"
PHONE = "254700000001"
OTHER_PHONE = "254700000002"
LONG_GSM = "Your data bundle is used up. Buy more: dial *123*1# for 100MB. " * 6  # 384 septets
LONG_UCS2 = "Пакет данных исчерпан. Купите ещё: *123*1# 100 МБ. " * 3


def _reassemble(submits: list[SubmitSm]) -> list[str]:
    reassembler = Reassembler(timeout=60.0)
    texts = []
    for pdu in submits:
        text = reassembler.add(pdu, 0.0)
        if text is not None:
            texts.append(text)
    return texts


def _concat(pdu: SubmitSm) -> Concat8 | Concat16:
    ies, _ = decode_udh(pdu.short_message)
    (ie,) = ies
    assert isinstance(ie, Concat8 | Concat16)
    return ie


async def test_gsm7_single_part(client: SmppClient, smsc: SmscSimulator, tap: tuple[SubmitTap, int]) -> None:
    results = await client.send_text(SENDER, PHONE, "Buy 500MB now: dial *123*3#")
    assert len(results) == 1 and results[0].message_id
    (mt,) = smsc.messages
    assert (mt.source_addr, mt.destination_addr, mt.esm_class, mt.data_coding) == (SENDER, PHONE, 0, 0)
    assert mt.short_message == bytes(encode_gsm7("Buy 500MB now: dial *123*3#"))  # unpacked septets
    assert mt.message_id == results[0].message_id
    (submit,) = tap[0].submits
    assert submit.registered_delivery == 0


async def test_gsm7_long_udh(client: SmppClient, smsc: SmscSimulator, tap: tuple[SubmitTap, int]) -> None:
    total = parts_needed(LONG_GSM)
    assert total == 3
    results = await client.send_text(SENDER, PHONE, LONG_GSM)
    assert len(results) == total == len(smsc.messages)
    assert len({r.message_id for r in results}) == total
    headers = [_concat(pdu) for pdu in tap[0].submits]
    assert all(isinstance(h, Concat8) for h in headers)
    assert {h.reference for h in headers} == {1}
    assert [(h.total, h.sequence) for h in headers] == [(3, 1), (3, 2), (3, 3)]
    assert all(mt.esm_class & 0x40 and mt.data_coding == 0 for mt in smsc.messages)
    assert _reassemble(tap[0].submits) == [LONG_GSM]
    assert client.stats.submitted == total  # each part was one submit through the window and TPS budget


async def test_reference_counts_per_destination(client: SmppClient, tap: tuple[SubmitTap, int]) -> None:
    await client.send_text(SENDER, PHONE, LONG_GSM)
    await client.send_text(SENDER, PHONE, "short: no reference used")
    await client.send_text(SENDER, PHONE, LONG_GSM)
    await client.send_text(SENDER, OTHER_PHONE, LONG_GSM)
    refs = [(pdu.destination_addr, _concat(pdu).reference) for pdu in tap[0].submits if pdu.esm_class & 0x40]
    assert refs == [(PHONE, 1)] * 3 + [(PHONE, 2)] * 3 + [(OTHER_PHONE, 1)] * 3


async def test_eight_bit_reference_wraps(client: SmppClient, tap: tuple[SubmitTap, int]) -> None:
    texts = [f"{i:03d} " + LONG_GSM[:200] for i in range(257)]  # two parts each
    await asyncio.wait_for(asyncio.gather(*(client.send_text(SENDER, PHONE, t) for t in texts)), 60)
    first_parts = [pdu for pdu in tap[0].submits if _concat(pdu).sequence == 1]
    by_index = {int(bytes(pdu.short_message[6:9]).decode()): _concat(pdu).reference for pdu in first_parts}
    assert len(first_parts) == len(by_index) == 257
    # 1, 2, ... 255, 0, then 1 again: the 257th long text to one handset re-uses the first's reference
    assert [by_index[i] for i in range(257)] == [(i + 1) % 256 for i in range(257)]


async def test_sixteen_bit_concatenation(client: SmppClient, tap: tuple[SubmitTap, int]) -> None:
    results = await client.send_text(SENDER, PHONE, LONG_GSM, concat="16bit")
    headers = [_concat(pdu) for pdu in tap[0].submits]
    assert len(results) == len(headers) == parts_needed(LONG_GSM, concat="16bit")
    assert all(isinstance(h, Concat16) and h.reference == 1 for h in headers)
    assert _reassemble(tap[0].submits) == [LONG_GSM]


async def test_ucs2_single_and_long(
    client: SmppClient, smsc: SmscSimulator, tap: tuple[SubmitTap, int]
) -> None:
    await client.send_text(SENDER, PHONE, "Купить 1ГБ?")
    (mt,) = smsc.messages
    assert mt.data_coding == Coding.UCS2 and mt.short_message == "Купить 1ГБ?".encode("utf-16-be")
    results = await client.send_text(SENDER, PHONE, LONG_UCS2)
    assert len(results) == parts_needed(LONG_UCS2) == 3
    long_parts = tap[0].submits[1:]
    assert all(pdu.data_coding == 8 and len(pdu.short_message) <= 6 + 134 for pdu in long_parts)
    assert _reassemble(tap[0].submits) == ["Купить 1ГБ?", LONG_UCS2]


async def test_forced_coding(client: SmppClient, smsc: SmscSimulator) -> None:
    await client.send_text(SENDER, PHONE, "plain ascii", coding=Coding.UCS2)
    assert smsc.messages[0].data_coding == 8


async def test_sar_method(client: SmppClient, smsc: SmscSimulator, tap: tuple[SubmitTap, int]) -> None:
    results = await client.send_text(SENDER, PHONE, LONG_GSM, method="sar")
    assert len(results) == 3
    submits = tap[0].submits
    refs = set()
    for seq, pdu in enumerate(submits, start=1):
        assert not pdu.esm_class & 0x40  # the SMSC builds the UDH from the TLVs
        tlvs = [
            find_tlv(pdu.optional_parameters, tag)
            for tag in (Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM)
        ]
        ref, total, number = (int.from_bytes(t.value, "big") for t in tlvs if t is not None)
        refs.add(ref)
        assert (total, number) == (3, seq)
    assert refs == {1}
    assert _reassemble(submits) == [LONG_GSM]
    assert len(smsc.messages) == 3


async def test_payload_method(client: SmppClient, smsc: SmscSimulator, tap: tuple[SubmitTap, int]) -> None:
    results = await client.send_text(SENDER, PHONE, LONG_GSM, method="payload")
    assert len(results) == 1
    (mt,) = smsc.messages
    payload = find_tlv(mt.optional_parameters, Tag.MESSAGE_PAYLOAD)
    assert mt.short_message == b"" and payload is not None
    assert payload.value == bytes(encode_gsm7(LONG_GSM))
    assert _reassemble(tap[0].submits) == [LONG_GSM]


async def test_registered_delivery_on_every_part(client: SmppClient, tap: tuple[SubmitTap, int]) -> None:
    results = await client.send_text(
        SENDER, PHONE, LONG_GSM, registered_delivery=1, validity_period="000000001000000R"
    )
    assert all(
        pdu.registered_delivery == 1 and pdu.validity_period == "000000001000000R" for pdu in tap[0].submits
    )
    receipts = [await client.wait_receipt(r.message_id, timeout=WAIT) for r in results]
    assert [r.message_state for r in receipts] == [MessageState.DELIVERED] * 3


async def test_bad_method_sends_nothing(client: SmppClient, smsc: SmscSimulator) -> None:
    with pytest.raises(LocalProtocolError, match="method"):
        await client.send_text(SENDER, PHONE, "hello", method="fax")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="short_message"):
        await client.send_text(SENDER, PHONE, "hello", short_message=b"x")
    assert not smsc.messages

from __future__ import annotations

import pytest

from collector.alerts.gateway import GatewayUnavailable, SendUncertain

from .smsc import BIND_RECEIVER, BIND_TRANSCEIVER, BIND_TRANSMITTER, wait_for

LONG_ZH = "您的结算款尚未到账，可能原因是结算卡变更审核期间款项付到了旧卡。" * 5


def test_long_chinese_message_reassembled_at_smsc(smsc, smpp_gateway):
    gateway = smpp_gateway()
    result = gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")
    assert len(result.message_ids) == 3 and result.encoding == "ucs2"
    assert smsc.messages() == [("8613800138000", LONG_ZH, 3)]
    assert all(s.data_coding == 0x08 and s.esm_class & 0x40 for s in smsc.submits)
    assert smsc.submits[0].dest_ton == 1
    assert [s.message_id for s in smsc.submits] == list(result.message_ids)
    assert smsc.binds[0][0] == BIND_TRANSCEIVER


def test_sar_tlvs_instead_of_udh(smsc, smpp_gateway):
    gateway = smpp_gateway(sar=1)
    gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")
    assert all(s.esm_class == 0 and 0x020C in s.tlvs for s in smsc.submits)
    assert smsc.messages() == [("8613800138000", LONG_ZH, 3)]


@pytest.mark.parametrize("prefix", [66, 67, 68])
def test_emoji_at_part_boundary(smsc, smpp_gateway, prefix):
    text = "款" * prefix + "😀" + "到账" * 30
    smpp_gateway().send("+8613800138000", text, client_ref="sg1")
    assert smsc.messages()[0][1] == text  # a cut surrogate pair fails utf-16 decoding


@pytest.mark.parametrize("prefix", [151, 152, 153])
def test_gsm7_extension_at_part_boundary(smsc, smpp_gateway, prefix):
    text = "a" * prefix + "€" + "[x]" * 20
    smpp_gateway().send("13800138000", text, client_ref="sg1")
    dest, received, parts = smsc.messages()[0]
    assert (dest, received, parts) == ("13800138000", text, 2)
    assert all(s.data_coding == 0 for s in smsc.submits)


def test_bind_failure_then_recovery(smsc, smpp_gateway):
    smsc.faults.bind_failures = 2
    gateway = smpp_gateway()
    result = gateway.send("+8613800138000", "hello", client_ref="sg1")
    assert len(result.message_ids) == 1
    assert len(smsc.binds) == 3


def test_bind_refused_for_good_is_unavailable(smsc, smpp_gateway):
    smsc.faults.bind_failures = 10**6
    gateway = smpp_gateway(submit_timeout=0.3)
    with pytest.raises(GatewayUnavailable, match="not available"):
        gateway.send("+8613800138000", "hello", client_ref="sg1")
    assert smsc.submits == []


def test_transmitter_bind_uses_separate_receiver(smsc, smpp_gateway):
    gateway = smpp_gateway(bind="tx")
    result = gateway.send("+8613800138000", "hello", client_ref="sg1")
    assert {b[0] for b in smsc.binds} == {BIND_TRANSMITTER, BIND_RECEIVER}
    receipts = collect_receipts(gateway, 1)
    assert receipts[0].message_id == result.message_ids[0]
    assert receipts[0].state == "delivered"


def collect_receipts(gateway, count):
    collected = []

    def enough():
        collected.extend(gateway.poll_receipts())
        return len(collected) >= count

    wait_for(enough)
    return collected

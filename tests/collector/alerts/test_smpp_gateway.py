from __future__ import annotations

import logging

import pytest
from settleguard.collector.alerts.gateway import (
    GatewayConfigError,
    GatewayUnavailable,
    SendUncertain,
)
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.smpp_gateway import SmppSettings

from .smsc import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    ENQUIRE_LINK,
    RESP,
    UNBIND,
    wait_for,
)

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


@pytest.mark.parametrize("fault", ["throttle", "queue_full"])
def test_throttled_part_retried_without_resending_accepted_parts(smsc, smpp_gateway, fault):
    gateway = smpp_gateway(window=1)
    # part 1 accepted, then the SMSC refuses the next 2 submits with a retry-later status
    smsc.faults.silent_submits = set()
    original = smsc._submit

    def throttle_after_first(sock, seq, body, out_seq):
        if len(smsc.submits) == 1 and smsc._submit_no == 1:
            setattr(smsc.faults, fault, 2)
        original(sock, seq, body, out_seq)

    smsc._submit = throttle_after_first
    result = gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")
    assert smsc._submit_no == 5  # 3 parts + 2 refused attempts
    assert len(smsc.submits) == 3 and len(set(result.message_ids)) == 3
    assert smsc.messages() == [("8613800138000", LONG_ZH, 3)]  # no part accepted twice


def test_no_submit_response_is_uncertain(smsc, smpp_gateway):
    smsc.faults.silent_submits = {2}
    gateway = smpp_gateway(window=1, timeout=0.2)
    with pytest.raises(SendUncertain) as caught:
        gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")
    assert caught.value.accepted == (smsc.submits[0].message_id,)
    assert smsc._submit_no == 2  # the unanswered part is never submitted again


def test_connection_drop_mid_send_is_uncertain_then_link_recovers(smsc, smpp_gateway):
    smsc.faults.drop_on_submit = {2}
    gateway = smpp_gateway(window=1)
    with pytest.raises(SendUncertain) as caught:
        gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")
    assert len(caught.value.accepted) == 1
    result = gateway.send("+8613800138000", "next one", client_ref="sg2")
    assert len(result.message_ids) == 1
    assert len(smsc.binds) == 2
    assert smsc.messages()[-1] == ("8613800138000", "next one", 1)


def test_drop_before_anything_written_sends_after_reconnect(smsc, smpp_gateway):
    gateway = smpp_gateway()
    wait_for(gateway.bound.is_set)
    smsc.drop_all()
    result = gateway.send("+8613800138000", "after the outage", client_ref="sg1")
    assert len(result.message_ids) == 1
    assert smsc.messages() == [("8613800138000", "after the outage", 1)]


def test_receipt_before_submit_response(smsc, smpp_gateway):
    smsc.faults.receipt_before_resp = True
    gateway = smpp_gateway()
    result = gateway.send("+8613800138000", "hello", client_ref="sg1")
    receipts = collect_receipts(gateway, 1)
    assert receipts[0].message_id == result.message_ids[0]


def test_duplicate_receipts_are_both_reported(smsc, smpp_gateway):
    smsc.faults.duplicate_receipts = True
    gateway = smpp_gateway()
    result = gateway.send("+8613800138000", "hello", client_ref="sg1")
    receipts = collect_receipts(gateway, 2)
    assert {r.message_id for r in receipts} == set(result.message_ids)


def test_receipt_text_only_with_decimal_id(smsc, smpp_gateway):
    smsc.faults.receipt_tlv = False
    smsc.faults.receipt_stat = "UNDELIV"
    gateway = smpp_gateway()
    result = gateway.send("+8613800138000", "hello", client_ref="sg1")
    receipt = collect_receipts(gateway, 1)[0]
    assert receipt.message_id == str(int(result.message_ids[0], 16))
    assert receipt.state == "failed" and receipt.error == "000"


def test_enquire_link_keepalive_and_dead_link_detection(smsc, smpp_gateway):
    gateway = smpp_gateway(enquire=0.05, timeout=0.2)
    wait_for(lambda: smsc.enquires >= 2)
    smsc.faults.ignore_enquire = True
    wait_for(lambda: len(smsc.binds) >= 2)  # no enquire_link_resp -> reconnect
    smsc.faults.ignore_enquire = False
    assert gateway.send("+8613800138000", "hi", client_ref="sg1").message_ids


def test_password_and_body_never_logged(smsc, smpp_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    smsc.faults.bind_failures = 1
    smsc.faults.drop_on_submit = {3}
    gateway = smpp_gateway(window=1)
    body = "秘密正文 SECRETBODY " * 10
    gateway.send("+8613800138000", "秘密正文 SECRETBODY", client_ref="sg1")
    with pytest.raises(SendUncertain):
        gateway.send("+8613800138000", body, client_ref="sg2")
    gateway.send("+8613800138000", "SECRETBODY again", client_ref="sg3")
    gateway.close()
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "settleguard.alerts.smpp" in caplog.text  # we did log, at several levels
    for secret in (smsc.password, "SECRETBODY", "秘密", b"SECRETBODY".hex()):
        assert secret not in logged
    assert b"secret1".hex() not in logged


def test_answers_smsc_enquire_link_and_rebinds_after_smsc_unbind(smsc, smpp_gateway):
    gateway = smpp_gateway()
    wait_for(gateway.bound.is_set)
    smsc.request(ENQUIRE_LINK, seq=77)
    wait_for(lambda: (ENQUIRE_LINK | RESP, 77) in smsc.responses)
    smsc.request(UNBIND, seq=78)
    wait_for(lambda: (UNBIND | RESP, 78) in smsc.responses)
    wait_for(lambda: len(smsc.binds) == 2)
    assert gateway.send("+8613800138000", "after unbind", client_ref="sg1").message_ids
    assert gateway.alive


def test_deliver_sm_is_acknowledged(smsc, smpp_gateway):
    gateway = smpp_gateway()
    gateway.send("+8613800138000", "hello", client_ref="sg1")
    smsc.faults.duplicate_receipts = True
    gateway.send("+8613800138000", "again", client_ref="sg2")
    # SMPP 3.4 §3.2: each deliver_sm_resp carries its deliver_sm's sequence number
    wait_for(
        lambda: (
            sorted(seq for cmd, seq in smsc.responses if cmd == DELIVER_SM | RESP)
            == sorted(smsc.deliver_seqs)
            and len(smsc.deliver_seqs) == 3
        )
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("smpp://user:toolongpassword@127.0.0.1:2775", "password max 8"),
        ("smpp://user:pw@127.0.0.1:2775?bind=rx", "bind must be trx or tx"),
        ("smpp://127.0.0.1:2775", "needs smpp://"),
        ("smpp://user:pw@127.0.0.1:2775?window=many", "bad SMPP URL option"),
        ("smpp://user:pw@127.0.0.1:99999", "bad SMPP URL"),
        ("gopher://x", "unknown SMS gateway scheme"),
        ("twilio+https://sid:tok@api.example", r"needs \?from="),
        ("aliyun+https://dysmsapi.aliyuncs.com/", "needs aliyun"),
        ("tencent+https://id:key@sms.tencentcloudapi.com/", r"needs \?app_id="),
    ],
)
def test_gateway_url_errors_are_clear(url, message):
    with pytest.raises(GatewayConfigError, match=message):
        gateway_from_url(url)


def test_password_not_in_repr():
    settings = SmppSettings("127.0.0.1", 1, "sg", "secret1")
    assert "secret1" not in repr(settings)


def test_send_window_limits_outstanding_submits(smsc, smpp_gateway):
    smsc.faults.silent_submits = {1, 2}
    gateway = smpp_gateway(window=2, timeout=0.2)
    with pytest.raises(SendUncertain):
        gateway.send("+8613800138000", LONG_ZH, client_ref="sg1")  # 3 parts
    assert smsc._submit_no == 2  # the third part waited for the window and was never written

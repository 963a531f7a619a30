"""Aliyun SMS: the published V3 signature example, and sending against a local fake of Aliyun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.aliyun_gateway import AliyunGateway, acs3_signature
from settleguard.collector.alerts.gateway import GatewayUnavailable, SendRejected, TemplateCall
from settleguard.collector.alerts.policy import AlertState
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.store import AlertStore, escalated_alerts
from settleguard.collector.cli.alerts import run_pass

from .china_sms import AliyunHandler, Fake, register, serve
from .collector_seed import add_gap, add_merchant

KEY, SECRET = "LTAI5tTestKey", "aliyun-test-secret"
CODES = {
    "PAID_TO_OLD_ACCOUNT": "SMS_1001", "CHANGE_PENDING": "SMS_1002", "RETURNED": "SMS_1003",
    "HELD": "SMS_1004", "MISSING": "SMS_1005", "SHORT_PAID": "SMS_1006", "DIGEST": "SMS_1007",
    "ARRIVED": "SMS_1008",
}  # fmt: skip
DAY1 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)


def test_published_v3_signature_example():
    # Alibaba Cloud's V3 signature documentation example (RunInstances on ECS, secret
    # "YourAccessKeySecret"), whose Authorization header it prints with this signature.
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-acs-date": "2023-10-26T09:01:01Z",
        "x-acs-signature-nonce": "d410180a5abf7fe235dd9b74aca91fc0",
        "x-acs-version": "2014-05-26",
    }
    query = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
             "RegionId": "cn-shanghai"}  # fmt: skip
    signature, signed = acs3_signature("YourAccessKeySecret", "POST", "/", query, headers)
    assert signature == "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
    assert (
        signed
        == "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )


@pytest.fixture
def aliyun() -> Iterator[tuple[Fake, str]]:
    fake = Fake(KEY, SECRET, register("aliyun", CODES))
    server, address = serve(AliyunHandler, fake)
    yield fake, address
    server.shutdown()
    server.server_close()


def gateway(address: str, secret: str = SECRET, codes: dict[str, str] = CODES) -> AliyunGateway:
    made = gateway_from_url(f"aliyun+http://{KEY}:{secret}@{address}/", "结算守护", codes)
    assert isinstance(made, AliyunGateway)
    return made


ARRIVED = TemplateCall("ARRIVED", (("count", "2"), ("amount", "350.50"), ("reference", "SG-12")))


def test_send_approved_template_and_receipt_report(aliyun):
    fake, address = aliyun
    sms = gateway(address)
    text = "【结算守护】您此前待处理的2笔结算款已到账，共¥350.50，参考号SG-12。"
    result = sms.send("+8613800138000", text, client_ref="sg7", template=ARRIVED)
    assert fake.sent == [("13800138000", text)]  # the provider's rendering is our text
    receipts = sms.handle_report(
        json.dumps([{"biz_id": result.message_ids[0], "success": True, "err_code": "DELIVERED"},
                    {"biz_id": "x", "success": False, "err_code": "MOBILE_NOT_ON_SERVICE"}]).encode()
    )  # fmt: skip
    assert [(r.state, r.error) for r in receipts] == [("delivered", None),
                                                      ("failed", "MOBILE_NOT_ON_SERVICE")]  # fmt: skip
    assert SECRET not in repr(sms)


def test_fake_refuses_what_aliyun_would(aliyun):
    fake, address = aliyun
    with pytest.raises(SendRejected, match="HTTP 400"):
        gateway(address, secret="wrong").send(
            "+8613800138000", "x", client_ref="a", template=ARRIVED
        )
    assert fake.refused == ["SignatureDoesNotMatch"]
    unapproved = gateway(address, codes={**CODES, "ARRIVED": "SMS_9999"})
    with pytest.raises(SendRejected, match="template or signature not approved"):
        unapproved.send("+8613800138000", "x", client_ref="b", template=ARRIVED)
    wrong_params = TemplateCall("ARRIVED", (("count", "2"), ("amount", "1.00")))
    with pytest.raises(SendRejected, match="TEMPLATE_PARAMS_ILLEGAL"):
        gateway(address).send("+8613800138000", "x", client_ref="c", template=wrong_params)
    with pytest.raises(SendRejected, match="invalid number"):
        gateway(address).send("+860001", "x", client_ref="d", template=ARRIVED)
    fake.throttle = 1
    with pytest.raises(GatewayUnavailable, match="throttled"):
        gateway(address).send("+8613800138000", "x", client_ref="e", template=ARRIVED)
    with pytest.raises(SendRejected, match="approved templates only"):
        gateway(address).send("+8613800138000", "free text", client_ref="f")
    assert fake.sent == []


def test_gaps_to_delivered_sms_through_aliyun(aliyun, store):
    fake, address = aliyun
    add_merchant(store, "M0001")
    for amount in (12_000, 350_000, 4_800):
        add_gap(store, "M0001", amount=amount)
    add_merchant(store, "M0002", ("+8613900139000",))
    old = add_gap(store, "M0002", "PAID_TO_OLD_ACCOUNT", 351_633,
                  evidence={"account_in_force": "****0017"})  # fmt: skip
    alerts, sms = AlertStore(store), gateway(address)
    report = run_pass(alerts, sms, DAY1)
    assert len(report.dispatch.sent) == 2 and report.dispatch.failed == []
    texts = {row["phone"]: row["text"] for row in store.query("SELECT phone, text FROM alerts")}
    assert sorted(fake.sent) == sorted((p.removeprefix("+86"), t) for p, t in texts.items())
    assert "原卡尾号0017" in texts["+8613900139000"] and f"SG-{old}" in texts["+8613900139000"]
    assert texts["+8613800138000"].startswith("【结算守护】您有3笔结算款待处理")
    biz = store.query("SELECT message_ids FROM alerts ORDER BY id")
    report_body = [{"biz_id": json.loads(r["message_ids"])[0], "success": True} for r in biz]
    for receipt in sms.handle_report(json.dumps(report_body).encode()):
        alerts.record_receipt(receipt, DAY1)
    assert alerts.apply_receipts(DAY1) and {a.state for a in alerts.list_alerts()} == {
        AlertState.DELIVERED
    }


def test_throttled_send_waits_and_unapproved_template_escalates(aliyun, store):
    fake, address = aliyun
    add_merchant(store)
    add_gap(store)
    alerts = AlertStore(store)
    fake.throttle = 1
    first = run_pass(alerts, gateway(address), DAY1)
    assert first.dispatch.retry == first.plan.queued and fake.sent == []
    later = run_pass(alerts, gateway(address), DAY1 + timedelta(minutes=6))
    assert len(later.dispatch.sent) == 1 and len(fake.sent) == 1
    add_merchant(store, "M2", ("+8613700137000",))
    add_gap(store, "M2", "HELD", 9_900)
    unapproved = gateway(address, codes={**CODES, "HELD": "SMS_4040"})
    report = run_pass(alerts, unapproved, DAY1 + timedelta(days=1))
    [failed] = report.dispatch.failed
    [queued] = [q for q in escalated_alerts(store) if q["id"] == failed]
    assert queued["state"] == "failed" and "not approved" in queued["error"]
    assert len(fake.sent) == 1

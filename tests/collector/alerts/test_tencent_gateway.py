"""Tencent Cloud SMS: TC3 signing, and sending against a local fake of Tencent Cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.gateway import GatewayUnavailable, SendRejected, TemplateCall
from settleguard.collector.alerts.policy import AlertState
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.store import AlertStore
from settleguard.collector.alerts.tencent_gateway import TencentGateway, tc3_signature
from settleguard.collector.cli.alerts import run_pass

from .china_sms import Fake, TencentHandler, register, serve, tencent_expected_signature
from .collector_seed import add_gap, add_merchant

SECRET_ID, SECRET_KEY = "AKIDtestSecretId", "tencent-test-key"
CODES = {
    "PAID_TO_OLD_ACCOUNT": "2001", "CHANGE_PENDING": "2002", "RETURNED": "2003", "HELD": "2004",
    "MISSING": "2005", "SHORT_PAID": "2006", "DIGEST": "2007", "ARRIVED": "2008",
}  # fmt: skip
DAY1 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
ARRIVED = TemplateCall("ARRIVED", (("count", "2"), ("amount", "350.50"), ("reference", "SG-12")))


def test_tc3_signature_matches_tencent_clouds_own_sdk():
    # The expected value was computed once with the signing code of Tencent Cloud's Python SDK
    # (tencentcloud-sdk-python-common 3.1.195, AbstractClient._get_tc3_signature, which signs
    # content-type and host) for this key, timestamp and body; the SDK is not a dependency.
    body = (
        '{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400000001","SignName":"结算守护",'
        '"TemplateId":"2008","TemplateParamSet":["2","350.50","SG-12"],"SessionContext":"sg7"}'
    )
    headers = {"Content-Type": "application/json", "Host": "sms.tencentcloudapi.com"}
    signature, signed = tc3_signature(SECRET_KEY, "sms", 1764216000, headers, body.encode())
    assert signed == "content-type;host"
    assert signature == "cd2ccfb860cf4b1eff2f9d6aa7290287e59dec33f5c7c2584098eaac90e58297"


def test_tc3_signature_follows_the_documented_steps():
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Host": "sms.tencentcloudapi.com", "X-TC-Action": "SendSms"}  # fmt: skip
    body = b'{"SmsSdkAppId":"1400000001"}'
    signature, signed = tc3_signature(SECRET_KEY, "sms", 1764216000, headers, body)
    assert signed == "content-type;host;x-tc-action"
    lowered = {k.lower(): v for k, v in headers.items()}
    expected = tencent_expected_signature(SECRET_KEY, 1764216000, lowered, signed.split(";"), body)
    assert signature == expected and len(signature) == 64
    # the date in the key and scope is the UTC date of the timestamp: a second later, next day
    assert (
        tc3_signature(SECRET_KEY, "sms", 1764287999, headers, body)[0]
        != tc3_signature(SECRET_KEY, "sms", 1764288000, headers, body)[0]
    )


@pytest.fixture
def tencent() -> Iterator[tuple[Fake, str]]:
    fake = Fake(SECRET_ID, SECRET_KEY, register("tencent", CODES))
    server, address = serve(TencentHandler, fake)
    yield fake, address
    server.shutdown()
    server.server_close()


def gateway(address: str, key: str = SECRET_KEY, codes: dict[str, str] = CODES) -> TencentGateway:
    url = f"tencent+http://{SECRET_ID}:{key}@{address}/?app_id={TencentHandler.app_id}"
    made = gateway_from_url(url, "结算守护", codes)
    assert isinstance(made, TencentGateway)
    return made


def test_send_in_template_order_and_pull_receipts(tencent):
    fake, address = tencent
    sms = gateway(address)
    text = "【结算守护】您此前待处理的2笔结算款已到账，共¥350.50，参考号SG-12。"
    result = sms.send("+8613800138000", text, client_ref="sg7", template=ARRIVED)
    assert fake.sent == [("+8613800138000", text)]
    body = sms.send_body("+8613800138000", ARRIVED, "sg7")
    assert body["TemplateParamSet"] == ["2", "350.50", "SG-12"] and body["TemplateId"] == "2008"
    fake.reports = [
        {"SerialNo": result.message_ids[0], "ReportStatus": "SUCCESS", "Description": "DELIVRD"},
        {"SerialNo": "2645:9", "ReportStatus": "FAIL", "Description": "MK:0001"},
    ]
    receipts = sms.poll_receipts()
    assert [(r.message_id, r.state, r.error) for r in receipts] == [
        (result.message_ids[0], "delivered", None), ("2645:9", "failed", "MK:0001"),
    ]  # fmt: skip
    assert sms.poll_receipts() == [] and SECRET_KEY not in repr(sms)


def test_fake_refuses_what_tencent_would(tencent):
    fake, address = tencent
    with pytest.raises(SendRejected, match=r"AuthFailure\.SignatureFailure"):
        gateway(address, key="wrong").send("+8613800138000", "x", client_ref="a", template=ARRIVED)
    with pytest.raises(SendRejected, match="template or signature not approved"):
        gateway(address, codes={**CODES, "ARRIVED": "9999"}).send(
            "+8613800138000", "x", client_ref="b", template=ARRIVED
        )
    short = TemplateCall("ARRIVED", (("count", "2"),))
    with pytest.raises(SendRejected, match="TemplateParamSetNotMatchApprovedTemplate"):
        gateway(address).send("+8613800138000", "x", client_ref="c", template=short)
    with pytest.raises(SendRejected, match="invalid number"):
        gateway(address).send("+86123", "x", client_ref="d", template=ARRIVED)
    fake.throttle = 1
    with pytest.raises(GatewayUnavailable, match="throttled"):
        gateway(address).send("+8613800138000", "x", client_ref="e", template=ARRIVED)
    with pytest.raises(SendRejected, match="approved templates only"):
        gateway(address).send("+8613800138000", "free text", client_ref="f")
    assert fake.sent == []
    assert gateway(address, key="wrong").poll_receipts() == []  # a failed pull loses nothing


def test_gaps_to_delivered_sms_through_tencent(tencent, store):
    fake, address = tencent
    add_merchant(store)
    returned = add_gap(store, "M1", "RETURNED", 4_200)
    with store.transaction() as tx:
        tx.execute("UPDATE gaps SET reason = 'account frozen' WHERE id = ?", (returned,))
    alerts, sms = AlertStore(store), gateway(address)
    report = run_pass(alerts, sms, DAY1)
    assert len(report.dispatch.sent) == 1
    row = store.query_one("SELECT text, message_ids, params FROM alerts")
    assert fake.sent == [("+8613800138000", row["text"])]
    assert "被银行退回(账户冻结)" in row["text"] and f"SG-{returned}" in row["text"]
    serial = json.loads(row["message_ids"])[0]
    fake.reports = [{"SerialNo": serial, "ReportStatus": "SUCCESS", "Description": "DELIVRD"}]
    later = run_pass(alerts, sms, DAY1 + timedelta(minutes=1))
    assert later.dispatch.finished == report.plan.queued
    assert [a.state for a in alerts.list_alerts()] == [AlertState.DELIVERED]

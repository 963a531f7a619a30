"""Garbage in: only our own errors come out, and the SMPP worker survives."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.alerts.aliyun_gateway import AliyunGateway
from settleguard.collector.alerts.gateway import (
    GatewayConfigError,
    GatewayError,
    message_id_aliases,
    parse_receipt_text,
)
from settleguard.collector.alerts.http_gateways import SignatureError, TwilioGateway
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.templates import TemplateError, default_catalog, render

from .smsc import wait_for


@given(st.text(max_size=300))
def test_receipt_text_parser_never_crashes(text):
    receipt = parse_receipt_text(text)
    assert receipt is None or receipt.state in ("delivered", "failed", "expired", "pending")


@given(st.text(max_size=60))
def test_message_id_aliases_never_crash(message_id):
    assert message_id.strip().lower() in message_id_aliases(message_id)


@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_aliyun_report_garbage_only_raises_our_error(body):
    gateway = AliyunGateway("k", "s", "sign", {"ARRIVED": "SMS_1"}, base_url="http://127.0.0.1:9")
    try:
        gateway.handle_report(body)
    except GatewayError:
        pass


@given(
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5), st.text(max_size=30)
)
def test_twilio_callback_garbage_only_raises_signature_error(params, signature):
    gateway = TwilioGateway("AC1", "tok", "+1", base_url="http://127.0.0.1:9")
    with pytest.raises(SignatureError):
        gateway.handle_status_callback("https://x/cb", params, signature)


@given(
    st.sampled_from(["file", "twilio+https", "aliyun+http", "tencent+https", "smtp", ""]),
    st.text(max_size=40),
)
def test_gateway_url_garbage_only_raises_config_error(scheme, rest):
    try:
        gateway_from_url(f"{scheme}://{rest}")
    except GatewayConfigError:
        pass


@given(
    st.sampled_from(sorted(default_catalog().templates)),
    st.dictionaries(
        st.sampled_from(sorted(default_catalog().variables)), st.text(max_size=25), max_size=7
    ),
    st.sampled_from(["zh-CN", "en", "fr"]),
)
def test_template_values_garbage_only_raises_template_error(name, values, locale):
    try:
        rendered = render(name, values, locale)
    except TemplateError:
        return
    assert len(rendered.text) <= 400 and rendered.template == name


def test_garbage_from_smsc_rebuilds_link(smsc, smpp_gateway):
    gateway = smpp_gateway()
    wait_for(gateway.bound.is_set)
    smsc.send_raw(struct.pack(">IIII", 20, 0x7777, 0, 1) + b"\xff\xfe\x00\x01")
    wait_for(lambda: len(smsc.binds) == 2)
    assert gateway.send("+8613800138000", "still works", client_ref="sg1").message_ids
    assert gateway.alive

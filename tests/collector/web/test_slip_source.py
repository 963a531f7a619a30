"""The dashboard shows where a batch's figures came from: terminal link or typed slip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask.testing import FlaskClient
from settleguard.agent.slip_entry import entry_from_json
from settleguard.collector.enrollment.keys import account_hmac as keyed_hmac
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.merchants import import_merchants
from settleguard.collector.reconcile.store import reconcile
from settleguard.collector.store import Store

from tests.helpers.records import make_agent

SLIP = {
    "merchant_no": "MSLIP", "terminal_no": "E0000001", "batch_no": 7, "date": "2026-11-26",
    "time": "21:30:05", "rows": [{"type": "微信", "count": 2, "amount": "77.00"}],
    "total": "77.00",
}  # fmt: skip


def test_merchant_page_marks_the_typed_slip_in_timeline_and_gap(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    import_merchants(
        db,
        b"merchant_id,name,phones,cycle,cutoff,timezone,fees,account,account_effective_at\n"
        b"MSLIP,Slip shop,13800000000,T+1,23:00,Asia/Shanghai,*=60,6222020000000001,2026-01-01\n",
        account_hmac=lambda n: keyed_hmac(b"k" * 32, n),
    )
    agent = make_agent(db, "agent-slipweb", merchant="MSLIP")
    record = entry_from_json(SLIP).batch_summary()
    ingest_batch(db, Keyring(db), [IncomingMessage(agent.topic, agent.seal(record, seq=1))])
    reconcile(db, ["MSLIP"], now=datetime(2026, 12, 8, 4, 0, tzinfo=UTC))
    page = as_role("viewer").get("/merchants/MSLIP").get_data(as_text=True)
    assert page.count("source-slip") == 1  # the batch row in the timeline
    assert "手工录入结算单" in page or "typed settlement slip" in page
    gap_part = page.split('id="gaps"')[1].split('id="timeline"')[0]
    assert "结算单" in gap_part or "typed settlement slip" in gap_part

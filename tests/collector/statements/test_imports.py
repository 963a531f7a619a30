"""Statement and payout imports into the store, on SQLite and PostgreSQL.

Every shipped format end to end from the parser fixtures (expected figures worked out by hand
from the fixture files), re-import as a no-op, bad input recorded as a rejected import with
nothing else stored, the privacy promise (no full account number anywhere in the database),
one account-matching key for statements and card changes, and a broken balance chain or a
missing statement turning into a visible ``STATEMENT_GAP``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from settleguard.collector.account_numbers import account_hmac, account_key_text
from settleguard.collector.enrollment.keys import CollectorKeys, init_keys
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.merchants import import_merchants
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.statements.importer import ImportRejected, import_file, list_imports
from settleguard.collector.store import Store
from settleguard.protocol.records import CardChange
from settleguard.protocol.sealed import card_change_context, seal

from settleguard.privacy import scan_texts
from tests.helpers.records import make_agent

FIXTURES = Path(__file__).parent / "fixtures"
KEY = b"test-hmac-key-0123456789abcdef!!"

#: The full account numbers that appear in the fixtures (statement accounts, payout targets
#: and counterparties), digits or IBAN as printed without spaces.
KNOWN_NUMBERS = (
    "6217000010001234", "DE89370400440532013000", "31050161373700001234",
    "6217001234567890123", "6222021001123456789", "1001234509000012345",
    "6222021001100005678", "6217001111222233334", "31050161373700009876",
    "1001234509000099999", "6222021001198765432", "31050161373700001111",
)  # fmt: skip

#: fixture -> (format, masked account, the full number the statement names, summary figures)
EXPECTED: dict[str, tuple[str, str | None, str | None, dict[str, int]]] = {
    # one booked credit 2,965.18; a 120.00 debit; a 28.55 reversal; a 500.00 PDNG credit
    "camt053_v02.xml": ("camt053", "****1234", "6217000010001234",
                        {"credits": 1, "credit_total": 296518, "debits": 1, "reversals": 1,
                         "pending": 1}),
    # one 1,293.40 batch entry split into two transactions (812.15 + 481.25); IBAN account
    "camt053_v08.xml": ("camt053", "****3000", "DE89370400440532013000",
                        {"credits": 2, "credit_total": 129340, "debits": 0, "reversals": 0,
                         "pending": 0}),
    # one booked notification 8,766.02 (the INFO one is not a booked credit)
    "camt054_v06.xml": ("camt054", "****1234", "31050161373700001234",
                        {"credits": 1, "credit_total": 876602, "debits": 0, "reversals": 0,
                         "pending": 0}),
    # MT940: C 3,512.40; D 200.00; RC and RD are reversals
    "mt940_rdrc.sta": ("mt940", "****2345", "1001234509000012345",
                       {"credits": 1, "credit_total": 351240, "debits": 1, "reversals": 2,
                        "pending": 0}),
    # GBK CCB export: +2,965.18 +3,104.22 +1,000.00; -120.00; 冲正 -28.55
    "ccb_gbk.csv": ("csv", "****0123", "6217001234567890123",
                    {"credits": 3, "credit_total": 706940, "debits": 1, "reversals": 1,
                     "pending": 0}),
    # ICBC with BOM: 收入 8,766.02 + 6,430.50 + 0.87; 支出 1,500.00
    "icbc_bom.csv": ("csv", "****6789", "6222021001123456789",
                     {"credits": 3, "credit_total": 1519739, "debits": 1, "reversals": 0,
                      "pending": 0}),
    # payouts: two paid (2,965.18 + 3,104.22), one returned (退票), one held (冻结), one failed
    "payout.csv": ("payout", None, None,
                   {"credits": 2, "credit_total": 606940, "debits": 0, "reversals": 1,
                    "pending": 1}),
}  # fmt: skip


def hasher(number: str) -> str:
    return account_hmac(KEY, number)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def table_names(store: Store) -> list[str]:
    if store.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    return sorted(r["name"] for r in store.query(sql))


def every_text(store: Store) -> list[tuple[str, str]]:
    """Every text or blob value of every table, as (table#row, text)."""
    out = []
    for table in table_names(store):
        for index, row in enumerate(store.query(f"SELECT * FROM {table}")):
            for value in row.values():
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("latin-1")
                if isinstance(value, str):
                    out.append((f"{table}#{index}", value))
    return out


def counts(store: Store) -> dict[str, int]:
    return {t: store.count(t) for t in ("imports", "credits", "payout_records")}


# -- every format end to end -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_end_to_end(store: Store, name: str) -> None:
    fmt, masked, number, figures = EXPECTED[name]
    result = import_file(store, read(name), filename=name, account_hmac=hasher, actor="test")
    summary = result.summary
    assert not result.duplicate and summary["duplicate"] is False
    assert summary["format"] == fmt and summary["account"] == masked
    assert {k: summary[k] for k in figures} == figures
    assert summary["rejected"] == 0
    row = store.query_one("SELECT * FROM imports WHERE id = ?", (result.import_id,))
    assert row is not None and row["status"] == "done" and row["file_format"] == fmt
    assert row["actor"] == "test" and row["filename"] == name
    assert json.loads(row["summary"])["credit_total"] == figures["credit_total"]
    if fmt == "payout":
        records = store.query("SELECT * FROM payout_records ORDER BY line_no")
        assert [r["status"] for r in records] == ["paid", "paid", "returned", "held", "failed"]
        assert sum(r["net_amount"] for r in records if r["status"] == "paid") == 606940
        assert records[2]["reason"] == "户名不符" and records[3]["account_masked"] == "****4321"
        assert store.count("credits") == 0
        return
    assert number is not None
    assert row["account_masked"] == masked and row["account_hmac"] == hasher(number)
    credits = store.query("SELECT * FROM credits")
    assert {c["account_hmac"] for c in credits} == {hasher(number)}
    booked = [
        c
        for c in credits
        if c["kind"] == "credit" and c["status"] == "booked" and not c["reversal"]
    ]
    assert sum(c["amount"] for c in booked) == figures["credit_total"]
    assert len(booked) == figures["credits"]
    if fmt == "camt054":  # single notifications prove no statement coverage
        assert row["period_start"] is None and row["period_end"] is None
    else:
        assert row["period_start"] <= row["period_end"] and row["balance_ok"] == 1


def test_reimport_is_a_noop_reporting_duplicate(store: Store) -> None:
    first = import_file(store, read("ccb_gbk.csv"), filename="a.csv", account_hmac=hasher)
    before = counts(store)
    again = import_file(store, read("ccb_gbk.csv"), filename="b.csv", account_hmac=hasher)
    assert again.duplicate and again.summary["duplicate"] is True
    assert again.import_id == first.import_id
    assert again.summary["credit_total"] == first.summary["credit_total"] == 706940
    assert counts(store) == before


def test_overlapping_statements_store_each_entry_once(store: Store) -> None:
    data = read("mt940_rdrc.sta")
    import_file(store, data, filename="a.sta", account_hmac=hasher)
    credits = store.count("credits")
    # the same statement re-sent with a different transaction reference is another file
    other = data.replace(b":20:940S240304", b":20:940S240304B")
    result = import_file(store, other, filename="b.sta", account_hmac=hasher)
    assert not result.duplicate
    assert store.count("imports") == 2 and store.count("credits") == credits


# -- bad input -------------------------------------------------------------------------------

BAD = [
    ("bad.sta", "mt940", None, b":20:X\n:25:ICBKCNBJ/1001234509000012345\n:28C:1/1\n"
     b":60F:C240301CNY20000,00\n:61:24X3010301D2X0,00NCHGNONREF//X1\n:62F:C240301CNY19800,00\n",
     r"line 5"),
    ("bad.csv", "csv", "generic", b"Date,Amount,Reference\n2024-03-01,12.00,R1\n2024-03-02,abc,R2\n"
, r"line 3 column Amount"),
    ("bad.xml", "camt053", None, b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'>"
     b"<BkToCstmrStmt><Stmt><Ntry><Amt Ccy='CNY'>1x</Amt></Ntry></Stmt></BkToCstmrStmt></Document>",
     r"element Ntry\[1\]/Amt"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fmt", "profile", "data", "where"), BAD)
def test_bad_input_is_recorded_as_rejected_and_nothing_stored(
    store: Store, name: str, fmt: str, profile: str | None, data: bytes, where: str
) -> None:
    with pytest.raises(ImportRejected, match=where) as caught:
        import_file(store, data, filename=name, account_hmac=hasher, fmt=fmt, profile=profile)
    assert name in str(caught.value)
    row = store.query_one("SELECT * FROM imports")
    assert row is not None and row["id"] == caught.value.import_id
    assert row["status"] == "rejected" and row["error"] == str(caught.value.error)
    assert store.count("imports") == 1 and store.count("credits") == 0
    assert store.count("payout_records") == 0
    # trying the same bytes again reuses the rejected row instead of piling up
    with pytest.raises(ImportRejected) as again:
        import_file(store, data, filename=name, account_hmac=hasher, fmt=fmt, profile=profile)
    assert again.value.import_id == caught.value.import_id and store.count("imports") == 1
    assert list_imports(store)[0]["status"] == "rejected"


def test_rejected_file_can_be_imported_once_fixed_by_options(store: Store) -> None:
    data = read("icbc_bom.csv")
    with pytest.raises(ImportRejected):  # a payout profile does not fit a bank export
        import_file(store, data, filename="i.csv", account_hmac=hasher, fmt="payout")
    result = import_file(store, data, filename="i.csv", account_hmac=hasher)
    assert not result.duplicate and store.count("imports") == 1
    row = store.query_one("SELECT status, error FROM imports")
    assert row == {"status": "done", "error": None}


# -- privacy and the account key -------------------------------------------------------------


def test_no_full_account_number_anywhere_in_the_database(store: Store) -> None:
    for name in sorted(EXPECTED):
        import_file(store, read(name), filename=name, account_hmac=hasher)
    with pytest.raises(ImportRejected):
        import_file(store, BAD[1][3], filename="bad.csv", account_hmac=hasher, fmt="csv",
                    profile="generic")  # fmt: skip
    texts = every_text(store)
    assert len(texts) > 50  # the scan really saw the imported rows
    assert scan_texts(texts, KNOWN_NUMBERS) == []
    assert scan_texts(texts, [account_key_text(n) for n in KNOWN_NUMBERS]) == []
    if store.dialect == "sqlite":  # also the raw pages and the WAL: nothing hides there
        path = Path(store.url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):
            raw = file.read_bytes()
            assert not [n for n in KNOWN_NUMBERS if n.encode() in raw], file.name


def test_account_key_rule() -> None:
    assert account_hmac(KEY, "6217 0012-3456.7890 123") == account_hmac(KEY, "6217001234567890123")
    assert account_hmac(KEY, "６２１７００１２３４５６７８９０１２３") == hasher(
        "6217001234567890123"
    )
    # an IBAN keeps its letters (country and bank codes), in any layout, also after a BIC
    iban = hasher("DE89370400440532013000")
    assert hasher("de89 3704 0044 0532 0130 00") == iban
    assert hasher("DEUTDEFF/DE89370400440532013000") == iban
    assert hasher("89370400440532013000") != iban
    # MT940 ":25:BIC/account" matches the account as registered
    assert hasher("ICBKCNBJ/1001234509000012345") == hasher("1001234509000012345")
    keys = CollectorKeys(b"x" * 32, b"y" * 32, KEY)
    assert keys.account_hmac("DE89 3704 0044 0532 0130 00") == iban


def test_statement_account_and_card_change_account_hash_equal(store: Store, tmp_path: Path) -> None:
    keys, _ = init_keys(tmp_path / "keys")
    agent = make_agent(store, "agent-a")
    number = "6217001234567890123"  # typed without spaces on the agent
    change = CardChange(
        merchant_id="M100", change_id="chg-1", old_account_masked=None,
        new_account_masked="****0123",
        new_account_sealed=seal(keys.sealing_public, number.encode(),
                                context=card_change_context("chg-1")),
        holder_name="上海静安小笼包餐饮店", bank="CCB", requested_at="2024-02-01T09:00:00Z",
        effective_at="2024-02-01T09:00:00Z", review_status="active", acquirer_ref=None,
    )  # fmt: skip
    acks = ingest_batch(
        store, Keyring(store), [IncomingMessage(agent.topic, agent.seal(change, 1))], keys=keys
    )
    assert acks[0][1].status == "accepted"
    # the CCB export prints the same account as "6217 0012 3456 7890 123"
    import_file(store, read("ccb_gbk.csv"), filename="c.csv", account_hmac=keys.account_hmac)
    account = store.query_one("SELECT account_hmac FROM settlement_accounts")
    credit_keys = {r["account_hmac"] for r in store.query("SELECT account_hmac FROM credits")}
    assert account is not None and credit_keys == {account["account_hmac"]}
    joined = store.query(
        "SELECT c.amount FROM credits c JOIN settlement_accounts a"
        " ON a.account_hmac = c.account_hmac WHERE a.merchant_id = 'M100'"
    )
    assert len(joined) == store.count("credits") == 5


# -- statement gaps --------------------------------------------------------------------------

# A statement for 2024-03-01..04 with one 200.00 debit whose closing balance is off by 100.00
BROKEN_MT940 = (
    b":20:STMT0304\n:25:ICBKCNBJ/1001234509000012345\n:28C:1/1\n:60F:C240301CNY20000,00\n"
    b":61:2403010301D200,00NCHGNONREF//ICBC0301000999\n:86:fee\n:62F:C240304CNY19900,00\n"
)


def _merchant_with_batch(store: Store, mid: str, account: str) -> None:
    csv = (
        "merchant_id,name,cycle,cutoff,timezone,fees,account,account_effective_at\n"
        f"{mid},Shop,T+1,23:00,Asia/Shanghai,*=60,{account},2024-01-01\n"
    )
    import_merchants(store, csv.encode(), account_hmac=hasher)
    with store.transaction() as tx:
        rid = tx.insert(
            "received_records",
            {"agent_id": f"ag-{mid}", "seq": 1, "key_id": "k", "record_type": "batch_summary",
             "created_at": "2024-02-29T13:00:00Z", "source": "test",
             "payload_sha256": f"sha-{mid}", "envelope": b"x"},
        )  # fmt: skip
        bid = tx.insert(
            "batch_summaries",
            {"received_record_id": rid, "agent_id": f"ag-{mid}", "terminal_id": f"T-{mid}",
             "merchant_id": mid, "batch_no": 1, "closed_at": "2024-02-29T13:00:00Z",
             "currency": "156", "total_amount": 123_456, "content_sha256": "c"},
        )  # fmt: skip
        tx.execute(
            "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
            " refund_amount, void_count, void_amount) VALUES (?, 'UPI', 1, 123456, 0, 0, 0, 0)",
            (bid,),
        )


def test_balance_mismatch_and_missing_statement_become_statement_gaps(store: Store) -> None:
    result = import_file(store, BROKEN_MT940, filename="broken.sta", account_hmac=hasher)
    assert result.summary["balance_mismatch"] is True
    row = store.query_one("SELECT balance_ok, period_start, period_end FROM imports")
    assert row == {"balance_ok": 0, "period_start": "2024-03-01", "period_end": "2024-03-04"}
    _merchant_with_batch(store, "MBROKEN", "1001 2345 0900 0012 345")  # the statement's account
    _merchant_with_batch(store, "MNOSTMT", "6217 9999 0000 1111 222")  # no statement at all
    report = reconcile(store, now=datetime(2024, 3, 10, tzinfo=UTC))
    assert report.errors == {} and report.merchants == 2
    gaps: dict[str, Any] = {g["merchant_id"]: g for g in list_gaps(store)}
    assert set(gaps) == {"MBROKEN", "MNOSTMT"}
    for gap in gaps.values():
        assert gap["category"] == "STATEMENT_GAP"
        assert gap["due_at"] == "2024-03-01" and gap["amount"] == 123_456 - 741
    assert "balance" in gaps["MBROKEN"]["reason"]
    assert "no statement" in gaps["MNOSTMT"]["reason"]


def test_large_statement_is_stored_whole(store: Store) -> None:
    rows = [f"2024-03-{1 + i % 28:02d},{i + 1}.{i % 100:02d},REF{i:06d},pos" for i in range(250)]
    data = ("Date,Amount,Reference,Description\n" + "\n".join(rows) + "\n").encode()
    result = import_file(store, data, filename="big.csv", account_hmac=hasher, fmt="csv",
                         profile="generic", account="6217 0000 2222 3333 444")  # fmt: skip
    total = sum((i + 1) * 100 + i % 100 for i in range(250))
    assert (result.summary["credits"], result.summary["credit_total"]) == (250, total)
    assert result.summary["account"] == "****3444"
    stored = store.query("SELECT amount, account_hmac, line_no FROM credits ORDER BY line_no")
    assert len(stored) == 250 and sum(r["amount"] for r in stored) == total
    assert {r["account_hmac"] for r in stored} == {hasher("6217000022223333444")}
    assert [r["line_no"] for r in stored] == list(range(2, 252))

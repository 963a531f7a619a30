"""Bank exports with a masked own account, tied to registered accounts; payers kept as printed.

On SQLite and PostgreSQL: a masked account ties to the one registered account that fits, an
ambiguous or unknown one is refused listing candidates (nothing stored), ``account_of`` narrows
the choice, overlapping periods are reported, and the payer columns hold what the bank printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from settleguard.collector.account_numbers import account_hmac
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.merchants import import_merchants
from settleguard.collector.reconcile.payers import payer_matches
from settleguard.collector.statements.accounts import (
    RegisteredAccount,
    tie_account,
    visible_digits,
)
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.importer import ImportRejected, import_file
from settleguard.collector.store import Store
from settleguard.protocol.records import CardChange
from settleguard.protocol.sealed import card_change_context, seal

from tests.collector.statements import examples
from tests.helpers.records import make_agent

KEY = b"test-hmac-key-0123456789abcdef!!"


def hasher(number: str) -> str:
    return account_hmac(KEY, number)


def register(store: Store, *rows: tuple[str, str, str]) -> None:
    """Merchants with (merchant_id, account number, holder)."""
    lines = ["merchant_id,name,cycle,cutoff,timezone,fees,account,account_holder"]
    lines += [f"{m},Shop {m},T+1,23:00,Asia/Shanghai,*=60,{a},{h}" for m, a, h in rows]
    import_merchants(store, ("\n".join(lines) + "\n").encode(), account_hmac=hasher)


def counts(store: Store) -> tuple[int, int]:
    return store.count("credits"), store.count("imports")


def test_masked_account_ties_to_the_one_registered_account_that_fits(store: Store) -> None:
    register(store, ("M1", "6217000000000000122", "王小明"), ("M2", "6217000000000009999", "李四"))
    result = import_file(store, examples.icbc_csv(), filename="icbc.csv", account_hmac=hasher)
    assert result.summary["account"] == "****0122"
    assert result.summary["account_as_printed"] == "6217****0122"
    rows = store.query("SELECT DISTINCT account_hmac FROM credits")
    assert [r["account_hmac"] for r in rows] == [hasher("6217000000000000122")]
    imp = store.query_one("SELECT period_start, period_end, account_hmac FROM imports")
    assert imp is not None and (imp["period_start"], imp["period_end"]) == (
        "2026-03-02", "2026-03-05",
    )  # fmt: skip


def test_ambiguous_masked_account_is_refused_listing_candidates(store: Store) -> None:
    register(store, ("M1", "6217000000000000122", "王小明"), ("M2", "6228000000000000122", "李四"))
    with pytest.raises(ImportRejected) as info:
        import_file(store, examples.icbc_csv(), filename="icbc.csv", account_hmac=hasher)
    message = str(info.value)
    assert message.startswith("icbc.csv: the export's account 6217****0122 fits 2 registered")
    assert "merchant M1 account ****0122 (王小明, active)" in message
    assert "merchant M2 account ****0122 (李四, active)" in message
    assert "--account-of MERCHANT" in message
    assert store.count("credits") == 0
    # the operator names the merchant: now it ties
    result = import_file(
        store, examples.icbc_csv(), filename="icbc.csv", account_hmac=hasher, account_of="M2"
    )
    assert not result.duplicate and store.count("credits") == 5
    assert {r["account_hmac"] for r in store.query("SELECT account_hmac FROM credits")} == {
        hasher("6228000000000000122")
    }


def test_no_fitting_account_is_refused_and_nothing_stored(store: Store) -> None:
    register(store, ("M1", "6217000000000000999", "王小明"))
    with pytest.raises(ImportRejected, match=r"6217\*\*\*\*0122 fits no registered settlement"):
        import_file(store, examples.icbc_csv(), filename="icbc.csv", account_hmac=hasher)
    assert counts(store) == (0, 1)
    assert store.query_one("SELECT status FROM imports") == {"status": "rejected"}


def test_holder_name_tells_two_accounts_with_the_same_last_digits_apart(store: Store) -> None:
    register(store, ("M1", "6228000000000007788", "李小华"), ("M2", "6228000000000017788", "赵六"))
    result = import_file(store, examples.abc_xlsx(), filename="abc.xlsx", account_hmac=hasher)
    assert result.summary["holder_as_printed"] == "李*华"
    assert store.query_one("SELECT DISTINCT account_hmac FROM credits") == {
        "account_hmac": hasher("6228000000000007788")
    }


def test_export_without_own_account_needs_the_merchant(store: Store) -> None:
    register(store, ("M1", "6217000000000004321", "王小明"))
    with pytest.raises(ImportRejected, match="does not show its account; name the merchant"):
        import_file(store, examples.boc_csv(), filename="boc.csv", account_hmac=hasher,
                    account_of="")  # fmt: skip
    result = import_file(
        store, examples.boc_csv(), filename="boc.csv", account_hmac=hasher, account_of="M1"
    )
    assert result.summary["account"] == "****4321" and store.count("credits") == 3


def test_sealed_number_lets_the_first_digits_decide(store: Store, tmp_path: Path) -> None:
    keys, _ = init_keys(tmp_path / "keys")
    # one agent per merchant: an agent reports changes only for the merchant it enrolled for
    agents = {m: make_agent(store, f"agent-{m.lower()}", merchant=m) for m in ("M1", "M2")}
    messages = []
    for seq, (merchant, number) in enumerate(
        (("M1", "6222000000000000122"), ("M2", "6217000000000000122")), start=1
    ):
        change = CardChange(
            merchant_id=merchant, change_id=f"chg-{seq}", old_account_masked=None,
            new_account_masked="****0122",
            new_account_sealed=seal(keys.sealing_public, number.encode(),
                                    context=card_change_context(f"chg-{seq}")),
            holder_name="王小明", bank="ICBC", requested_at="2026-02-01T09:00:00Z",
            effective_at="2026-02-01T09:00:00Z", review_status="active", acquirer_ref=None,
        )  # fmt: skip
        agent = agents[merchant]
        messages.append(IncomingMessage(agent.topic, agent.seal(change, 1)))
    ingest_batch(store, Keyring(store), messages, keys=keys)
    with pytest.raises(ImportRejected, match="fits 2 registered accounts"):
        import_file(store, examples.icbc_csv(), filename="a.csv", account_hmac=keys.account_hmac)
    result = import_file(
        store, examples.icbc_csv(), filename="a.csv", account_hmac=keys.account_hmac,
        open_account=keys.open_card_change,
    )  # fmt: skip
    assert result.summary["account"] == "****0122"
    assert store.query_one("SELECT DISTINCT account_hmac FROM credits") == {
        "account_hmac": keys.account_hmac("6217000000000000122")
    }


def test_payers_are_stored_as_printed(store: Store) -> None:
    register(store, ("M1", "6217000000000000122", "王小明"))
    import_file(store, examples.ccb_xls(), filename="ccb.xls", account_hmac=hasher)
    rows = store.query(
        "SELECT amount, kind, payer_name, payer_account FROM credits ORDER BY booked_at, amount"
    )
    assert [tuple(r.values()) for r in rows] == [
        (3550, "debit", "美***店", "6226****1111"),
        (152300, "credit", "拉***付股份有限公司", "3100****8899"),
        (200000, "credit", "张*", "6222****3344"),
        (1, "credit", None, None),
    ]


def test_overlapping_period_is_reported_and_entries_stored_once(store: Store) -> None:
    register(store, ("M1", "6214000000000005678", "陈小"))
    first = import_file(store, examples.cmb_csv(), filename="a.csv", account_hmac=hasher)
    assert first.summary["overlaps"] == [] and first.summary["already_stored"] == 0
    again = import_file(
        store, examples.cmb_csv(encoding="gbk"), filename="b.csv", account_hmac=hasher
    )
    assert not again.duplicate
    assert again.summary["overlaps"] == [first.import_id]
    assert again.summary["already_stored"] == 3 and again.summary["new_in_overlap"] == 0
    assert store.count("credits") == 3


def test_overlap_that_disagrees_is_reported(store: Store) -> None:
    register(store, ("M1", "6214000000000005678", "陈小"))
    import_file(store, examples.cmb_csv(), filename="a.csv", account_hmac=hasher)
    text = examples.cmb_csv().decode("utf-8-sig")
    edited = text.replace('"\t400.00"', '"\t400.01"').replace("3,166.40", "3,166.41")
    edited = edited.replace("13078.40", "13078.41")
    again = import_file(store, edited.encode("utf-8-sig"), filename="b.csv", account_hmac=hasher)
    assert again.summary["already_stored"] == 2 and again.summary["new_in_overlap"] == 1


def test_visible_digits_of_the_printed_forms() -> None:
    assert visible_digits("6217****0122") == ("6217", "0122")
    assert visible_digits("621700*********0122") == ("621700", "0122")
    assert visible_digits("**************0026") == ("", "0026")
    assert visible_digits("6217 0012 3456 7890 123") == ("6217001234567890123",) * 2


def test_masked_name_fit() -> None:
    assert payer_matches("拉***付股份有限公司", "拉卡拉支付股份有限公司")
    assert payer_matches("李*华", "李小华") and not payer_matches("李*华", "李华")
    assert not payer_matches("张*", "李四")


def test_tie_account_whatever_its_status_within_the_named_merchant() -> None:
    rejected = RegisteredAccount("M1", "****0122", "h1", None, "rejected")
    active = RegisteredAccount("M2", "****0122", "h2", None, "active")
    with pytest.raises(StatementError, match="fits 2 registered accounts"):
        tie_account("6217****0122", None, [rejected, active], merchant_id=None, filename="f")
    chosen = tie_account("6217****0122", None, [rejected, active], merchant_id="M1", filename="f")
    assert chosen is rejected
    with pytest.raises(StatementError, match="fits no registered settlement account of merchant"):
        tie_account("6217****0122", None, [rejected, active], merchant_id="M3", filename="f")

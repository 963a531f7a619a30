"""``settleguard agent slip``: a typed settlement slip becomes a signed batch, or is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from settleguard.agent.errors import UsageError
from settleguard.agent.outbox import Outbox
from settleguard.agent.slip_entry import entry_from_json, parse_amount
from settleguard.protocol.envelope import read_header

from settleguard.cli import main

SLIP = {
    "merchant_no": "898310048160001",
    "terminal_no": "10060002",
    "batch_no": "000045",
    "date": "2026-11-26",
    "time": "21:30:05",
    "rows": [
        {"type": "内卡借记卡", "count": 4, "amount": "1,523.00"},
        {"type": "domestic_credit", "count": "3", "amount": "987.5"},
        {"type": "微信", "count": 2, "amount": "¥30.00"},
        {"type": "银联扫码", "count": 5, "amount": "64.80"},
    ],
    "total": "2605.30",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agent-home"
    monkeypatch.setenv("SETTLEGUARD_AGENT_HOME", str(root))
    return root


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored(home: Path) -> list[dict[str, object]]:
    if not (home / "outbox.db").exists():
        return []
    with Outbox(home / "outbox.db") as outbox:
        rows = outbox.conn.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [json.loads(read_header(bytes(r[0])).signed_bytes)["body"] for r in rows]


def test_json_input_is_checked_signed_and_stored(home: Path) -> None:
    code, out, err = invoke(
        "agent", "slip", "--from-json", "-", "--json", input=json.dumps(SLIP, ensure_ascii=False)
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["protocol"] == "slip" and result["source"] == "slip"
    assert result["kind"] == "end_of_day" and result["currency"] == "156"
    assert result["batch_no"] == 45 and result["merchant_no"] == "898310048160001"
    assert result["total_amount"] == 260530
    assert result["closed_at"] == "2026-11-26T13:30:05Z"  # 21:30:05 China time
    assert result["buckets"] == [
        {"name": "domestic_debit", "count": 4, "amount": 152300},
        {"name": "domestic_credit", "count": 3, "amount": 98750},
        {"name": "unionpay_qr", "count": 5, "amount": 6480},
        {"name": "wechat", "count": 2, "amount": 3000},
    ]
    (body,) = stored(home)
    assert body["source"] == "slip" and body["protocol"] == "slip"
    assert body["terminal_local_time"] == "2026-11-26T21:30:05"


def test_json_flag_reads_the_slip_from_stdin(home: Path) -> None:
    code, out, err = invoke("agent", "slip", "--json", input=json.dumps(SLIP, ensure_ascii=False))
    assert code == 0, err
    assert json.loads(out)["total_amount"] == 260530 and len(stored(home)) == 1


def test_interactive_entry(home: Path) -> None:
    answers = [
        "898310048160001", "10060002", "45", "2026-11-26", "21:30:05",
        "4", "1523.00",  # 借记卡
        "3", "987.50",  # 贷记卡
        "0", "0",  # 外卡, 银联二维码
        "2", "30",  # 微信
        "0", "0", "0",  # 支付宝, 数字人民币, 其他
        "2540.50",
    ]  # fmt: skip
    code, out, err = invoke("agent", "slip", input="\n".join(answers) + "\n")
    assert code == 0, err
    assert "stored as record 1 (typed slip)" in out and "¥2,540.50" in out
    (body,) = stored(home)
    assert [(b["name"], b["sale_count"], b["sale_amount"]) for b in body["buckets"]] == [
        ("domestic_debit", 4, 152300),
        ("domestic_credit", 3, 98750),
        ("wechat", 2, 3000),
    ]


def test_total_mismatch_is_refused_with_the_difference(home: Path) -> None:
    wrong = {**SLIP, "total": "2605.00"}
    code, _, err = invoke("agent", "slip", "--from-json", "-", input=json.dumps(wrong))
    assert code == UsageError.exit_code
    assert "difference -¥0.30" in err and "Nothing was recorded" in err
    assert stored(home) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": [{"type": "储值卡", "count": 1, "amount": "1.00"}]}, "rows[0].type"),
        ({"rows": [{"type": "外卡", "count": 1, "amount": 1.5}]}, "as a string"),
        ({"rows": [{"type": "外卡", "count": -1, "amount": "1"}]}, "rows[0].count"),
        ({"total": "12.345"}, "total"),
        ({"date": "2026-02-30"}, "date"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_bad_json_names_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        entry_from_json({**SLIP, **change})


def test_amounts_are_exact_fen() -> None:
    assert parse_amount("0.10", "x") == 10 and parse_amount("￥1,000", "x") == 100000
    with pytest.raises(UsageError):
        parse_amount("-1.00", "x")


def test_typing_the_same_slip_twice_gives_the_same_natural_key(home: Path) -> None:
    text = json.dumps(SLIP, ensure_ascii=False)
    assert invoke("agent", "slip", "--from-json", "-", input=text)[0] == 0
    assert invoke("agent", "slip", "--from-json", "-", input=text)[0] == 0
    first, second = stored(home)
    key = ("terminal_id", "batch_no", "closed_at")
    assert [first[k] for k in key] == [second[k] for k in key]

from __future__ import annotations

from datetime import date

import pytest
from settleguard.collector.statements import StatementError, parse_statement, summarize
from settleguard.collector.statements.model import Balance

FIXTURE_DIR = __import__("pathlib").Path(__file__).parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def test_camt053_v02_fields() -> None:
    p = parse_statement(load("camt053_v02.xml"), filename="v02.xml")
    assert p.format == "camt053"
    assert p.account_number == "6217 0000 1000 1234"
    assert p.currency == "CNY"
    assert p.opening_balance == Balance(date(2024, 3, 1), 1234567)
    assert p.closing_balance == Balance(date(2024, 3, 1), 1516230)
    assert (p.period_start, p.period_end) == (date(2024, 3, 1), date(2024, 3, 1))
    payout, fee, reversal, pending = p.entries
    assert (payout.amount, payout.direction, payout.status) == (296518, "credit", "booked")
    assert payout.reference == "CCB2024030100017734"
    assert payout.end_to_end_id == "UPS20240229102300001" and payout.end_to_end_unique
    assert payout.counterparty == "银联商务股份有限公司"
    assert payout.remittance == "POS结算 商户102300001 20240229"
    assert payout.element == "Ntry[1]"
    assert fee.booking_date == date(2024, 3, 1)  # from DtTm
    assert fee.end_to_end_id == "NOTPROVIDED" and not fee.end_to_end_unique
    assert fee.counterparty == "国网上海市电力公司"  # creditor for a debit
    assert reversal.reversal and reversal.remittance == "冲正 重复入账"
    assert pending.status == "pending" and pending.booking_date == date(2024, 3, 4)
    assert not p.balance_mismatch
    assert len({e.entry_id for e in p.entries}) == 4


def test_camt053_v08_batch_and_negative_balance() -> None:
    p = parse_statement(load("camt053_v08.xml"), filename="v08.xml")
    assert p.account_number == "DE89370400440532013000"
    assert p.opening_balance == Balance(date(2024, 3, 1), -25000)  # PRCD, DBIT
    assert [e.amount for e in p.entries] == [81215, 48125]  # one Ntry, two TxDtls
    first, second = p.entries
    assert first.element == "Ntry[1]/NtryDtls/TxDtls[1]"
    assert first.reference == "2024030412345-1"
    assert first.counterparty == "Acquiring Services GmbH"  # Dbtr/Pty/Nm
    assert first.remittance == "RF18539007547034"  # Strd
    assert second.remittance == "SETTLEMENT 88120 2024-03-02 TID 29001234"
    assert not p.balance_mismatch
    assert summarize(p)["credit_total"] == 129340


def test_camt054_notification() -> None:
    p = parse_statement(load("camt054_v06.xml"), filename="n.xml")
    assert p.format == "camt054" and p.opening_balance is None
    booked, info = p.entries
    assert (
        booked.booking_date == date(2024, 3, 2) and booked.counterparty == "拉卡拉支付股份有限公司"
    )
    assert info.status == "info"
    s = summarize(p)
    assert (s["credits"], s["credit_total"], s["account"]) == (1, 876602, "****1234")


def edit(name: str, old: str, new: str, count: int = 1) -> bytes:
    text = load(name).decode()
    assert old in text
    return text.replace(old, new, count).encode()


def test_balance_mismatch_is_a_warning_not_an_error() -> None:
    data = edit("camt053_v02.xml", "15162.30", "15162.31")
    p = parse_statement(data)
    assert p.balance_mismatch
    assert "151.6231" not in p.warnings[0] and "15162.31" in p.warnings[0]


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('<Amt Ccy="CNY">2965.18</Amt>', '<Amt Ccy="CNY">12,5</Amt>', "element Ntry[1]/Amt"),
        (
            "<CdtDbtInd>DBIT</CdtDbtInd>\n        <Sts>",
            "<CdtDbtInd>X</CdtDbtInd>\n        <Sts>",
            "element Ntry[2]/CdtDbtInd",
        ),
        (
            "<Dt>2024-03-01</Dt></BookgDt>",
            "<Dt>2024-02-30</Dt></BookgDt>",
            "element Ntry[1]/BookgDt/Dt",
        ),
        ("<RvslInd>true</RvslInd>", "<RvslInd>maybe</RvslInd>", "element Ntry[3]/RvslInd"),
        ('<Amt Ccy="CNY">120.00</Amt>', "<Amt>120.00</Amt>", "element Ntry[2]/Amt"),
        ("<Sts>BOOK</Sts>\n        <BookgDt><DtTm>", "<BookgDt><DtTm>", "element Ntry[2]/Sts"),
    ],
)
def test_errors_name_the_element(old: str, new: str, where: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(edit("camt053_v02.xml", old, new), filename="camt.xml")
    assert str(info.value).startswith(f"camt.xml: {where}: ")
    assert info.value.element == where.removeprefix("element ")


def test_example_message_format() -> None:
    data = edit("camt053_v02.xml", '<Amt Ccy="CNY">28.55</Amt>', '<Amt Ccy="CNY">12,5</Amt>')
    with pytest.raises(StatementError, match=r"^camt.xml: element Ntry\[3\]/Amt: amount '12,5'"):
        parse_statement(data, filename="camt.xml")


@pytest.mark.parametrize(
    ("amount", "ccy", "minor"),
    [
        ("2965.18", "CNY", 296518),
        ("2965", "JPY", 2965),
        ("1.234", "KWD", 1234),
        ("7.5", "EUR", 750),
    ],
)
def test_minor_units_by_currency(amount: str, ccy: str, minor: int) -> None:
    data = edit(
        "camt054_v06.xml", '<Amt Ccy="CNY">300.00</Amt>', f'<Amt Ccy="{ccy}">{amount}</Amt>'
    )
    assert parse_statement(data).entries[-1].amount == minor


@pytest.mark.parametrize(("amount", "ccy"), [("10.5", "JPY"), ("1.005", "CNY")])
def test_too_many_decimals_rejects_the_entry(amount: str, ccy: str) -> None:
    data = edit(
        "camt054_v06.xml", '<Amt Ccy="CNY">300.00</Amt>', f'<Amt Ccy="{ccy}">{amount}</Amt>'
    )
    p = parse_statement(data)
    assert len(p.entries) == 1
    assert p.rejects[0].line_or_element == "Ntry[2]/Amt"
    assert "more decimals" in p.rejects[0].reason


def test_unknown_status_is_rejected_entry() -> None:
    p = parse_statement(edit("camt054_v06.xml", "<Sts>INFO</Sts>", "<Sts>FUTR</Sts>"))
    assert [r.line_or_element for r in p.rejects] == ["Ntry[2]/Sts"]
    assert summarize(p)["rejected"] == 1


def test_batch_not_adding_up_kept_as_one_entry() -> None:
    p = parse_statement(
        edit("camt053_v08.xml", '<Amt Ccy="EUR">481.25</Amt>', '<Amt Ccy="EUR">481.24</Amt>')
    )
    assert [e.amount for e in p.entries] == [129340]
    assert any(w.startswith("batch_breakdown_mismatch") for w in p.warnings)


def test_two_accounts_in_one_file_refused() -> None:
    text = load("camt054_v06.xml").decode()
    start, end = text.index("<Ntfctn>"), text.index("</Ntfctn>") + len("</Ntfctn>")
    other = text[start:end].replace("31050161373700001234", "31050161373700009999")
    with pytest.raises(StatementError, match=r"\*\*\*\*1234, \*\*\*\*9999"):
        parse_statement((text[:end] + other + text[end:]).encode())


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>&lol3;</BkToCstmrStmt></Document>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>&xxe;</Id></Stmt></BkToCstmrStmt></Document>"""
DTD_ONLY = b"""<?xml version="1.0"?><!DOCTYPE Document SYSTEM "http://127.0.0.1/x.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>"""


@pytest.mark.parametrize("attack", [BILLION_LAUGHS, XXE, DTD_ONLY])
def test_xml_attacks_refused(attack: bytes) -> None:
    with pytest.raises(StatementError, match="DTD, entities or external references"):
        parse_statement(attack, filename="evil.xml")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>",
            "not well-formed XML",
        ),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.052.001.02'/>", "not a camt.053"),
        (  # found by the mutation fuzzer: an encoding Python does not know (LookupError)
            b"<?xml version='1.0' encoding='U-F-8'?>"
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'/>",
            "not readable XML",
        ),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt/></Document>",
            "no Stmt",
        ),
    ],
)
def test_structural_errors(data: bytes, match: str) -> None:
    with pytest.raises(StatementError, match=match):
        parse_statement(data, fmt="camt053")

"""Statement files the demo's banks and acquirer write, in the layouts real ones use.

The demo imports these through the normal importers, so they look like what a Chinese
merchant downloads from online banking (docs/statements.md describes each layout):
工商银行's 历史明细 CSV, 建设银行's 交易明细 .xls and 招商银行's 一卡通 CSV, all printing the
own account masked as the banks do, plus an acquirer settlement-detail (结算明细) CSV. Accounts
of no Chinese bank the demo knows get an ISO 20022 camt.053.001.08.
Amounts go in as integer minor units and are written as decimals with two places.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

import xlwt  # writes the 建设银行 .xls (a dev dependency, as for the statement tests)


@dataclass(frozen=True, slots=True)
class BankCredit:
    """One movement on a settlement account, as the bank books it."""

    booking_date: date
    amount: int  # minor units, positive
    reference: str  # the bank's own reference (AcctSvcrRef / 流水号)
    remittance: str  # what the payer wrote: the acquirer's payout reference
    payer: str = "银联商务股份有限公司"
    payer_account: str = "31050161373700009876"
    debit: bool = False


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """One line of the acquirer's settlement-detail file."""

    merchant_id: str
    merchant_name: str
    settlement_date: date
    gross: int
    fees: int
    net: int
    target_account: str  # as the acquirer prints it (full or masked)
    status: str  # 已付款 / 退票 / 暂缓出款 / 失败
    reason: str
    reference: str
    batch_refs: Sequence[str]


def money(minor: int) -> str:
    """``123456`` -> ``1234.56`` (two decimals, no separators)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d}"


def money_grouped(minor: int) -> str:
    """``123456`` -> ``1,234.56`` as Chinese bank exports print it."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units:,}.{cents:02d}"


def camt053(
    *,
    message_id: str,
    account: str,
    owner: str,
    opening: int,
    start: date,
    end: date,
    credits: Sequence[BankCredit],
) -> bytes:
    """A camt.053.001.08 statement for one account over ``start``..``end``.

    The closing balance is opening + credits − debits, so the balance chain closes.
    """
    closing = opening + sum(-c.amount if c.debit else c.amount for c in credits)
    entries = "".join(
        _camt_entry(c) for c in sorted(credits, key=lambda c: (c.booking_date, c.reference))
    )
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>{escape(message_id)}</MsgId><CreDtTm>{end.isoformat()}T23:59:00+08:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{escape(message_id)}-1</Id>
      <CreDtTm>{end.isoformat()}T23:59:00+08:00</CreDtTm>
      <FrToDt><FrDtTm>{start.isoformat()}T00:00:00+08:00</FrDtTm><ToDtTm>{end.isoformat()}T23:59:59+08:00</ToDtTm></FrToDt>
      <Acct><Id><Othr><Id>{escape(account)}</Id></Othr></Id><Ccy>CNY</Ccy><Ownr><Nm>{escape(owner)}</Nm></Ownr></Acct>
{_camt_balance("OPBD", opening, start)}
{_camt_balance("CLBD", closing, end)}
{entries}    </Stmt>
  </BkToCstmrStmt>
</Document>
"""
    return text.encode("utf-8")


def _camt_balance(code: str, amount: int, day: date) -> str:
    indicator = "CRDT" if amount >= 0 else "DBIT"
    return (
        f"      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="CNY">{money(abs(amount))}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
        f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
    )


def _camt_entry(credit: BankCredit) -> str:
    indicator = "DBIT" if credit.debit else "CRDT"
    party = "Cdtr" if credit.debit else "Dbtr"
    return f"""      <Ntry>
        <Amt Ccy="CNY">{money(credit.amount)}</Amt>
        <CdtDbtInd>{indicator}</CdtDbtInd>
        <RvslInd>false</RvslInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{credit.booking_date.isoformat()}</Dt></BookgDt>
        <ValDt><Dt>{credit.booking_date.isoformat()}</Dt></ValDt>
        <AcctSvcrRef>{escape(credit.reference)}</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{escape(credit.remittance)}</EndToEndId></Refs>
          <RltdPties><{party}><Pty><Nm>{escape(credit.payer)}</Nm></Pty></{party}></RltdPties>
          <RmtInf><Ustrd>{escape(credit.remittance)}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
"""


def masked_card(account: str) -> str:
    """``6217001234567890123`` -> ``6217****0123``: how the exports print the own card."""
    return f"{account[:4]}****{account[-4:]}"


def bank_masked_name(name: str) -> str:
    """建设银行's masking of a counterparty: ``拉***付股份有限公司``, ``张*``, ``王*明``."""
    if len(name) <= 2:
        return name[0] + "*"
    if len(name) <= 4:
        return name[0] + "*" + name[-1]
    return name[0] + "***" + name[-(min(7, len(name) - 4)) :]


def _chronological(credits: Sequence[BankCredit]) -> list[BankCredit]:
    return sorted(credits, key=lambda c: (c.booking_date, c.reference))


def _with_balances(opening: int, credits: Sequence[BankCredit]) -> list[tuple[BankCredit, int]]:
    out, balance = [], opening
    for credit in _chronological(credits):
        balance += -credit.amount if credit.debit else credit.amount
        out.append((credit, balance))
    return out


def _icbc_cell(text: str, width: int = 20) -> str:
    return f'"{text:<{width}}\t"'


def icbc_csv(*, account: str, opening: int, credits: Sequence[BankCredit]) -> bytes:
    """A 工商银行 历史明细 CSV: UTF-8 BOM, preamble with the masked card, 15 padded columns
    ending in a TAB, a trailing comma, newest first, and the 人民币合计 totals row."""
    lines = [
        "明细查询文件下载",
        "",
        f'卡号: {masked_card(account)},"卡别名: 收款卡"',
        "",
        '子账户序号: 00000,子账户类别: 活期,"子账户别名: "',
        "",
        "交易日期,摘要,交易详情,交易场所,交易国家或地区简称,钞/汇,交易金额(收入),交易金额(支出),"
        "交易币种,记账金额(收入),记账金额(支出),记账币种,余额,对方户名,对方账户",
    ]
    income = spent = 0
    for credit, balance in reversed(_with_balances(opening, credits)):
        income += 0 if credit.debit else credit.amount
        spent += credit.amount if credit.debit else 0
        cells = [
            f"{credit.booking_date.isoformat()}     \t",
            _icbc_cell("转账" if credit.debit else "他行汇入"),
            _icbc_cell(credit.remittance, 30),
            _icbc_cell("", 60),
            _icbc_cell("CHN"),
            "钞        \t",
            _icbc_cell("-"),
            _icbc_cell("-"),
            "-              \t",
            _icbc_cell("" if credit.debit else money_grouped(credit.amount)),
            _icbc_cell(money_grouped(credit.amount) if credit.debit else ""),
            "人民币         \t",
            _icbc_cell(money_grouped(balance)),
            _icbc_cell(credit.payer, 140),
            _icbc_cell(masked_card(credit.payer_account), 19),
        ]
        lines.append(",".join(cells) + ",")
    lines += [
        " ",
        f"人民币合计,,,,,,,,,{_icbc_cell(money_grouped(income))},"
        f"{_icbc_cell(money_grouped(spent))},",
    ]
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def ccb_xls(
    *, account: str, opening: int, start: date, end: date, credits: Sequence[BankCredit]
) -> bytes:
    """A 建设银行 交易明细 .xls (BIFF8): preamble rows with the masked 账号, a header with
    padded cells, 0 in the unused amount cell, masked counterparty names, and the merged
    disclaimer row."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("交易明细")
    preamble = [
        ["中国建设银行 China Construction Bank"],
        ["开户机构:", "中国建设银行演示支行"],
        ["币    种:", "人民币"],
        ["账    号:", masked_card(account)],
        ["起始日期:", f"{start:%Y%m%d}", "终止日期:", f"{end:%Y%m%d}"],
    ]
    for r, line in enumerate(preamble):
        for c, text in enumerate(line):
            sheet.write(r, c, text)
    header = [
        "记账日",
        "交易日期",
        "交易时间",
        "支出",
        "收入",
        "账户余额",
        "币种",
        "摘要",
        "对方账号",
        "对方户名",
        "交易地点",
    ]
    for c, name in enumerate(header):
        sheet.write(5, c, name + " ")
    rows = _with_balances(opening, credits)
    for r, (credit, balance) in enumerate(rows, start=6):
        day = f"{credit.booking_date:%Y%m%d}"
        amounts = (credit.amount / 100, 0) if credit.debit else (0, credit.amount / 100)
        cells: list[object] = [
            day,
            day,
            "10:00:00",
            *amounts,
            balance / 100,
            "人民币",
            credit.remittance,
            masked_card(credit.payer_account),
            bank_masked_name(credit.payer),
            "网上银行",
        ]
        for c, value in enumerate(cells):
            sheet.write(r, c, value)
    last = 6 + len(rows)
    sheet.write_merge(last, last, 0, 10, "以上数据仅供参考，具体内容请以柜台为准")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def cmb_csv(
    *, account: str, opening: int, start: date, end: date, credits: Sequence[BankCredit]
) -> bytes:
    """A 招商银行 一卡通 交易流水 CSV in the older GBK/CRLF download: ``#`` preamble with the
    masked account, TAB-padded quoted cells, ``# 收入合计 / # 支出合计``; no counterparty."""
    lines = [
        "# 招商银行交易记录",
        f"# 账号: [{masked_card(account)}]",
        "# 币种: [人民币]",
        f"# 起始日期: [{start:%Y%m%d}]   终止日期: [{end:%Y%m%d}]",
        "交易日期,交易时间,收入,支出,余额,交易类型,交易备注",
    ]
    income = spent = 0
    for credit, balance in _with_balances(opening, credits):
        income += 0 if credit.debit else credit.amount
        spent += credit.amount if credit.debit else 0
        cells = [
            f"{credit.booking_date:%Y%m%d}",
            "10:00:00",
            "" if credit.debit else money(credit.amount),
            money(credit.amount) if credit.debit else "",
            money(balance),
            "转账汇款" if credit.debit else "银联入账",
            credit.remittance,
        ]
        lines.append(",".join(f'"\t{cell}"' if cell else '""' for cell in cells))
    lines += [
        "",
        f"# 收入合计: {money_grouped(income)} 元",
        f"# 支出合计: {money_grouped(spent)} 元",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def bank_export(
    account: str,
    *,
    owner: str,
    opening: int,
    start: date,
    end: date,
    credits: Sequence[BankCredit],
    message_id: str,
) -> tuple[str, bytes]:
    """The file the account's bank gives, chosen by the card's BIN: (file name, bytes).

    621700… 建设银行 .xls, 622202… 工商银行 CSV, 6214/6225… 招商银行 CSV; other numbers get
    a camt.053 (a bank-to-corporate statement).
    """
    tail = account[-4:]
    if account.startswith("6217"):
        data = ccb_xls(account=account, opening=opening, start=start, end=end, credits=credits)
        return f"交易明细_{tail}.xls", data
    if account.startswith("6222"):
        return f"历史明细_{tail}.csv", icbc_csv(account=account, opening=opening, credits=credits)
    if account.startswith(("6214", "6225")):
        data = cmb_csv(account=account, opening=opening, start=start, end=end, credits=credits)
        return f"CMB_{tail}.csv", data
    data = camt053(
        message_id=message_id,
        account=account,
        owner=owner,
        opening=opening,
        start=start,
        end=end,
        credits=credits,
    )
    return f"camt053-{tail}.xml", data


def payout_csv(*, generated_at: str, lines: Sequence[PayoutLine]) -> bytes:
    """The acquirer's settlement-detail export (UTF-8 with BOM, as most acquirer portals give)."""
    rows = [
        "商户结算明细",
        f"机构:银联商务演示分公司,生成时间:{generated_at}",
        "商户编号,商户名称,结算日期,交易金额,手续费,结算金额,入账账号,出款状态,失败原因,结算流水号,批次号",
    ]
    for line in lines:
        rows.append(
            f"{line.merchant_id},{line.merchant_name},{line.settlement_date.isoformat()},"
            f'"{money_grouped(line.gross)}",{money(line.fees)},"{money_grouped(line.net)}",'
            f"{line.target_account},{line.status},{line.reason},{line.reference},"
            f"{';'.join(line.batch_refs)}"
        )
    return ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")

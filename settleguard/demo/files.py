"""Statement files the demo's bank and acquirer write, in the formats real ones use.

The demo imports these through the normal importers, so they must look like the real exports:
an ISO 20022 camt.053.001.08 for one bank, a GBK-encoded 中国建设银行 account-detail CSV for
another, and an acquirer settlement-detail (结算明细) CSV. Amounts go in as integer minor
units and are written as decimals with two places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape


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


def ccb_csv(
    *, account: str, owner: str, opening: int, start: date, end: date, credits: Sequence[BankCredit]
) -> bytes:
    """A 中国建设银行 account-detail export (GBK, preamble, signed amounts, running balance)."""
    grouped = " ".join(account[i : i + 4] for i in range(0, len(account), 4))
    lines = [
        "中国建设银行账户交易明细",
        f"账号:{grouped}",
        f"户名:{owner}",
        "币种:人民币,钞汇:钞",
        f"起始日期:{start:%Y%m%d},终止日期:{end:%Y%m%d}",
        "序号,摘要,币别,钞汇,交易日期,交易金额,账户余额,交易地点/附言,对方账号与户名",
    ]
    balance = opening
    income = spent = 0
    ordered = sorted(credits, key=lambda c: (c.booking_date, c.reference))
    for number, credit in enumerate(ordered, 1):
        signed = -credit.amount if credit.debit else credit.amount
        balance += signed
        income += 0 if credit.debit else credit.amount
        spent += credit.amount if credit.debit else 0
        summary = "转账支出" if credit.debit else "POS结算"
        amount = f"{'+' if signed >= 0 else ''}{money_grouped(signed)}"
        lines.append(
            f'{number},{summary},人民币,钞,{credit.booking_date:%Y%m%d},"{amount}",'
            f'"{money_grouped(balance)}",{credit.remittance},{credit.payer_account}/{credit.payer}'
        )
    lines += ["", f',,,,,"收入:{money_grouped(income)} 支出:{money_grouped(spent)}",,,']
    lines[-1] = "合计" + lines[-1]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


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

"""The per-card-type rows of a MIS-POS settlement slip (结算单, GBK text in 9F13).

The terminal prints its batch totals on the slip, one row per card type: a label, a count and
an amount in yuan with two decimals, under a header with 笔数 and above a 合计(TOTAL) row
(docs/mispos.md §Settlement slip). Layouts differ between models and acquirers, so the parser
reads what it is sure of and refuses the rest:

* text is NFKC-normalised first, so full-width digits, points, colons and the ideographic
  space read as their ASCII forms; any run of spaces separates columns; CR LF, LF and CR all
  end a line;
* a row is ``<label> <count> <amount>``; its label must name a known card type (借记, 贷记,
  外卡, 扫码/二维码/云闪付, 微信, 支付宝, 数字人民币), else :class:`SlipError` names the line;
* rows of the same card type add up (a slip may list 银联扫码 and 云闪付 separately).

Whether the rows add up to the batch total is the caller's check
(:func:`protocol.mispos.settlement.settlement_from_reply`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..buckets import add_up
from ..errors import LocalProtocolError, RemoteProtocolError

#: (label fragment, bucket), tried in order: 外卡借记卡 is a foreign card, not domestic debit.
LABELS: tuple[tuple[str, str], ...] = (
    ("外卡", "foreign"),
    ("数字人民币", "ecny"),
    ("数币", "ecny"),
    ("微信", "wechat"),
    ("支付宝", "alipay"),
    ("扫码", "unionpay_qr"),
    ("二维码", "unionpay_qr"),
    ("云闪付", "unionpay_qr"),
    ("借记", "domestic_debit"),
    ("贷记", "domestic_credit"),
)
TOTAL_LABELS = ("合计", "总计", "TOTAL")
DUPLICATE_MARKS = ("重打印", "DUPLICATED")
_ROW = re.compile(
    r"\s*(?P<label>\S(?:.*?\S)?)\s+(?P<count>[0-9]+)\s+"
    r"(?P<amount>-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,2})?|-?[0-9]+(?:\.[0-9]{1,2})?)\s*"
)
_HEADER = re.compile(r"笔数|COUNT", re.IGNORECASE)
_RULE = re.compile(r"\s*[-=_*]{8,}\s*")
_LONG_DIGITS = re.compile(r"[0-9]{12,}")  # masked in messages: never echo a possible card number


class SlipError(RemoteProtocolError):
    """The slip text cannot be read with certainty; the message names the line."""


@dataclass(frozen=True, slots=True)
class SlipRow:
    """One card type's count and amount (fen) as the slip prints it."""

    bucket: str
    count: int
    amount: int

    def __post_init__(self) -> None:
        if self.count < 0 or self.amount < 0:
            raise LocalProtocolError("slip rows hold non-negative counts and amounts")


@dataclass(frozen=True, slots=True)
class ParsedSlip:
    """What a slip says: rows per bucket (summed per bucket), its TOTAL row, reprint mark."""

    rows: tuple[SlipRow, ...]
    total: tuple[int, int] | None  # (count, amount in fen) of the 合计 row, if printed
    duplicated: bool
    reconciled: bool | None  # 对账平 / 对账不平, if printed


def yuan_to_fen(text: str) -> int:
    """``"1,523.5"`` → 152350; exact, no floats.

    :raises ValueError: not a plain decimal amount
    """
    cleaned = text.replace(",", "")
    sign = -1 if cleaned.startswith("-") else 1
    cleaned = cleaned.lstrip("-")
    units, _, minor = cleaned.partition(".")
    if not units.isdigit() or (minor and not minor.isdigit()) or len(minor) > 2:
        raise ValueError(f"{text!r} is not an amount in yuan")
    return sign * (int(units) * 100 + int(minor.ljust(2, "0") or 0))


def bucket_of(label: str) -> str | None:
    """The bucket a row label names, or ``None``."""
    upper = label.upper()
    for fragment, bucket in LABELS:
        if fragment in upper:
            return bucket
    return None


def _lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", unicodedata.normalize("NFKC", text))


def parse_slip(text: str) -> ParsedSlip:
    """Read the card-type rows, the TOTAL row and the marks of a settlement slip.

    :raises SlipError: a row with an unknown label, a negative figure, or a second TOTAL row
    """
    lines = _lines(text)
    start = next((i + 1 for i, line in enumerate(lines) if _HEADER.search(line)), 0)
    found: list[tuple[str, tuple[int, int]]] = []
    total: tuple[int, int] | None = None
    for number, line in enumerate(lines[start:], start=start + 1):
        match = _ROW.fullmatch(line)
        if match is None or _RULE.fullmatch(line):
            continue
        label = match["label"]
        try:
            amount = yuan_to_fen(match["amount"])
        except ValueError:
            raise SlipError(f"slip line {number}: amount is not readable") from None
        if amount < 0:
            raise SlipError(f"slip line {number}: negative amount for {label!r}")
        count = int(match["count"])
        if any(word in label.upper() for word in TOTAL_LABELS):
            if total is not None:
                raise SlipError(f"slip line {number}: a second TOTAL row")
            total = (count, amount)
            continue
        if total is not None:
            continue  # after the TOTAL row come status lines, never card rows
        bucket = bucket_of(label)
        if bucket is None:
            shown = _LONG_DIGITS.sub(lambda m: "#" * len(m.group()), label[:20])
            raise SlipError(f"slip line {number}: unknown card type {shown!r}")
        found.append((bucket, (count, amount)))
    rows = tuple(
        SlipRow(bucket, count, amount) for bucket, (count, amount) in add_up(found).items()
    )
    flat = "".join(lines).upper()
    reconciled: bool | None = None
    if "不平" in flat:
        reconciled = False
    elif "对账平" in flat:
        reconciled = True
    return ParsedSlip(rows, total, any(m in flat for m in DUPLICATE_MARKS), reconciled)


#: Labels the simulator prints for each bucket.
PRINT_LABELS: dict[str, str] = {
    "domestic_debit": "内卡借记卡",
    "domestic_credit": "内卡贷记卡",
    "foreign": "外卡",
    "unionpay_qr": "银联扫码",
    "wechat": "微信支付",
    "alipay": "支付宝",
    "ecny": "数字人民币",
}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _row(label: str, count: int, amount: int) -> str:
    left = label + " " * max(1, 14 - _width(label))
    figures = f"{count:>4}{amount // 100:>11}.{amount % 100:02d}"
    return left + figures


def render_slip(
    rows: tuple[SlipRow, ...],
    *,
    merchant_name: str,
    batch_no: str,
    duplicated: bool = False,
    line_end: str = "\r\n",
) -> str:
    """A 32-column slip in the layout the parser reads (the simulator prints this)."""
    rule = "-" * 32
    count = sum(r.count for r in rows)
    amount = sum(r.amount for r in rows)
    lines = [
        "结算总计单",
        merchant_name,
        f"批次号: {batch_no}",
        rule,
        "类型(TYPE)    笔数      金额(元)",
        *(_row(PRINT_LABELS.get(r.bucket, r.bucket), r.count, r.amount) for r in rows),
        rule,
        _row("合计(TOTAL)", count, amount),
        "内卡对账平",
    ]
    if duplicated:
        lines.append("重打印/DUPLICATED")
    return line_end.join(lines) + line_end

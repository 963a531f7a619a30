"""A MIS-POS settlement reply (type 14, or its reprint 19) read as batch totals.

Where the totals are (docs/mispos.md §Settlement): 9F14/9F19 the result, 9F04 the merchant
number, 9F05 the terminal number, 9F0D the closed batch, 9F11/9F12 the terminal's date and
time, 9F1D the net grand total (12 ASCII digits, fen) and 9F13 the slip whose rows give the
per-card-type figures. Several of these are assumptions, so every reading we know of is
accepted: an empty batch answered ``00`` with no rows or ``X3``; 9F1D present or absent (then
the slip's TOTAL row is the total); a reprint answered as type 14 (the original transaction)
or 19. Whatever is present must agree -- rows, TOTAL row and 9F1D
-- or :class:`SlipError` says by how much; the parser never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import ProtocolError, RemoteProtocolError
from ..totals import BucketTotal, TerminalTotals
from .messages import (
    DEFAULT_APP,
    ENCODING,
    TAG_APP,
    TAG_BATCH_NO,
    TAG_DATE,
    TAG_MEMO,
    TAG_MERCHANT_NAME,
    TAG_MERCHANT_NO,
    TAG_RESULT,
    TAG_RESULT_TEXT,
    TAG_TERMINAL_NO,
    TAG_TIME,
    TAG_TOTAL,
    TAG_TYPE,
    TYPE_HOST_RELAY,
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    Reply,
    describe_result,
)
from .slip import ParsedSlip, SlipError, SlipRow, parse_slip, render_slip

#: ISO 4217 numeric code of the renminbi; the link carries no currency, it is always CNY.
CNY = "156"
EMPTY_BATCH = "X3"


class SettlementRefused(ProtocolError):
    """The terminal answered with a result code other than ``00`` (and not an empty batch).

    :param code: 9F14
    :param text: 9F19 as the terminal sent it, else our words for the code
    """

    def __init__(self, code: str, text: str) -> None:
        self.code, self.text = code, text
        super().__init__(f"terminal answered {code} {text}")


class HostRelayRefused(RemoteProtocolError):
    """The terminal asked the register to relay its host traffic (9F01 = 17), unsupported."""

    def __init__(self) -> None:
        super().__init__(
            "the terminal asked for host relay (type 17): settleguard does not relay host "
            "traffic; give the terminal its own network line or switch relay mode off"
        )


def yuan(fen: int) -> str:
    """``152300`` → ``¥1,523.00``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


@dataclass(frozen=True, slots=True)
class Settlement:
    """A checked settlement: identity, batch, the rows per card type and their total."""

    merchant_no: str | None
    terminal_id: str | None
    batch_no: int | None
    terminal_time: str | None  # ISO 8601 local time from 9F11/9F12
    rows: tuple[SlipRow, ...]
    total_amount: int
    result_code: str
    result_text: str
    duplicated: bool = False
    reconciled: bool | None = None

    @property
    def empty(self) -> bool:
        """No transactions in the batch."""
        return not any(row.count for row in self.rows) and self.total_amount == 0

    def to_totals(self) -> TerminalTotals:
        """The protocol-neutral totals of a closed batch."""
        return TerminalTotals(
            protocol="mispos",
            kind="end_of_day",
            terminal_id=self.terminal_id,
            currency=CNY,
            buckets=tuple(BucketTotal(r.bucket, r.count, r.amount) for r in self.rows),
            batch_no=self.batch_no,
            terminal_time=self.terminal_time,
            host_reconciled=self.reconciled,
            total_amount_reported=self.total_amount,
            merchant_id=self.merchant_no,
        )


def _digits(reply: Reply, tag: int, name: str) -> int | None:
    text = reply.text(tag)
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise RemoteProtocolError(f"{name} ({tag:04X}) is not a decimal number")
    return int(text)


def _local_time(reply: Reply) -> str | None:
    date, clock = reply.text(TAG_DATE), reply.text(TAG_TIME) or "000000"
    if not date:
        return None
    try:
        stamp = datetime.strptime(date + clock, "%Y%m%d%H%M%S")
    except ValueError:
        raise RemoteProtocolError("9F11/9F12 are not a date YYYYMMDD and time HHMMSS") from None
    return stamp.isoformat()


def _slip(reply: Reply) -> ParsedSlip | None:
    raw = reply.raw(TAG_MEMO)
    if not raw:
        return None
    try:
        text = raw.decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise SlipError(f"slip (9F13) is not GBK text at byte {exc.start}") from None
    return parse_slip(text)


def _checked_total(rows: tuple[SlipRow, ...], slip: ParsedSlip | None, net: int | None) -> int:
    row_count, row_amount = sum(r.count for r in rows), sum(r.amount for r in rows)
    slip_total = slip.total if slip else None
    if slip_total is not None:
        count, amount = slip_total
        if amount != row_amount or count != row_count:
            raise SlipError(
                f"slip rows add up to {row_count} / {yuan(row_amount)} but its TOTAL row "
                f"says {count} / {yuan(amount)} (difference {yuan(amount - row_amount)})"
            )
    if net is not None:
        if net != row_amount:
            raise SlipError(
                f"slip rows add up to {yuan(row_amount)} but 9F1D says {yuan(net)} "
                f"(difference {yuan(net - row_amount)})"
            )
        return net
    if slip_total is None and rows:
        raise SlipError("the reply has neither 9F1D nor a TOTAL row to check the slip rows")
    if slip is None:
        raise SlipError("the reply has neither 9F1D nor a settlement slip (9F13)")
    return row_amount


def settlement_from_reply(reply: Reply) -> Settlement:
    """Read and check a reply to settlement (14) or its reprint (19).

    :raises HostRelayRefused: the terminal wants host relay (9F01 = 17)
    :raises SettlementRefused: 9F14 is an error code; carries 9F14 and 9F19
    :raises SlipError: the slip cannot be read, or its figures disagree
    :raises RemoteProtocolError: a field is missing or malformed
    """
    if reply.trans_type == TYPE_HOST_RELAY:
        raise HostRelayRefused()
    code = reply.result_code
    if not code:
        raise RemoteProtocolError("reply has no result code (9F14)")
    if code not in ("00", EMPTY_BATCH):
        raise SettlementRefused(code, reply.result_text)
    if reply.trans_type not in (None, TYPE_SETTLEMENT, TYPE_REPRINT_SETTLEMENT):
        raise RemoteProtocolError(f"reply is for transaction type {reply.trans_type}, not 14")
    common = {
        "merchant_no": reply.text(TAG_MERCHANT_NO) or None,
        "terminal_id": reply.text(TAG_TERMINAL_NO) or None,
        "batch_no": _digits(reply, TAG_BATCH_NO, "batch number"),
        "terminal_time": _local_time(reply),
        "result_code": code,
        "result_text": reply.result_text,
    }
    if code == EMPTY_BATCH:
        return Settlement(rows=(), total_amount=0, **common)  # type: ignore[arg-type]
    slip = _slip(reply)
    rows = slip.rows if slip else ()
    total = _checked_total(rows, slip, _digits(reply, TAG_TOTAL, "net total"))
    return Settlement(
        rows=rows,
        total_amount=total,
        duplicated=slip.duplicated if slip else False,
        reconciled=slip.reconciled if slip else None,
        **common,  # type: ignore[arg-type]
    )


def settlement_reply(
    *,
    merchant_no: str,
    terminal_id: str,
    batch_no: int,
    rows: tuple[SlipRow, ...],
    when: datetime,
    merchant_name: str = "",
    duplicated: bool = False,
    with_total: bool = True,
    app: str = DEFAULT_APP,
) -> Reply:
    """The terminal's reply to 14 (or 19 with ``duplicated``), as the simulator sends it."""
    slip = render_slip(
        rows, merchant_name=merchant_name, batch_no=f"{batch_no:06d}", duplicated=duplicated
    )
    items = [
        (TAG_APP, app.encode(ENCODING)),
        (TAG_TYPE, bytes([TYPE_SETTLEMENT])),
        (TAG_RESULT, b"00"),
        (TAG_RESULT_TEXT, describe_result("00").encode(ENCODING)),
        (TAG_MERCHANT_NAME, merchant_name.ljust(20).encode(ENCODING)),
        (TAG_MERCHANT_NO, merchant_no.encode(ENCODING)),
        (TAG_TERMINAL_NO, terminal_id.encode(ENCODING)),
        (TAG_BATCH_NO, f"{batch_no:06d}".encode()),
        (TAG_DATE, when.strftime("%Y%m%d").encode()),
        (TAG_TIME, when.strftime("%H%M%S").encode()),
        (TAG_MEMO, slip.encode(ENCODING)),
    ]
    if with_total:
        items.append((TAG_TOTAL, f"{sum(r.amount for r in rows):012d}".encode()))
    return Reply(tuple(items))


def error_reply(code: str, text: str | None = None, *, trans_type: int = TYPE_SETTLEMENT) -> Reply:
    """A refusal: 9F14 ``code`` with 9F19 ``text`` (our words when not given)."""
    words = text if text is not None else describe_result(code)
    return Reply(
        (
            (TAG_TYPE, bytes([trans_type])),
            (TAG_RESULT, code.encode(ENCODING)),
            (TAG_RESULT_TEXT, words.encode(ENCODING)),
        )
    )

"""Every POSLink field settleguard relies on, in ONE table, with where it comes from.

PAX publishes its "POSLink / PAX Interface between PC and Terminal" specification only under
NDA. What is public are SDKs and integrators' code that build and parse these messages. We
read them (never copied them) and wrote down positions and formats here. Each row says which
public source shows it and whether two or more independent sources agree (``confirmed``) or
we inferred it from one source or an object model (``confirmed=False``). The same table is
mirrored in ``firmware_notes/pax-poslink.md``; a test keeps the two in step.

Sources (short names used in the table):

* ``GP-SDK`` -- Global Payments' open-source terminal SDKs (Java ``globalpayments/java-sdk``,
  .NET, PHP: ``terminals/pax``): ``TerminalUtilities.buildMessage``, ``PaxBaseResponse``,
  ``BatchCloseResponse``, ``LocalDetailReportResponse``, ``HostResponse``, ``AmountResponse``,
  ``AccountResponse``, ``TraceResponse``, ``PaxController.buildReportTransaction``.
* ``PL-SDK`` -- PAX's own POSLink iOS SDK headers, as redistributed in public repositories
  (old ``BatchRequest.h``/``BatchResponse.h``/``ReportRequest.h``/``ReportResponse.h`` and the
  newer ``POSLinkSemiIntegrationSDK`` ``PLBatchCloseResponse.h``, ``PLLocalTotalReportResponse.h``,
  ``PLCreditTotals.h``, ``PLTotalCount.h``, ``PLLocalDetailReportRequest.h``,
  ``PLHostInformationResponse.h``).
* ``IS4C-wiki`` -- the IS4C project's public notes on the PAX API (control characters table,
  T00/T01 layout), citing "PAX Interface Between PC and Terminal v1.35".

Positions count FS-separated fields from 0 *after* the header: for requests the header is
``cmd, version``; for responses it is ``status, cmd, version, code, message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of one message as we use it."""

    command: str  # B00, B01, R00, R01, R02, R03, or "hdr-req"/"hdr-rsp" for headers
    position: int  # FS field index after the header (header fields: index within header)
    name: str
    fmt: str  # n = digits, ans = text; "US:" lists sub-fields split by US
    source: str
    confirmed: bool
    note: str = ""


FIELDS: Final[tuple[FieldSpec, ...]] = (
    # Headers
    FieldSpec("hdr-req", 0, "command", "an3", "GP-SDK, IS4C-wiki", True),
    FieldSpec(
        "hdr-req",
        1,
        "version",
        "ans",
        "GP-SDK (1.35), IS4C-wiki (1.36)",
        True,
        "protocol version; we send 1.35 and accept any",
    ),
    FieldSpec("hdr-rsp", 0, "status", "n1", "GP-SDK", True, "'0' in every sample"),
    FieldSpec("hdr-rsp", 1, "command", "an3", "GP-SDK, IS4C-wiki", True),
    FieldSpec("hdr-rsp", 2, "version", "ans", "GP-SDK, IS4C-wiki", True),
    FieldSpec(
        "hdr-rsp",
        3,
        "response_code",
        "n6",
        "GP-SDK, PL-SDK, IS4C-wiki",
        True,
        "000000 = OK; other codes: RESPONSE_CODES",
    ),
    FieldSpec("hdr-rsp", 4, "response_message", "ans", "GP-SDK, IS4C-wiki", True),
    # B00 BatchClose request
    FieldSpec("B00", 0, "timestamp", "n14", "GP-SDK, PL-SDK", True, "YYYYMMDDhhmmss, optional"),
    # B01 BatchClose response
    FieldSpec(
        "B01",
        0,
        "host_information",
        "US: host_code, host_message, auth_code, host_reference, trace_number, batch_number",
        "GP-SDK (HostResponse), PL-SDK (PLHostInformationResponse)",
        False,
        "sub-field order from GP-SDK only; PL-SDK lists batch number but not its index",
    ),
    FieldSpec(
        "B01",
        1,
        "total_count",
        "'=' list: credit=debit=ebt=gift=loyalty=cash=check",
        "GP-SDK (.NET split on '='), PL-SDK (PLTotalCount)",
        False,
        "order inferred from PL-SDK property order; counts exclude voids/auths",
    ),
    FieldSpec(
        "B01",
        2,
        "total_amount",
        "'=' list, cents, same order as total_count",
        "GP-SDK (.NET), PL-SDK (PLTotalAmount)",
        False,
    ),
    FieldSpec("B01", 3, "timestamp", "n14", "GP-SDK, PL-SDK", True),
    FieldSpec("B01", 4, "terminal_id", "ans..20", "GP-SDK, PL-SDK", True),
    FieldSpec("B01", 5, "merchant_id", "ans..20", "GP-SDK, PL-SDK", True),
    # R00 LocalTotalReport request
    FieldSpec(
        "R00",
        0,
        "edc_type",
        "n2",
        "PL-SDK (ReportRequest EDCType)",
        False,
        "'00' = all EDC types (as GP-SDK sends for R02)",
    ),
    # R01 LocalTotalReport response
    FieldSpec("R01", 0, "edc_type", "n2", "PL-SDK (PLLocalTotalReportResponse)", False),
    FieldSpec(
        "R01",
        1,
        "credit_totals",
        "US: sale_count, sale_amount, forced_count, forced_amount, return_count, "
        "return_amount, auth_count, auth_amount, postauth_count, postauth_amount",
        "PL-SDK (PLCreditTotals)",
        False,
        "wire position of each EDC group inferred",
    ),
    FieldSpec(
        "R01",
        2,
        "debit_totals",
        "US: sale_count, sale_amount, return_count, return_amount",
        "PL-SDK (PLDebitTotals)",
        False,
    ),
    FieldSpec(
        "R01",
        3,
        "ebt_totals",
        "US: sale_count, sale_amount, return_count, return_amount, …",
        "PL-SDK (PLEbtTotals)",
        False,
    ),
    FieldSpec(
        "R01",
        4,
        "gift_totals",
        "US: sale_count, sale_amount, return_count, return_amount, …",
        "PL-SDK (PLGiftTotals)",
        False,
    ),
    FieldSpec(
        "R01",
        5,
        "loyalty_totals",
        "US: sale_count, sale_amount, return_count, return_amount, …",
        "PL-SDK (PLLoyaltyTotals)",
        False,
    ),
    FieldSpec(
        "R01",
        6,
        "cash_totals",
        "US: sale_count, sale_amount, return_count, return_amount",
        "PL-SDK (PLCashTotals)",
        False,
    ),
    FieldSpec(
        "R01",
        7,
        "check_totals",
        "US: sale_count, sale_amount, return_count, return_amount",
        "PL-SDK (old ReportResponse CHECK*)",
        False,
    ),
    # R02 LocalDetailReport request
    FieldSpec("R02", 0, "edc_type", "n2", "GP-SDK, PL-SDK", True, "'00' = all"),
    FieldSpec("R02", 1, "transaction_type", "n2", "GP-SDK, PL-SDK", True, "empty = all"),
    FieldSpec("R02", 2, "card_type", "n2", "GP-SDK, PL-SDK", True, "empty = all"),
    FieldSpec(
        "R02",
        3,
        "record_number",
        "n..4",
        "GP-SDK, PL-SDK",
        True,
        "index of the record to return; 0-based is our assumption (unconfirmed)",
    ),
    FieldSpec("R02", 4, "reference_number", "n..4", "GP-SDK, PL-SDK", True, "empty"),
    FieldSpec("R02", 5, "auth_code", "ans..32", "GP-SDK, PL-SDK", True, "empty"),
    FieldSpec("R02", 6, "ecr_reference_number", "ans..32", "GP-SDK, PL-SDK", True, "empty"),
    # R03 LocalDetailReport response
    FieldSpec("R03", 0, "host_information", "US: as B01", "GP-SDK", True),
    FieldSpec("R03", 1, "total_records", "n..4", "GP-SDK, PL-SDK", True, "records in the report"),
    FieldSpec("R03", 2, "record_number", "n..4", "GP-SDK, PL-SDK", True, "this record's index"),
    FieldSpec("R03", 3, "edc_type", "n2", "GP-SDK, PL-SDK", True),
    FieldSpec("R03", 4, "transaction_type", "n2", "GP-SDK, PL-SDK", True, "01 sale, 02 return, …"),
    FieldSpec("R03", 5, "original_transaction_type", "n2", "GP-SDK, PL-SDK", True),
    FieldSpec(
        "R03",
        6,
        "amount_information",
        "US: approved_amount, amount_due, tip, cashback, merchant_fee, tax, balance1, balance2",
        "GP-SDK (AmountResponse), IS4C-wiki",
        True,
        "cents",
    ),
    FieldSpec(
        "R03",
        7,
        "account_information",
        "US: account, entry_mode, expiry, ebt_type, voucher, new_account, card_type, "
        "card_holder, …",
        "GP-SDK (AccountResponse), IS4C-wiki",
        True,
        "account is normally the last 4 digits; we mask anything longer and drop "
        "expiry and card holder",
    ),
    FieldSpec(
        "R03",
        8,
        "trace_information",
        "US: transaction_number, reference_number, timestamp",
        "GP-SDK (TraceResponse)",
        True,
    ),
)

#: Host-information sub-field indexes (B01/R03 field 0, split by US).
HOST_SUBFIELDS: Final = (
    "host_code",
    "host_message",
    "auth_code",
    "host_reference",
    "trace_number",
    "batch_number",
)

#: EDC ("electronic data capture") groups, the buckets POSLink totals are broken out by.
EDC_ORDER: Final[tuple[str, ...]] = ("credit", "debit", "ebt", "gift", "loyalty", "cash", "check")

#: EDC type codes as used in R00/R02/R03 (PL-SDK/GP-SDK constants; 00 = all).
EDC_CODES: Final[dict[str, str]] = {
    "00": "all",
    "01": "credit",
    "02": "debit",
    "03": "cheque_unused",
    "04": "ebt",
    "05": "gift",
    "06": "loyalty",
    "07": "cash",
    "08": "check",
}
EDC_BY_NAME: Final[dict[str, str]] = {
    name: code for code, name in EDC_CODES.items() if name != "cheque_unused"
}

#: R01 sub-field positions of (sale_count, sale_amount, return_count, return_amount) per EDC.
#: Credit carries forced sales between sale and return (PLCreditTotals); the others start
#: with sale and return. Unconfirmed wire order; see FIELDS.
R01_LAYOUT: Final[dict[str, tuple[int, int, int, int]]] = {
    "credit": (0, 1, 4, 5),
    **{name: (0, 1, 2, 3) for name in EDC_ORDER if name != "credit"},
}
R01_WIDTH: Final[dict[str, int]] = {"credit": 10, **{n: 4 for n in EDC_ORDER if n != "credit"}}

#: Transaction types seen in R03 (GP-SDK PaxTxnType): the ones the journal needs.
TRANSACTION_TYPES: Final[dict[str, str]] = {
    "00": "menu",
    "01": "sale",
    "02": "return",
    "03": "auth",
    "04": "postauth",
    "05": "forced",
    "06": "adjust",
    "07": "withdrawal",
    "16": "void",
    "17": "void_sale",
    "18": "void_return",
}

OK: Final = "000000"


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """What a six-digit response code means, and whether we saw it in a public source."""

    code: str
    meaning: str
    confirmed: bool


#: Response codes. Only 000000 appears in public code we could read (GP-SDK compares against
#: it); the others are the commonly cited POSLink list and are marked unconfirmed.
RESPONSE_CODES: Final[dict[str, ResponseCode]] = {
    rc.code: rc
    for rc in (
        ResponseCode("000000", "OK", True),
        ResponseCode("000100", "declined", False),
        ResponseCode("100001", "timeout on the terminal", False),
        ResponseCode("100002", "aborted (cancelled on the terminal)", False),
        ResponseCode("100003", "parameter error", False),
        ResponseCode("100004", "transaction type not supported", False),
        ResponseCode("100005", "EDC type not supported", False),
        ResponseCode("100006", "batch close failed", False),
        ResponseCode("100007", "terminal could not connect to the host", False),
        ResponseCode("100008", "terminal could not send to the host", False),
        ResponseCode("100009", "terminal got no answer from the host", False),
        ResponseCode("100010", "communication error with the host", False),
        ResponseCode("100011", "duplicate transaction", False),
        ResponseCode("100023", "record not found", False),
        ResponseCode("199999", "unknown error", False),
    )
}


def describe_response(code: str) -> str:
    """A technician-readable meaning for ``code`` (``unknown code`` if we do not know it)."""
    known = RESPONSE_CODES.get(code)
    if known is None:
        return f"unknown response code {code}"
    return known.meaning if known.confirmed else f"{known.meaning} (meaning unconfirmed)"


def field(command: str, name: str) -> FieldSpec:
    """The table row for ``name`` in ``command``.

    :raises KeyError: no such row (a programming error: the codec and table disagree)
    """
    for spec in FIELDS:
        if spec.command == command and spec.name == name:
            return spec
    raise KeyError(f"{command}.{name} is not in the POSLink field table")


def position(command: str, name: str) -> int:
    """Shortcut for ``field(command, name).position``."""
    return field(command, name).position

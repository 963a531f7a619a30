"""ZVT result codes, terminal status codes and intermediate-status texts, in our own words.

Sources: PA00P015 §10 (error messages / result codes, sent in ``84 xx``, ``06 1E`` and bitmap
``27``), §11 (terminal status codes in the Status-Enquiry Completion) and §3.7 table 17
(intermediate status ``04 FF``). Only the codes a settlement agent is likely to meet are
spelled out; :func:`describe_result` covers the rest by range.
"""

from __future__ import annotations

ABORTED = 0x6C
END_OF_DAY_NOT_POSSIBLE = 0x77
OPEN_BATCH = 0xF0
FUNCTION_NOT_POSSIBLE = 0x83
PROTOCOL_ERROR = 0x9A
PLEASE_WAIT = 0x9C
PRINTER_NOT_READY = 0xCC

RESULT_CODES: dict[int, str] = {
    0x00: "no error",
    0x64: "card not readable",
    0x65: "no card data present",
    0x66: "processing error",
    0x6A: "turnover file full",
    0x6B: "function deactivated (terminal not registered)",
    0x6C: "aborted (timeout or abort key)",
    0x6F: "wrong currency",
    0x77: "end-of-day not possible",
    0x7D: "communication error (communication module missing or silent)",
    0x83: "function not possible",
    0x85: "key missing",
    0x9A: "ZVT protocol error (message could not be parsed or lacks a mandatory element)",
    0x9B: "dial-up / communication fault",
    0x9C: "please wait",
    0xA0: "receiver not ready",
    0xA1: "remote station does not respond",
    0xA3: "no connection",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xC2: "diagnosis required",
    0xCC: "printer not ready",
    0xE0: "remote maintenance active",
    0xE4: "terminal activation required",
    0xF0: "open end-of-day batch present",
    0xFA: "error transmitting offline transactions (clearing error)",
    0xFB: "turnover data set defective",
    0xFC: "necessary device missing or defective",
    0xFD: "baud rate not supported",
    0xFE: "register unknown",
    0xFF: "system error (other or unknown error)",
}

TERMINAL_STATUS: dict[int, str] = {
    0x00: "terminal ready",
    0x51: "initialisation required",
    0x62: "date/time incorrect",
    0x9C: "please wait (e.g. software update running)",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xC2: "diagnosis required",
    0xCC: "printer not ready",
    0xDF: "out of order",
    0xE0: "remote maintenance active",
    0xE4: "terminal activation required",
    0xF0: "reconciliation (end-of-day) required",
}

INTERMEDIATE_STATUS: dict[int, str] = {
    0x04: "waiting for the host (FEP) to answer",
    0x05: "sending auto-reversal",
    0x06: "sending post-bookings",
    0x0E: "please wait",
    0x0F: "starting an automatic end-of-day",
    0x17: "please wait",
    0xD2: "connecting to the host",
    0xD3: "connected to the host",
    0xF1: "offline",
    0xF2: "online",
}


def describe_result(code: int) -> str:
    """A short meaning for a result code, e.g. ``0x77`` -> ``"end-of-day not possible"``."""
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 0x01 <= code <= 0x63:
        return f"host / authorisation system error {code}"
    return f"result code {code:02X}"


def describe_terminal_status(code: int) -> str:
    """A short meaning for a terminal status code (Status-Enquiry Completion)."""
    return TERMINAL_STATUS.get(code, f"terminal status {code:02X}")


def describe_intermediate(code: int) -> str:
    """A short meaning for an intermediate status (``04 FF``)."""
    return INTERMEDIATE_STATUS.get(code, f"intermediate status {code:02X}")

"""Field validation shared by the record types in :mod:`protocol.records`.

Each ``check_*`` function raises :class:`RecordValueError` naming the field; the record
dataclasses call them from ``__post_init__``. The PAN helpers implement docs/architecture.md §6: no full
card number may appear in any record.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .canonical import MAX_SAFE_INT
from .errors import LocalProtocolError
from .sealed import SEALED_TOKEN_RE


class RecordValueError(LocalProtocolError, ValueError):
    """A record was constructed with a bad value.

    It is also a :class:`ValueError` so that msgspec, when it raises it while decoding a
    received body into the record classes, reports it with the location of the object that
    failed (``$.buckets[2]``) and keeps it as the cause (see
    :func:`protocol.records.record_from_body`).

    :param message: what is wrong
    :param field: name of the offending field
    """

    def __init__(self, message: str, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")
        self.message = message


# --- field checks (shared by every record type) ---------------------------------------------

_UTC_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?Z"
)
_LOCAL_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})")
CARD_TYPE_RE = re.compile(r"[a-z0-9_]{1,32}")
_IDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_RE = re.compile(r"[A-Za-z0-9.+_-]{1,64}")
_CURRENCY_RE = re.compile(r"[0-9]{3}")
_MASKED_PAN_RE = re.compile(r"[0-9]{0,6}[*X]+[0-9]{0,4}")
_MASKED_ACCOUNT_RE = re.compile(r"[*X]{1,32}[0-9]{4}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The envelope's ``created_at``: UTC with exactly three fraction digits.
_ENVELOPE_TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{3}Z"
)
# Digit runs that may hold a card number, allowing single spaces or dashes between groups.
_DIGIT_RUN_RE = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _pan_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _DIGIT_RUN_RE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            spans.append(match.span())
    return spans


def contains_pan(text: str) -> bool:
    """Tell whether ``text`` holds a Luhn-valid 13–19 digit number (a possible card number).

    Digits may be grouped by single spaces or dashes, as card numbers are usually written.

    :param text: any text
    """
    return bool(_pan_spans(text))


def redact_pans(text: str) -> str:
    """Replace every possible card number in ``text`` by ``[PAN]``.

    Use it on text from elsewhere (exception messages, terminal print lines) before putting it
    into a record, whose free-text fields refuse anything :func:`contains_pan` finds.

    :param text: any text
    """
    for start, end in reversed(_pan_spans(text)):
        text = text[:start] + "[PAN]" + text[end:]
    return text


def sanitize_free_text(text: str, max_len: int) -> str:
    """Make arbitrary text (an exception message, a terminal print line) fit a free-text field.

    Control characters and line breaks become spaces, lone surrogates become U+FFFD, possible
    card numbers become ``[PAN]``, and the result is stripped and cut to ``max_len``. Blank
    input gives ``"(blank)"``.

    :param text: any text
    :param max_len: the field's limit (``last_error``: 500)
    """
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = " ".join(_CONTROL_RE.sub(" ", text).split())
    # Cut first, then redact: cutting a long digit run could otherwise leave a card-sized one.
    text = redact_pans(text[:max_len]).strip()
    return text or "(blank)"


def check_integer(
    name: str, value: Any, *, minimum: int, maximum: int = MAX_SAFE_INT, optional: bool = False
) -> None:
    if value is None and optional:
        return
    if type(value) is not int:  # bool is an int subclass: refuse it, and floats
        raise RecordValueError(f"must be an integer, not {type(value).__name__}", name)
    if not minimum <= value <= maximum:
        raise RecordValueError(f"must be between {minimum} and {maximum}", name)


def check_boolean(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not bool:
        raise RecordValueError(f"must be true or false, not {type(value).__name__}", name)


def check_str(name: str, value: Any) -> str:
    if type(value) is not str:
        raise RecordValueError(f"must be a string, not {type(value).__name__}", name)
    return value


def check_text(name: str, value: Any, *, pattern: re.Pattern[str], optional: bool = False) -> None:
    if value is None and optional:
        return
    if not pattern.fullmatch(check_str(name, value)):
        raise RecordValueError(f"{value[:40]!r} does not match {pattern.pattern}", name)


def check_identifier(name: str, value: Any, *, optional: bool = False) -> None:
    check_text(name, value, pattern=_IDENT_RE, optional=optional)


def check_currency(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _CURRENCY_RE.fullmatch(check_str(name, value)):
        raise RecordValueError("must be an ISO 4217 numeric code of 3 digits", name)


def check_choice(
    name: str, value: Any, choices: tuple[str, ...], *, optional: bool = False
) -> None:
    if value is None and optional:
        return
    if check_str(name, value) not in choices:
        raise RecordValueError(f"must be one of {', '.join(choices)}", name)


def _valid_datetime(match: re.Match[str]) -> bool:
    # Every time pattern here starts with exactly "YYYY-MM-DDTHH:MM:SS"; the calendar and
    # clock ranges (leap days, no year 0000, no hour 24) are datetime's.
    try:
        datetime.fromisoformat(match.group()[:19])
    except ValueError:
        return False
    return True


def valid_envelope_time(value: Any) -> bool:
    """True for an envelope ``created_at``: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` naming a real time
    (year 0001 on, leap days only in leap years)."""
    if type(value) is not str:
        return False
    match = _ENVELOPE_TIME_RE.fullmatch(value)
    return match is not None and _valid_datetime(match)


def check_utc_time(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    match = _UTC_RE.fullmatch(check_str(name, value))
    if match is None or not _valid_datetime(match):
        raise RecordValueError("must be a UTC time like 2026-11-26T12:00:00Z", name)


def check_local_time(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    match = _LOCAL_RE.fullmatch(check_str(name, value))
    if match is None or not _valid_datetime(match):
        raise RecordValueError("must be a local time like 2026-11-26T13:00:00 (no zone)", name)


def check_any_time(name: str, value: Any) -> None:
    text = check_str(name, value)
    if text.endswith("Z"):
        check_utc_time(name, text)
    else:
        check_local_time(name, text)


def check_masked_pan(name: str, value: Any) -> None:
    text = check_str(name, value)
    if len(text) > 19 or not _MASKED_PAN_RE.fullmatch(text):
        raise RecordValueError("must show at most the first 6 and last 4 digits, rest * or X", name)


def check_masked_account(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not _MASKED_ACCOUNT_RE.fullmatch(check_str(name, value)):
        raise RecordValueError("must show only the last 4 digits, e.g. ****1234", name)


def check_sealed_token(name: str, value: Any) -> None:
    if not SEALED_TOKEN_RE.fullmatch(check_str(name, value)):
        raise RecordValueError("must be a sealed token sg1.<base64url>", name)


def check_free_text(name: str, value: Any, *, max_len: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    text = check_str(name, value)
    if not text.strip() or len(text) > max_len:
        raise RecordValueError(f"must be 1 to {max_len} characters, not blank", name)
    if _CONTROL_RE.search(text):
        raise RecordValueError("must not contain control characters", name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordValueError("must be valid Unicode (no lone surrogates)", name) from None
    if contains_pan(text):
        raise RecordValueError("looks like it contains a card number; refusing to store it", name)


def check_tuple_of(name: str, value: Any, cls: type[Any]) -> None:
    if type(value) is not tuple:
        raise RecordValueError(f"must be a tuple, not {type(value).__name__}", name)
    for i, item in enumerate(value):
        if not isinstance(item, cls):
            raise RecordValueError(f"must be a {cls.__name__}", f"{name}[{i}]")

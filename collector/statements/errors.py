"""The one error type every statement parser raises on bad input, and its masking.

An error message is stored on the import, shown on the dashboard and in the API, exported as
CSV and written to the audit log, so it must never carry a card or account number from the
file. Every part of a :class:`StatementError` (and of a rejected row's reason, see
:class:`collector.statements.model.Reject`) goes through :func:`mask_digit_runs`, and the
message names the file, line or element, and column, so the operator can find the cell
without the message repeating it.
"""

from __future__ import annotations

import re

#: Twelve or more digits, counting across up to three separators between two digits
#: (spaces of any width, dashes, dots, slashes, underscores), as card and account numbers
#: are printed: ``4111-1111-1111-1111``, ``6222 0212 3456 7890 123``.
_DIGIT_RUN = re.compile(r"\d(?:[\s\-\u2010-\u2015\u2212\uff0d_./]{0,3}\d){11,}")
#: Longest reason kept in a message: a parser quoting a long cell is cut short.
MAX_REASON = 300


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    digits = sum(char.isdigit() for char in run)
    seen, out = 0, []
    for char in run:
        if char.isdigit():
            seen += 1
            out.append(char if seen > digits - 4 else "*")
        else:
            out.append(char)
    return "".join(out)


def mask_digit_runs(text: str) -> str:
    """``text`` with every run of 12 or more digits masked except its last four digits.

    ``amount '4111-1111-1111-1111' is not a decimal`` becomes
    ``amount '****-****-****-1111' is not a decimal``. Digits in any script count (full-width
    ``４１１１``), and so do runs split by spaces, dashes, dots, slashes or underscores.

    :param text: a message, or a part of one, that may quote a cell
    """
    return _DIGIT_RUN.sub(_mask_run, text)


def safe_reason(reason: str) -> str:
    """A reason as stored and shown: :func:`mask_digit_runs`, cut to :data:`MAX_REASON`.

    :param reason: what a parser says is wrong, possibly quoting a cell
    """
    masked = mask_digit_runs(reason)
    return masked if len(masked) <= MAX_REASON else masked[: MAX_REASON - 1] + "…"


class StatementError(Exception):
    """A statement or payout file could not be read; the message says where.

    Every text part is masked with :func:`mask_digit_runs` here, once, so no parser can
    put a card or account number from the file into a message.

    Exactly one of ``line`` (text formats) or ``element`` (XML) is usually set;
    ``column`` names the CSV column when the fault is in one cell.

    :param reason: what is wrong, in words an operator understands
    :param filename: the uploaded file's name
    :param line: 1-based line number in the file, when known
    :param column: the CSV column's header text, when known
    :param element: the XML element path such as ``Ntry[3]/Amt``, when known
    :param sheet: the workbook sheet's name (``line`` is then the sheet's row number)
    """

    def __init__(
        self,
        reason: str,
        *,
        filename: str = "<upload>",
        line: int | None = None,
        column: str | None = None,
        element: str | None = None,
        sheet: str | None = None,
    ) -> None:
        self.reason = safe_reason(reason)
        self.filename = mask_digit_runs(filename)
        self.sheet = None if sheet is None else mask_digit_runs(sheet)
        self.line = line
        self.column = None if column is None else mask_digit_runs(column)
        self.element = None if element is None else mask_digit_runs(element)
        super().__init__(self._describe())

    def in_file(self, filename: str) -> StatementError:
        """Return the same error, located in ``filename``."""
        return type(self)(
            self.reason,
            filename=filename,
            line=self.line,
            column=self.column,
            element=self.element,
            sheet=self.sheet,
        )

    def _describe(self) -> str:
        where = self.filename
        if self.sheet is not None:
            where += f" sheet {self.sheet!r}"
        if self.line is not None:
            where += f" {'row' if self.sheet is not None else 'line'} {self.line}"
        if self.column is not None:
            where += f" column {self.column}"
        if self.element is not None:
            where += f": element {self.element}"
        return f"{where}: {self.reason}"


class ProfileError(StatementError):
    """A column-mapping profile file is itself broken (not the statement's fault)."""

"""The one error type every statement parser raises on bad input."""

from __future__ import annotations


class StatementError(Exception):
    """A statement or payout file could not be read; the message says where.

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
        self.reason = reason
        self.sheet = sheet
        self.filename = filename
        self.line = line
        self.column = column
        self.element = element
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

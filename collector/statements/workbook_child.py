"""Read a workbook's sheets as text, in a child process with a memory ceiling.

Run as a script (``python workbook_child.py``): the workbook's bytes come on stdin, one JSON
object goes to stdout: ``{"sheets": [[name, rows]]}`` with every cell as the text a person
sees, or ``{"error": "password" | "damaged" | "too_large", "detail": ...}``.

The workbook reader builds each sheet as a dense grid sized by the largest row and column
any cell record names, and trusts the file's own tables. A damaged or hostile ``.xls``/
``.xlsx`` of a few kilobytes can therefore ask for gigabytes, and the reader aborts the
whole process when that fails. Reading in a child under ``RLIMIT_AS`` keeps the collector
alive; the parent refuses the file when the child dies. This module imports nothing from
the collector so the child starts quickly.
"""

from __future__ import annotations

import io
import json
import resource
import sys
from datetime import date, datetime, time, timedelta

import python_calamine

#: the child's address-space ceiling: far above a real export, far below the machine
MEMORY_LIMIT = 1024 * 1024 * 1024
#: A month of a busy account is a few thousand rows of a dozen columns; a sheet claiming
#: millions of cells is refused before its grid is built.
MAX_CELLS = 2_000_000


def cell_text(value: object) -> str:
    """The cell as a person reads it: whole numbers without ``.0``, dates as ISO text."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.time() != time() else "%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return str(value)


def read_sheets(data: bytes) -> dict[str, object]:
    """Every sheet's rows as text, or an ``error`` kind with a short detail."""
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = []
        for name in workbook.sheet_names:
            sheet = workbook.get_sheet_by_name(name)
            if sheet.height * sheet.width > MAX_CELLS:
                return {"error": "too_large", "detail": f"{sheet.height} × {sheet.width} cells"}
            rows = sheet.to_python(skip_empty_area=False)
            sheets.append([name, [[cell_text(c) for c in row] for row in rows]])
    except python_calamine.PasswordError:
        return {"error": "password", "detail": ""}
    except Exception as exc:  # the reader's many error types all mean a file it cannot read
        return {"error": "damaged", "detail": type(exc).__name__}
    except BaseException as exc:  # pyo3 surfaces a Rust panic as PanicException
        if type(exc).__name__ != "PanicException":
            raise
        return {"error": "damaged", "detail": "reader panic"}
    return {"sheets": sheets}


def main() -> None:
    """Read stdin under the memory ceiling and write the JSON answer to stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    answer = read_sheets(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()

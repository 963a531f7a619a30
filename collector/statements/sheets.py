"""Read an uploaded export into rows of text cells, whatever container the bank used.

Chinese banks hand merchants the same table in three containers: CSV text (UTF-8 with a BOM,
or GBK from older systems), a BIFF8 ``.xls`` (an OLE2 compound file: 中国建设银行's 交易明细)
and an ``.xlsx`` (a ZIP package: 中国农业银行's 账户明细). The container is told from the
first bytes, never from the file name: OLE2 files start ``D0 CF 11 E0 A1 B1 1A E1`` and ZIP
archives ``PK\\x03\\x04`` (see docs/statements.md). Workbooks are read with python-calamine;
every cell becomes the text a person sees, so one set of profile rules serves all three.

Rows keep their 1-based number in the file (the line of a CSV, the row of a sheet), so an
error can say where to look. A password-protected workbook, a damaged ZIP, a workbook with
several filled sheets, and binary files that are neither are refused with
:class:`StatementError`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

import python_calamine

from collector.statements.errors import StatementError
from collector.statements.tabular import Row, clean_cell, decode, split_rows

Container = Literal["text", "xls", "xlsx"]

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# MS-CFB directory entry names are UTF-16LE; an encrypted OOXML file is an OLE2 container
# holding these two streams instead of a ZIP package ([MS-OFFCRYPTO] §2.3.4).
_ENCRYPTED_STREAMS = ("EncryptedPackage".encode("utf-16-le"), "EncryptionInfo".encode("utf-16-le"))
# BIFF8 record types ([MS-XLS] §2.3): BOF opens the workbook globals, FILEPASS right after
# it means the workbook is encrypted, BOUNDSHEET8 comes after the point FILEPASS must appear.
_BIFF_BOF, _BIFF_FILEPASS, _BIFF_BOUNDSHEET = 0x0809, 0x002F, 0x0085
_OTHER_BINARIES = {
    b"%PDF": "a PDF document; export the statement as Excel (.xls/.xlsx) or CSV instead",
    b"Rar!": "a RAR archive; unpack it and upload the statement inside",
    b"\x1f\x8b": "a gzip archive; unpack it and upload the statement inside",
}


@dataclass(frozen=True, slots=True)
class Table:
    """An export's rows and where they came from (``sheet`` is None for CSV text)."""

    rows: list[Row]
    container: Container
    sheet: str | None = None


def container_of(data: bytes) -> Container:
    """Tell the container from the first bytes: ``xls`` (OLE2), ``xlsx`` (ZIP) or ``text``."""
    if data.startswith(OLE2_MAGIC):
        return "xls"
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    return "text"


def read_table(data: bytes, filename: str) -> Table:
    """Return the export's rows, from CSV text or from the one filled sheet of a workbook.

    :param data: the uploaded bytes
    :param filename: used in error messages
    :raises StatementError: an unreadable, encrypted or damaged file, or several filled sheets
    """
    container = container_of(data)
    if container == "text":
        for magic, what in _OTHER_BINARIES.items():
            if data.startswith(magic):
                raise StatementError(f"this is {what}", filename=filename)
        return Table(split_rows(decode(data, filename)), "text")
    if container == "xls":
        _refuse_encrypted_ole(data, filename)
    else:
        _check_zip(data, filename)
    return _read_workbook(data, container, filename)


def _refuse_encrypted_ole(data: bytes, filename: str) -> None:
    if any(name in data for name in _ENCRYPTED_STREAMS):
        raise StatementError(
            "the workbook is password-protected; open it in Excel or WPS, remove the password"
            " (文件 → 信息 → 保护工作簿 → 用密码进行加密) and upload it again",
            filename=filename,
        )
    if _biff_has_filepass(data):
        raise StatementError(
            "the .xls workbook is password-protected; save it again without a password",
            filename=filename,
        )


def _biff_has_filepass(data: bytes) -> bool:
    """True when the workbook-globals records after the first BOF include FILEPASS.

    The first records of the Workbook stream lie contiguously in its first sector, and
    FILEPASS must precede BOUNDSHEET8, so walking from the first BOF is enough.
    """
    start = data.find(b"\x09\x08\x10\x00\x00\x06\x05\x00", 512)  # BOF, BIFF8, workbook globals
    if start < 0:
        return False
    offset = start
    for _ in range(64):
        if offset + 4 > len(data):
            return False
        kind = int.from_bytes(data[offset : offset + 2], "little")
        size = int.from_bytes(data[offset + 2 : offset + 4], "little")
        if kind == _BIFF_FILEPASS:
            return True
        if kind == _BIFF_BOUNDSHEET:
            return False
        offset += 4 + size
    return False


def _check_zip(data: bytes, filename: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = set(package.namelist())
            damaged = package.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise StatementError(
            "the .xlsx file is damaged or cut short (not a complete ZIP archive); download it"
            " from the bank again",
            filename=filename,
        ) from exc
    if damaged is not None:
        raise StatementError(
            "the .xlsx file is damaged (a part fails its checksum); download it again",
            filename=filename,
        )
    if "xl/workbook.xml" not in names:
        raise StatementError(
            "a ZIP archive but not an Excel .xlsx workbook; upload the statement itself",
            filename=filename,
        )


def _read_workbook(data: bytes, container: Container, filename: str) -> Table:
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = [
            (name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=False))
            for name in workbook.sheet_names
        ]
    except python_calamine.PasswordError as exc:
        raise StatementError(
            "the workbook is password-protected; save it again without a password",
            filename=filename,
        ) from exc
    except (python_calamine.CalamineError, ValueError, OSError) as exc:
        kind = "an .xls (BIFF8)" if container == "xls" else "an .xlsx"
        raise StatementError(
            f"{kind} workbook that cannot be read ({type(exc).__name__}); download it again",
            filename=filename,
        ) from exc
    filled = [(name, rows) for name, rows in sheets if any(any(_text(c) for c in r) for r in rows)]
    if not filled:
        raise StatementError("the workbook has no filled sheet", filename=filename)
    if len(filled) > 1:
        names = ", ".join(repr(name) for name, _ in filled)
        raise StatementError(
            f"the workbook has {len(filled)} filled sheets ({names}); keep only the statement"
            " sheet (delete the others, or save that sheet alone) and upload again",
            filename=filename,
        )
    name, raw_rows = filled[0]
    rows = [
        Row(number, [clean_cell(_text(c)) for c in cells])
        for number, cells in enumerate(raw_rows, start=1)
    ]
    return Table(rows, container, name)


def _text(value: object) -> str:
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

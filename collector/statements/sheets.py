"""Read an uploaded export into rows of text cells, whatever container the bank used.

Chinese banks hand merchants the same table in three containers: CSV text (UTF-8 with a BOM,
or GBK from older systems), a BIFF8 ``.xls`` (an OLE2 compound file: 中国建设银行's 交易明细)
and an ``.xlsx`` (a ZIP package: 中国农业银行's 账户明细). The container is told from the
first bytes, never from the file name: OLE2 files start ``D0 CF 11 E0 A1 B1 1A E1`` and ZIP
archives ``PK\\x03\\x04`` (see docs/statements.md). Workbooks are read with python-calamine
in a child process with a memory ceiling (:mod:`collector.statements.workbook_child`: a
damaged file can make the reader ask for gigabytes and abort); every cell becomes the text a
person sees, so one set of profile rules serves all three.

Rows keep their 1-based number in the file (the line of a CSV, the row of a sheet), so an
error can say where to look. A password-protected workbook, a damaged ZIP, a workbook with
several filled sheets, and binary files that are neither are refused with
:class:`StatementError`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.tabular import Row, clean_cell, decode, split_rows

Container = Literal["text", "xls", "xlsx"]

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# MS-CFB directory entry names are UTF-16LE; an encrypted OOXML file is an OLE2 container
# holding these two streams instead of a ZIP package ([MS-OFFCRYPTO] §2.3.4).
_ENCRYPTED_STREAMS = ("EncryptedPackage".encode("utf-16-le"), "EncryptionInfo".encode("utf-16-le"))
# BIFF8 record types ([MS-XLS] §2.3): BOF opens the workbook globals, FILEPASS right after
# it means the workbook is encrypted, BOUNDSHEET8 comes after the point FILEPASS must appear.
_BIFF_BOF, _BIFF_FILEPASS, _BIFF_BOUNDSHEET = 0x0809, 0x002F, 0x0085
_CHILD = Path(__file__).with_name("workbook_child.py")
#: a real export reads in well under a second; a hostile one is stopped here
READ_TIMEOUT_S = 60
#: what an .xlsx may unpack to (a month's statement is a few MiB of XML)
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
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
            unpacked = sum(info.file_size for info in package.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise StatementError(
                    f"the .xlsx unpacks to {unpacked} bytes; a statement is far smaller",
                    filename=filename,
                )
            damaged = package.testzip()
    except RuntimeError as exc:  # zipfile's word for an entry that needs a password
        raise StatementError(
            "the .xlsx archive is password-protected; save it again without a password",
            filename=filename,
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
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


def _load_sheets(data: bytes, filename: str) -> list[tuple[str, list[list[str]]]]:
    """Every sheet's rows as text, read in a child process (see ``workbook_child``)."""
    try:
        done = subprocess.run(  # our own script, run by the running interpreter
            [sys.executable, str(_CHILD)],
            input=data,
            capture_output=True,
            timeout=READ_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StatementError(
            f"the workbook could not be read within {READ_TIMEOUT_S} s", filename=filename
        ) from exc
    if done.returncode != 0:
        raise StatementError(
            "the workbook reader gave up (the file is damaged, or claims a sheet far larger"
            " than it holds); download it from the bank again",
            filename=filename,
        )
    answer = json.loads(done.stdout)
    error = answer.get("error")
    if error == "password":
        raise StatementError(
            "the workbook is password-protected; save it again without a password",
            filename=filename,
        )
    if error == "too_large":
        raise StatementError(
            f"the workbook claims a sheet of {answer['detail']}; a statement is far smaller",
            filename=filename,
        )
    if error is not None:
        raise StatementError(
            f"the workbook cannot be read ({answer['detail']}); download it again",
            filename=filename,
        )
    return [(name, rows) for name, rows in answer["sheets"]]


def _read_workbook(data: bytes, container: Container, filename: str) -> Table:
    sheets = _load_sheets(data, filename)
    filled = [(name, rows) for name, rows in sheets if any(any(c for c in r) for r in rows)]
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
        Row(number, [clean_cell(c) for c in cells])
        for number, cells in enumerate(raw_rows, start=1)
    ]
    return Table(rows, container, name)

"""Column-mapping profiles for bank CSV exports and acquirer payout files.

A profile is a TOML data file: which header cells identify the export (``detect``),
which column holds which field (``[columns]``, each a header text or a list of
alternatives), date formats, the default currency and word maps (currency names,
payout status words). Built-in profiles live beside this module in ``profiles/``;
users add or override them with files in ``$SETTLEGUARD_PROFILE_DIR`` (several
directories separated by ``os.pathsep``) or a directory passed by the caller.
See ``docs/statements.md`` for the keys.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from settleguard.collector.statements.errors import ProfileError

ProfileKind = Literal["bank", "payout"]

_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    # each inner tuple is "one of": a bank export has one signed amount or credit+debit
    "bank": (("booking_date",), ("amount", "credit")),
    "payout": (
        ("merchant_id",),
        ("settlement_date",),
        ("gross",),
        ("fees",),
        ("net",),
        ("status",),
    ),
}
_FIELDS = {
    "bank": {
        "booking_date",
        "value_date",
        "amount",
        "credit",
        "debit",
        "direction",
        "currency",
        "balance",
        "reference",
        "end_to_end_id",
        "remittance",
        "counterparty",
        "counterparty_account",
    },
    "payout": {
        "merchant_id",
        "settlement_date",
        "gross",
        "fees",
        "net",
        "target_account",
        "status",
        "reason",
        "reference",
        "batch_refs",
        "currency",
    },
}
_PAYOUT_STATUSES = {"paid", "failed", "returned", "held"}
DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d %H:%M:%S",
    "%Y年%m月%d日",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """One export layout. ``columns`` maps a field to the header texts it may have."""

    name: str
    kind: ProfileKind
    title: str
    detect: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    currency: str = "CNY"
    currency_map: dict[str, str] = field(default_factory=dict)
    direction_map: dict[str, str] = field(default_factory=dict)
    status_map: dict[str, str] = field(default_factory=dict)
    account_pattern: str | None = None
    holder_pattern: str | None = None
    period_pattern: str | None = None
    credit_total_labels: tuple[str, ...] = ()
    debit_total_labels: tuple[str, ...] = ()
    newest_first: bool = False
    trailer_prefixes: tuple[str, ...] = ()
    reversal_markers: tuple[str, ...] = ()
    batch_separator: str = ";"
    max_preamble: int = 30
    source: str = ""

    def match_header(self, cells: list[str]) -> dict[str, int] | None:
        """Return field → column index if ``cells`` is this profile's header row, else None."""
        if not all(name in cells for name in self.detect):
            return None
        mapping = {}
        for name, alternatives in self.columns.items():
            index = next((cells.index(a) for a in alternatives if a in cells), None)
            if index is not None:
                mapping[name] = index
        for one_of in _REQUIRED[self.kind]:
            if not any(f in mapping for f in one_of):
                return None
        if "credit" in mapping and "debit" not in mapping and "amount" not in mapping:
            return None
        return mapping


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ProfileError(f"{where} must be a string or a list of strings", filename=where)


def _table(raw: dict[str, Any], key: str, source: str) -> dict[str, str]:
    table = raw.get(key, {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ProfileError(f"[{key}] must map words to strings", filename=source)
    return dict(table)


def profile_from_toml(text: str, source: str) -> Profile:
    """Build a :class:`Profile` from TOML text.

    :param text: the profile file's content
    :param source: the file's path, for error messages
    :raises ProfileError: if the TOML is invalid or a key has the wrong shape
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"invalid TOML: {exc}", filename=source) from exc
    kind = raw.get("kind", "bank")
    if kind not in _FIELDS:
        raise ProfileError(f"kind must be 'bank' or 'payout', not {kind!r}", filename=source)
    name = raw.get("name") or Path(source).stem
    columns_raw = raw.get("columns")
    if not isinstance(columns_raw, dict) or not columns_raw:
        raise ProfileError("a profile needs a [columns] table", filename=source)
    unknown = set(columns_raw) - _FIELDS[kind]
    if unknown:
        raise ProfileError(f"unknown column fields {sorted(unknown)}", filename=source)
    columns = {k: _strings(v, f"{source} columns.{k}") for k, v in columns_raw.items()}
    status_map = _table(raw, "status_map", source)
    bad = set(status_map.values()) - _PAYOUT_STATUSES
    if bad:
        raise ProfileError(f"status_map values must be {sorted(_PAYOUT_STATUSES)}", filename=source)
    try:
        return Profile(
            name=str(name),
            kind=kind,
            title=str(raw.get("title", name)),
            detect=_strings(raw.get("detect", []), f"{source} detect"),
            columns=columns,
            date_formats=_strings(
                raw.get("date_formats", list(DEFAULT_DATE_FORMATS)), f"{source} date_formats"
            ),
            currency=str(raw.get("currency", "CNY")),
            currency_map=_table(raw, "currency_map", source),
            direction_map=_table(raw, "direction_map", source),
            status_map=status_map,
            account_pattern=raw.get("account_pattern"),
            holder_pattern=raw.get("holder_pattern"),
            period_pattern=raw.get("period_pattern"),
            credit_total_labels=_strings(raw.get("credit_total_labels", []), f"{source} totals"),
            debit_total_labels=_strings(raw.get("debit_total_labels", []), f"{source} totals"),
            newest_first=bool(raw.get("newest_first", False)),
            trailer_prefixes=_strings(raw.get("trailer_prefixes", []), f"{source} trailer"),
            reversal_markers=_strings(raw.get("reversal_markers", []), f"{source} reversal"),
            batch_separator=str(raw.get("batch_separator", ";")),
            max_preamble=int(raw.get("max_preamble", 30)),
            source=source,
        )
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"bad profile value: {exc}", filename=source) from exc


def _directories(profile_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("SETTLEGUARD_PROFILE_DIR", "").split(os.pathsep) if p]
    if profile_dir is not None:
        dirs.append(Path(profile_dir))
    return dirs


def load_profiles(profile_dir: str | os.PathLike[str] | None = None) -> dict[str, Profile]:
    """Return every profile by name: built-in first, then user directories overriding them.

    :param profile_dir: an extra directory of ``*.toml`` profiles (wins over the environment)
    :raises ProfileError: if a profile file is broken
    """
    profiles: dict[str, Profile] = {}
    builtin = resources.files(__package__).joinpath("profiles")
    for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            p = profile_from_toml(entry.read_text(encoding="utf-8"), f"profiles/{entry.name}")
            profiles[p.name] = p
    for directory in _directories(profile_dir):
        for path in sorted(directory.glob("*.toml")):
            p = profile_from_toml(path.read_text(encoding="utf-8"), str(path))
            profiles[p.name] = p
    return profiles

"""Alert texts in zh-CN (default) and en, from a TOML data file a user can override.

A catalog is checked when it is loaded: every template is rendered with the longest values it
can receive (largest amount, longest cause and action per category, the longest reference) and
refused if that could cost more than ``max_parts`` SMS (see :mod:`.encoding`).
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Literal

from collector.reconcile.model import GAP_CATEGORIES

from .encoding import segment

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
DEFAULT_TEMPLATES = Path(__file__).with_name("templates.toml")
VARIABLES = frozenset({"amount", "date", "card_tail", "cause", "action", "reference"})
Kind = Literal["gap", "arrived"]
_REFERENCE = re.compile(r"[A-Z0-9-]{1,32}")


class TemplateError(ValueError):
    """A template file or a value to render is not acceptable; the message says where."""


@dataclass(frozen=True, slots=True)
class GapInfo:
    """What an alert says about one gap.

    :param amount_minor: money at stake in minor units (fen)
    :param card_tail: last 4 digits of the settlement card, nothing more
    :param reference: our reference code the merchant quotes when calling
    """

    gap_id: str
    category: str
    amount_minor: int
    date: Date
    card_tail: str
    reference: str
    currency: str = "CNY"


@dataclass(frozen=True, slots=True)
class Catalog:
    """Loaded, checked templates: ``texts[locale][kind]``, ``causes``/``actions`` per category."""

    texts: dict[str, dict[str, str]]
    causes: dict[str, dict[str, str]]
    actions: dict[str, dict[str, str]]
    max_parts: int
    max_amount_minor: int
    reference_chars: int


def format_amount(amount_minor: int, locale: str, currency: str = "CNY") -> str:
    """``¥1,234.56`` (zh-CN) or ``CNY 1,234.56`` (en) from integer minor units."""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    number = f"{sign}{major:,}.{minor:02d}"
    if locale == "zh-CN" and currency == "CNY":
        return f"¥{number}"
    return f"{currency} {number}"


def check_card_tail(card_tail: str) -> str:
    """Return *card_tail* if it is exactly 4 digits.

    :raises TemplateError: anything longer (a fuller card number must never reach an SMS)
    """
    if not re.fullmatch(r"[0-9]{4}", card_tail):
        raise TemplateError(
            f"card_tail must be exactly the last 4 digits, got {len(card_tail)} chars"
        )
    return card_tail


def _placeholders(template: str, where: str) -> set[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc
    unknown = names - VARIABLES
    if unknown:
        raise TemplateError(f"{where}: unknown variable(s) {sorted(unknown)}")
    return names


def _table(data: dict[str, object], key: str, where: str) -> dict[str, str]:
    table = data.get(key)
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise TemplateError(f"{where}.{key}: missing or not a table of strings")
    return dict(table)


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and check a template file (the packaged one by default).

    :raises TemplateError: syntax error, missing text, unknown variable, or a template that
        could exceed ``max_parts`` with maximal values
    """
    path = path or DEFAULT_TEMPLATES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    limits = data.get("limits", {})
    catalog = Catalog(
        {},
        {},
        {},
        int(data.get("max_parts", 3)),
        int(limits.get("amount_minor", 99_999_999_999)),
        int(limits.get("reference_chars", 12)),
    )
    for locale in LOCALES:
        section = data.get(locale)
        if not isinstance(section, dict):
            raise TemplateError(f"{path}: missing [{locale}] section")
        texts = {kind: section.get(kind) for kind in ("gap", "arrived")}
        for kind, text in texts.items():
            if not isinstance(text, str):
                raise TemplateError(f"{path}: [{locale}] has no '{kind}' template")
            _placeholders(text, f"{path}: [{locale}].{kind}")
        catalog.texts[locale] = {k: str(v) for k, v in texts.items()}
        for name, target in (("causes", catalog.causes), ("actions", catalog.actions)):
            table = _table(section, name, f"{path}: [{locale}]")
            missing = set(GAP_CATEGORIES) - set(table)
            if missing:
                raise TemplateError(f"{path}: [{locale}.{name}] lacks {sorted(missing)}")
            target[locale] = table
    _check_lengths(catalog, path)
    return catalog


def _check_lengths(catalog: Catalog, path: Path) -> None:
    # The reference uses our alphabet A-Z0-9-; 'W' is as costly as any of them in GSM-7.
    for locale in LOCALES:
        for kind in ("gap", "arrived"):
            for category in GAP_CATEGORIES:
                values = {
                    "amount": format_amount(catalog.max_amount_minor, locale),
                    "date": "2099-12-31",
                    "card_tail": "9999",
                    "cause": catalog.causes[locale][category],
                    "action": catalog.actions[locale][category],
                    "reference": "W" * catalog.reference_chars,
                }
                parts = segment(catalog.texts[locale][kind].format(**values)).part_count
                if parts > catalog.max_parts:
                    raise TemplateError(
                        f"{path}: [{locale}].{kind} for {category} can need {parts} SMS parts "
                        f"with the longest values; max_parts is {catalog.max_parts}"
                    )


_default: Catalog | None = None


def default_catalog() -> Catalog:
    """The packaged catalog, loaded once."""
    global _default
    if _default is None:
        _default = load_catalog()
    return _default


def render(
    gap: GapInfo, locale: str = DEFAULT_LOCALE, kind: Kind = "gap", catalog: Catalog | None = None
) -> str:
    """The SMS text for *gap*.

    :param kind: ``"gap"`` (money missing) or ``"arrived"`` (an alerted gap was resolved)
    :raises TemplateError: unknown locale/category, a card tail that is not 4 digits, a
        reference outside ``A-Z0-9-`` or longer than the catalog allows, or an amount larger
        than the one the templates were checked with
    """
    catalog = catalog or default_catalog()
    if locale not in catalog.texts:
        raise TemplateError(f"unknown locale {locale!r}; have {sorted(catalog.texts)}")
    if gap.category not in GAP_CATEGORIES:
        raise TemplateError(f"unknown gap category {gap.category!r}")
    if not _REFERENCE.fullmatch(gap.reference) or len(gap.reference) > catalog.reference_chars:
        raise TemplateError(
            f"reference {gap.reference!r} is not A-Z0-9- of at most "
            f"{catalog.reference_chars} characters"
        )
    if abs(gap.amount_minor) > catalog.max_amount_minor:
        raise TemplateError(f"amount {gap.amount_minor} exceeds the checked maximum")
    return catalog.texts[locale][kind].format(
        amount=format_amount(gap.amount_minor, locale, gap.currency),
        date=gap.date.isoformat(),
        card_tail=check_card_tail(gap.card_tail),
        cause=catalog.causes[locale][gap.category],
        action=catalog.actions[locale][gap.category],
        reference=gap.reference,
    )


def preview(gap: GapInfo, locale: str = DEFAULT_LOCALE, kind: Kind = "gap") -> dict[str, object]:
    """What ``alerts preview`` shows: the text, its encoding and its parts."""
    text = render(gap, locale, kind)
    seg = segment(text)
    return {
        "text": text,
        "encoding": seg.encoding,
        "part_count": seg.part_count,
        "parts": list(seg.parts),
    }

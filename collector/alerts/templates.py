"""Merchant SMS templates: one fixed text per gap category and locale, with typed variables.

Chinese SMS providers (Aliyun, Tencent Cloud) send only templates approved in advance under a
registered signature; the text is fixed and only declared variables change. The catalog
(``templates.toml``) therefore holds one template per category that tells the merchant
anything, plus ``DIGEST`` (several payouts on one day) and ``ARRIVED`` (money we told them about
has come). Each variable has a type, a maximum length (at most 20 characters, as providers
allow) and a sample for the approval sheet (:mod:`.approval`). The signature is never part of a
text: providers add it from ``SignName``; free-text gateways get it prefixed by :func:`signed`.

A catalog is checked when it is loaded: every zh-CN template, rendered with each variable at
its maximum length and the longest allowed signature, must fit one SMS (70 characters); no
template may be made of variables alone.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path

from settleguard.collector.alerts.encoding import segment

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
DEFAULT_TEMPLATES = Path(__file__).with_name("templates.toml")
DIGEST = "DIGEST"
ARRIVED = "ARRIVED"
#: A provider's limit on one variable's value.
VARIABLE_MAX_CHARS = 20
#: One UCS-2 SMS: what a Chinese template plus its signature must fit in.
ONE_SMS_CHARS = 70
_VARIABLE_TYPES = frozenset({"date", "money", "number", "chinese", "others"})
_VALUE_PATTERNS = {
    "date": re.compile(r"[0-9]{1,2}月[0-9]{1,2}日|[A-Z][a-z]{2} [0-9]{1,2}"),
    "money": re.compile(r"[0-9][0-9,]*\.[0-9]{2}"),
    "number": re.compile(r"[0-9]+"),
    "chinese": re.compile(r"[\u4e00-\u9fff·A-Za-z0-9]+"),
    "others": re.compile(r"[A-Z0-9-]+"),
}


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TemplateError(ValueError):
    """A template file or a value to render is not acceptable; the message says where."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One typed template variable, as declared in the catalog and on the approval sheet."""

    name: str
    type: str
    max_chars: int
    sample: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Template:
    """One fixed text per locale; ``variables`` in order of first appearance in zh-CN."""

    name: str
    use: str
    use_zh: str
    texts: dict[str, str]
    variables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template filled in: what a template gateway sends and what a person reads.

    :param params: variable values in template order (Aliyun sends them by name, Tencent in
        this order)
    :param text: the body without signature
    """

    template: str
    locale: str
    params: tuple[tuple[str, str], ...]
    text: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """Loaded, checked templates and variables."""

    templates: dict[str, Template]
    variables: dict[str, Variable]
    signature_max_chars: int


def format_amount(amount_minor: int) -> str:
    """``1,234.56`` from integer minor units (fen); the template carries the ¥ or CNY."""
    if amount_minor < 0:
        raise TemplateError("an amount in a merchant SMS is never negative")
    major, minor = divmod(amount_minor, 100)
    return f"{major:,}.{minor:02d}"


def format_day(day: Date, locale: str) -> str:
    """``11月26日`` (zh-CN) or ``Nov 26`` (en): the trading day, short enough for one SMS."""
    if locale == "zh-CN":
        return f"{day.month}月{day.day}日"
    return f"{_MONTHS[day.month - 1]} {day.day}"


def signed(text: str, sign_name: str, locale: str) -> str:
    """The text as a free-text gateway sends it: the signature a template provider would add."""
    return f"【{sign_name}】{text}" if locale == "zh-CN" else f"{sign_name}: {text}"


def check_sign_name(sign_name: str, catalog: Catalog | None = None) -> str:
    """Return *sign_name* if it is 2 to ``signature_max_chars`` characters without brackets.

    :raises TemplateError: too short, too long, or with 【】 (providers add those)
    """
    limit = (catalog or default_catalog()).signature_max_chars
    if not 2 <= len(sign_name) <= limit or any(c in sign_name for c in "【】[]"):
        raise TemplateError(f"SMS signature must be 2-{limit} characters without 【】")
    return sign_name


def _names(text: str, where: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


def _variables(data: dict[str, object], path: Path) -> dict[str, Variable]:
    table = data.get("variables")
    if not isinstance(table, dict) or not table:
        raise TemplateError(f"{path}: no [variables] table")
    found = {}
    for name, spec in table.items():
        where = f"{path}: [variables.{name}]"
        if not isinstance(spec, dict):
            raise TemplateError(f"{where} is not a table")
        kind, limit = spec.get("type"), spec.get("max_chars")
        if kind not in _VARIABLE_TYPES:
            raise TemplateError(f"{where}: type must be one of {sorted(_VARIABLE_TYPES)}")
        if not isinstance(limit, int) or not 1 <= limit <= VARIABLE_MAX_CHARS:
            raise TemplateError(f"{where}: max_chars must be 1-{VARIABLE_MAX_CHARS}")
        sample = str(spec.get("sample", ""))
        if not sample or len(sample) > limit:
            raise TemplateError(f"{where}: sample missing or longer than max_chars")
        found[name] = Variable(name, kind, limit, sample, str(spec.get("meaning", "")))
    return found


def _template(name: str, spec: object, variables: dict[str, Variable], path: Path) -> Template:
    where = f"{path}: [templates.{name}]"
    if not isinstance(spec, dict):
        raise TemplateError(f"{where} is not a table")
    texts = {}
    order: list[str] = []
    for locale in LOCALES:
        text = spec.get(locale)
        if not isinstance(text, str) or not text:
            raise TemplateError(f"{where} has no {locale} text")
        names = _names(text, f"{where}.{locale}")
        unknown = set(names) - set(variables)
        if unknown:
            raise TemplateError(f"{where}.{locale}: unknown variable(s) {sorted(unknown)}")
        if "【" in text or "】" in text:
            raise TemplateError(f"{where}.{locale}: the signature never goes inside the text")
        if not text.format(**dict.fromkeys(names, "")).strip(" ，。,.()（）"):
            raise TemplateError(f"{where}.{locale}: a template cannot be variables alone")
        texts[locale] = text
        order += [n for n in names if n not in order]
    if set(_names(texts["en"], where)) != set(_names(texts["zh-CN"], where)):
        raise TemplateError(f"{where}: zh-CN and en use different variables")
    use, use_zh = spec.get("use"), spec.get("use_zh")
    if not isinstance(use, str) or not isinstance(use_zh, str) or not use or not use_zh:
        raise TemplateError(f"{where} needs its use case in English (use) and Chinese (use_zh)")
    return Template(name, use, use_zh, texts, tuple(order))


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and check a template file (the packaged one by default).

    :raises TemplateError: syntax error, missing text, unknown or untyped variable, a variable
        longer than 20 characters, a signature inside a text, a text of variables alone, or a
        zh-CN text that could need more than one SMS
    """
    path = path or DEFAULT_TEMPLATES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    variables = _variables(data, path)
    specs = data.get("templates")
    if not isinstance(specs, dict) or not {DIGEST, ARRIVED} <= set(specs):
        raise TemplateError(f"{path}: [templates] needs at least {DIGEST} and {ARRIVED}")
    templates = {name: _template(name, spec, variables, path) for name, spec in specs.items()}
    catalog = Catalog(templates, variables, int(data.get("signature_max_chars", 6)))
    for template in templates.values():
        longest = longest_sms(catalog, template.name)
        if len(longest) > ONE_SMS_CHARS or segment(longest).part_count != 1:
            raise TemplateError(
                f"{path}: [templates.{template.name}] zh-CN can reach {len(longest)} characters"
                f" with the signature and the longest values; one SMS holds {ONE_SMS_CHARS}"
            )
    return catalog


def longest_sms(catalog: Catalog, name: str) -> str:
    """The zh-CN SMS of template *name* with every variable and the signature at full length."""
    template = catalog.templates[name]
    values = {v: "国" * catalog.variables[v].max_chars for v in template.variables}
    return signed(
        template.texts["zh-CN"].format(**values), "签" * catalog.signature_max_chars, "zh-CN"
    )


_default: Catalog | None = None


def default_catalog() -> Catalog:
    """The packaged catalog, loaded once."""
    global _default
    if _default is None:
        _default = load_catalog()
    return _default


def render(
    name: str, values: dict[str, str], locale: str = DEFAULT_LOCALE, catalog: Catalog | None = None
) -> Rendered:
    """Fill template *name* with *values* (already formatted strings).

    :raises TemplateError: unknown template or locale, a value missing, longer than its
        variable allows or not of its type (a card tail that is not 4 digits never renders);
        English texts go only through free-text gateways, so their values are held to the
        20-character cap and not to a provider's variable types
    """
    catalog = catalog or default_catalog()
    template = catalog.templates.get(name)
    if template is None:
        raise TemplateError(f"no template {name!r}; have {sorted(catalog.templates)}")
    if locale not in LOCALES:
        raise TemplateError(f"unknown locale {locale!r}; have {list(LOCALES)}")
    params = []
    for var in template.variables:
        value = values.get(var)
        spec = catalog.variables[var]
        if value is None:
            raise TemplateError(f"template {name}: no value for {var}")
        if locale != "zh-CN":  # free-text gateways only: no provider type, same 20-char cap
            if len(value) > VARIABLE_MAX_CHARS:
                raise TemplateError(f"template {name}: {var} longer than {VARIABLE_MAX_CHARS}")
        elif len(value) > spec.max_chars or not _VALUE_PATTERNS[spec.type].fullmatch(value):
            raise TemplateError(
                f"template {name}: {var} must be {spec.type} of at most {spec.max_chars}"
                f" characters, got {len(value)}"
            )
        if var == "card_tail" and not re.fullmatch(r"[0-9]{4}", value):
            raise TemplateError("card_tail must be exactly the last 4 digits")
        params.append((var, value))
    text = template.texts[locale].format(**dict(params))
    return Rendered(name, locale, tuple(params), text)


def preview(rendered: Rendered, sign_name: str) -> dict[str, object]:
    """What ``alerts preview`` shows: the SMS as the merchant reads it, its encoding and parts."""
    text = signed(rendered.text, sign_name, rendered.locale)
    seg = segment(text)
    return {
        "template": rendered.template,
        "params": dict(rendered.params),
        "text": text,
        "encoding": seg.encoding,
        "part_count": seg.part_count,
        "parts": list(seg.parts),
    }

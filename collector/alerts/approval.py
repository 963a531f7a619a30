"""The template approval sheet and the approved template codes per provider.

An operator registers a signature and every template with the SMS provider before anything can
be sent (docs/alerts.md "Registering with Aliyun and Tencent Cloud"). :func:`approval_sheet`
lists what the provider's console asks for: the template name, its type (通知短信), the text in
the provider's variable syntax (Aliyun names variables, ``${amount}``; Tencent numbers them in
order, ``{1}``), each variable's type and a sample, and the use case in Chinese. The provider
answers with a template code (Aliyun ``SMS_…``) or id (Tencent, digits); :func:`load_codes`
reads them from a TOML file, one table per provider::

    [aliyun]
    PAID_TO_OLD_ACCOUNT = "SMS_480000001"

:func:`missing_codes` names the templates the alert policy can send that have no code, which
``alerts run`` refuses to start with: a template provider never falls back to free text.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from pathlib import Path

from settleguard.collector.alerts.templates import Catalog, TemplateError, default_catalog

PROVIDERS = ("aliyun", "tencent")
TEMPLATE_TYPE = "通知短信"
_TYPE_LABELS = {
    "date": "日期",
    "money": "金额",
    "number": "数字",
    "chinese": "汉字",
    "others": "其他（字母、数字、-）",
}
_CODE_PATTERNS = {"aliyun": re.compile(r"SMS_[0-9]{1,20}"), "tencent": re.compile(r"[0-9]{1,20}")}


def provider_text(catalog: Catalog, name: str, provider: str) -> str:
    """The zh-CN text of template *name* in *provider*'s variable syntax."""
    template = catalog.templates[name]
    if provider == "aliyun":
        values = {v: f"${{{v}}}" for v in template.variables}
    elif provider == "tencent":
        values = {v: f"{{{i}}}" for i, v in enumerate(template.variables, 1)}
    else:
        raise TemplateError(f"unknown provider {provider!r}; have {list(PROVIDERS)}")
    return template.texts["zh-CN"].format(**values)


def approval_sheet(provider: str, catalog: Catalog | None = None) -> list[dict[str, object]]:
    """One row per template: what the provider's template form asks for."""
    catalog = catalog or default_catalog()
    rows: list[dict[str, object]] = []
    for name, template in catalog.templates.items():
        variables = [
            {
                "position": index,
                "name": var,
                "type": _TYPE_LABELS[catalog.variables[var].type],
                "max_chars": catalog.variables[var].max_chars,
                "sample": catalog.variables[var].sample,
                "meaning": catalog.variables[var].meaning,
            }
            for index, var in enumerate(template.variables, 1)
        ]
        rows.append(
            {
                "template": name,
                "type": TEMPLATE_TYPE,
                "text": provider_text(catalog, name, provider),
                "variables": variables,
                "use_case": template.use_zh,
                "use_case_en": template.use,
            }
        )
    return rows


def sheet_csv(rows: list[dict[str, object]]) -> str:
    """The sheet as CSV; variables in one cell, ``name:type:sample`` separated by ``; ``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["template", "type", "text", "variables", "use_case"])
    for row in rows:
        variables = row["variables"]
        assert isinstance(variables, list)
        cell = "; ".join(f"{v['name']}:{v['type']}:{v['sample']}" for v in variables)
        writer.writerow([row["template"], row["type"], row["text"], cell, row["use_case"]])
    return out.getvalue()


def load_codes(path: Path, provider: str, catalog: Catalog | None = None) -> dict[str, str]:
    """The approved codes for *provider* from the TOML file at *path*.

    :raises TemplateError: unreadable file, unknown template name, or a code that does not
        look like the provider's (Aliyun ``SMS_`` and digits, Tencent digits)
    """
    catalog = catalog or default_catalog()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    table = data.get(provider, {})
    if not isinstance(table, dict):
        raise TemplateError(f"{path}: [{provider}] is not a table")
    codes = {}
    for name, code in table.items():
        if name not in catalog.templates:
            raise TemplateError(f"{path}: [{provider}] names no template {name!r}")
        if not isinstance(code, str | int) or not _CODE_PATTERNS[provider].fullmatch(str(code)):
            raise TemplateError(f"{path}: [{provider}].{name} is not a {provider} template code")
        codes[name] = str(code)
    return codes


def missing_codes(codes: dict[str, str], needed: set[str]) -> list[str]:
    """Templates in *needed* without an approved code, sorted."""
    return sorted(needed - set(codes))

"""Why a payout bounced or waits, from the words the bank or the acquirer used.

A payout record's free text (退票原因, 处理结果) is mapped to a small set of reasons so that the
operator's guidance and the merchant's SMS can follow it:

* RETURNED (退票): ``name_mismatch`` (户名不符: the card's holder is not the merchant's registered
  name, the usual cause after a card change), ``frozen_or_dormant`` (冻结, 止付, 久悬, 睡眠户),
  ``closed`` (销户, 已注销, 账户不存在), ``type2_limit`` (二类户 / II类账户 limits, 超限额), ``other``.
* HELD: ``risk_review`` (风控, 风险, 延迟结算), ``retrieval_request`` (调单, 调阅, 单据), ``other``.
* Same-day limit used up (D0 额度不足, 转T+1): not a failure but the known fallback of D0, S0 and
  T0 payouts to the next working day.

The first matching reason in the order above wins.
"""

from __future__ import annotations

import re

RETURN_REASONS: tuple[str, ...] = (
    "name_mismatch",
    "frozen_or_dormant",
    "closed",
    "type2_limit",
    "other",
)
HOLD_REASONS: tuple[str, ...] = ("risk_review", "retrieval_request", "other")

_RETURN_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "name_mismatch",
        re.compile(r"户名|账户名|名称不(符|一致)|姓名不|name\s*mismatch|name does not match", re.I),
    ),
    ("type2_limit", re.compile(r"二类|II类|Ⅱ类|2类|限额|超限|type\s*(ii|2)|limit", re.I)),
    ("frozen_or_dormant", re.compile(r"冻结|止付|久悬|睡眠|不动户|frozen|dormant", re.I)),
    ("closed", re.compile(r"销户|注销|账户不存在|无此账户|已关闭|closed|no such account", re.I)),
)
_HOLD_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("retrieval_request", re.compile(r"调单|调阅|单据|retrieval", re.I)),
    ("risk_review", re.compile(r"风控|风险|延迟结算|暂缓|冻结资金|risk", re.I)),
)
_FALLBACK = re.compile(
    r"额度不足|额度已用|超.{0,4}额度|转\s*T\s*\+?\s*1|改\s*T\s*\+?\s*1|quota|fall\s*back", re.I
)


def return_reason(text: str) -> str:
    """One of :data:`RETURN_REASONS` for a returned payout's reason text."""
    for reason, pattern in _RETURN_RULES:
        if pattern.search(text):
            return reason
    return "other"


def hold_reason(text: str) -> str:
    """One of :data:`HOLD_REASONS` for a held payout's reason text."""
    for reason, pattern in _HOLD_RULES:
        if pattern.search(text):
            return reason
    return "other"


def is_same_day_fallback(text: str) -> bool:
    """True when the text says a same-day payout moved to T+1 for lack of quota."""
    return bool(_FALLBACK.search(text))

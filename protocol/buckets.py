"""China's card buckets: the names the whole system uses for batch totals.

Every protocol's own bucket names map into these (docs/envelope.md §5.1). The international
terminal families (ZVT, PAX POSLink) are installed in China where foreign cards are accepted
(外卡收单), so their card buckets are foreign cards; their non-card groups are ``other``. A
record keeps the protocol's own name beside the China bucket (``scheme``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

#: The buckets, in display order, with their Chinese names.
CHINA_BUCKETS: dict[str, str] = {
    "domestic_debit": "借记卡",
    "domestic_credit": "贷记卡",
    "foreign": "外卡",
    "unionpay_qr": "银联二维码",
    "wechat": "微信",
    "alipay": "支付宝",
    "ecny": "数字人民币",
    "other": "其他",
}

#: ZVT bitmap 60 buckets (PA00P015): international card schemes.
ZVT_TO_CHINA: dict[str, str] = {
    "girocard": "foreign",
    "jcb": "foreign",
    "eurocard": "foreign",
    "amex": "foreign",
    "visa": "foreign",
    "diners": "foreign",
    "other": "other",
}

#: POSLink EDC groups (firmware_notes/pax-poslink.md): card groups are foreign cards.
POSLINK_TO_CHINA: dict[str, str] = {
    "credit": "foreign",
    "debit": "foreign",
    "ebt": "other",
    "gift": "other",
    "loyalty": "other",
    "cash": "other",
    "check": "other",
}


def china_bucket(protocol: str, name: str) -> str:
    """The China bucket of a protocol's own bucket ``name`` (unknown names: ``other``)."""
    if name in CHINA_BUCKETS:
        return name
    if protocol == "zvt":
        return ZVT_TO_CHINA.get(name, "other")
    if protocol == "poslink":
        return POSLINK_TO_CHINA.get(name, "other")
    return "other"


class _Figures(Protocol):
    name: str
    sale_count: int
    sale_amount: int
    refund_count: int
    refund_amount: int
    void_count: int
    void_amount: int


_FIGURES = (
    "sale_count",
    "sale_amount",
    "refund_count",
    "refund_amount",
    "void_count",
    "void_amount",
)


def add_up(rows: Iterable[tuple[str, Sequence[int]]]) -> dict[str, list[int]]:
    """Add figures per China bucket: ``[(bucket, (count, amount, …)), …]`` → ``{bucket:
    [Σcount, Σamount, …]}`` in :data:`CHINA_BUCKETS` order (other names last)."""
    sums: dict[str, list[int]] = {}
    for name, figures in rows:
        total = sums.setdefault(name, [0] * len(figures))
        for i, value in enumerate(figures):
            total[i] += value
    order = {name: i for i, name in enumerate(CHINA_BUCKETS)}
    return {name: sums[name] for name in sorted(sums, key=lambda n: order.get(n, len(order)))}


def totals_by_china_bucket(protocol: str, buckets: Iterable[_Figures]) -> dict[str, list[int]]:
    """Sum record buckets per China bucket (several schemes may share one, e.g. ``foreign``).

    Older records name ZVT/POSLink buckets directly; they are mapped here too.

    :returns: China bucket -> [sale_count, sale_amount, refund_count, refund_amount,
        void_count, void_amount], in :data:`CHINA_BUCKETS` order
    """
    return add_up(
        (china_bucket(protocol, b.name), [getattr(b, field) for field in _FIGURES]) for b in buckets
    )

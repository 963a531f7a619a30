"""The demo's cast and script: merchants, terminals, trading days, and the faults to inject.

Everything is derived from one seed, so a run can be repeated. Each fault goes to a merchant of
its own, so that what the reconciliation finds can be compared with what was injected, fault by
fault, and anything else it reports counts as a false positive.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
CLOSE_TIME = time(21, 0)  # the daily End-of-Day, before the 23:00 cut-off

#: fault kind -> the gap category reconciliation should report for it (None: a match).
FAULTS: dict[str, str | None] = {
    "paid_to_old_account": "PAID_TO_OLD_ACCOUNT",  # change under review, acquirer pays the old card
    "change_rejected": "PAID_TO_OLD_ACCOUNT",  # change rejected, merchant waits on the new card
    "returned_name_mismatch": "RETURNED",  # new card active, bank returns: 户名不符
    "held": "HELD",  # acquirer holds the settlement for risk review
    "missing": "MISSING",  # acquirer says paid, nothing on the statement
    "short_paid": "SHORT_PAID",  # new device billed at a higher fee rate
    "final_batch_not_uploaded": "BATCH_NOT_UPLOADED",  # old agent box left before it synced
    "duplicate_credit": "DUPLICATE_CREDIT",  # the bank books one payout twice
    "change_pending_unpaid": "CHANGE_PENDING",  # acquirer pays nothing while it reviews
    "aggregated": None,  # three days paid as one credit (合并到账): must still match
}

#: International shops: terminals of the international families for foreign visitors' cards.
INTERNATIONAL = {2: ("zvt", "静安国际酒店"), 5: ("poslink", "浦东机场免税店")}
#: Faults whose shops have no register link and type their settlement slips (结算单); none
#: of them needs a terminal replacement.
SLIP_FAULTS = ("held", "duplicate_credit")
#: Where a small Shanghai shop's money comes in: (China bucket, share in percent, smallest and
#: largest ticket in fen). QR codes are most of it; foreign cards are rare.
CHINA_MIX: tuple[tuple[str, int, int, int], ...] = (
    ("wechat", 36, 600, 12000),
    ("alipay", 26, 600, 12000),
    ("unionpay_qr", 8, 800, 15000),
    ("domestic_debit", 16, 2000, 38000),
    ("domestic_credit", 10, 3000, 38000),
    ("ecny", 3, 800, 10000),
    ("foreign", 1, 5000, 38000),
)
#: The international shops' own buckets (ZVT bitmap 60 schemes, POSLink EDC groups); they all
#: land in ``foreign``.
INTERNATIONAL_BUCKETS = {"zvt": ("visa", "eurocard", "jcb", "amex"), "poslink": ("credit", "debit")}

_SHOPS = (
    "静安小笼包",
    "徐汇便利店",
    "闵行五金店",
    "浦东水果店",
    "长宁面馆",
    "黄浦花店",
    "杨浦书店",
    "虹口茶叶铺",
    "普陀药房",
    "宝山烘焙坊",
    "嘉定修车铺",
    "松江咖啡馆",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙"


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the Luhn check digit (bank card numbers carry one)."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return prefix + str((10 - total % 10) % 10)


@dataclass
class Shop:
    """One merchant with its terminal(s) and settlement cards."""

    merchant_id: str
    name: str
    holder: str
    phone: str
    protocol: str  # "mispos", "slip" (typed settlement slips, no link), "zvt" or "poslink"
    terminal_id: str
    account: str  # the settlement card in force at the start (full number: demo bank side only)
    bank: str  # "camt" (bank A) or "ccb" (bank B)
    new_account: str
    fault: str | None = None
    fault_day: int = 0
    fault_date: date | None = None  # the trading day the fault starts on
    rate_bp: int = 60  # 0.60 % on every card type

    @property
    def replaced_terminal_id(self) -> str:
        """The id of the terminal that replaces this one (for replacement faults)."""
        return self.terminal_id[:-1] + str((int(self.terminal_id[-1]) + 5) % 10)


@dataclass
class World:
    """The whole script."""

    seed: int
    days: list[date]
    shops: list[Shop]
    rng: random.Random = field(repr=False)

    def close_at(self, day: date) -> datetime:
        """When each day's End-of-Day happens (aware, local time)."""
        return datetime.combine(day, CLOSE_TIME, TZ)

    def sales(self, shop: Shop, day: date) -> list[tuple[str, int]]:
        """The day's sales of ``shop``: (bucket, amount in fen).

        Shanghai shops sell in the China buckets by :data:`CHINA_MIX`; the international shops
        take foreign visitors' cards under their protocol's own bucket names.
        """
        rng = random.Random(f"{self.seed}:{shop.merchant_id}:{day.isoformat()}")
        count = rng.randint(4, 12)
        if shop.protocol in INTERNATIONAL_BUCKETS:
            names = INTERNATIONAL_BUCKETS[shop.protocol]
            return [(rng.choice(names), rng.randrange(20000, 380000)) for _ in range(count)]
        names = [name for name, _, _, _ in CHINA_MIX]
        weights = [share for _, share, _, _ in CHINA_MIX]
        ranges = {name: (low, high) for name, _, low, high in CHINA_MIX}
        sales = []
        for name in rng.choices(names, weights, k=count):
            sales.append((name, rng.randrange(*ranges[name])))
        return sales


def build_world(terminals: int, days: int, seed: int, today: date) -> World:
    """Cast ``terminals`` shops trading for ``days`` days up to yesterday, faults spread over them.

    :raises ValueError: fewer than 2 terminals or days
    """
    if terminals < 2 or days < 4:
        raise ValueError("the demo needs at least 2 terminals and 4 days")
    rng = random.Random(seed)
    first = today - timedelta(days=days)
    trading = [first + timedelta(days=i) for i in range(days)]
    kinds = list(FAULTS)
    shops = []
    for index in range(terminals):
        protocol, name = INTERNATIONAL.get(index, ("mispos", _SHOPS[index % len(_SHOPS)]))
        shop = Shop(
            merchant_id=f"M{index + 1:04d}",
            name=name + ("" if index < len(_SHOPS) else f"{index}"),
            holder=_SURNAMES[index % len(_SURNAMES)] + "小" + "明红军华"[index % 4],
            phone=f"1380000{index + 1:04d}",
            protocol=protocol,
            terminal_id=f"{52500001 + index * 10}",
            account=luhn_complete(f"621700{seed % 1000:03d}{index:03d}1000" + "1"),
            bank="camt" if index % 2 == 0 else "ccb",
            new_account=luhn_complete(f"622202{seed % 1000:03d}{index:03d}2000" + "2"),
        )
        # Faults go to every shop but one (a clean control); the replacement fault needs a
        # terminal that numbers its own batches (MIS-POS, POSLink).
        if index < min(len(kinds), terminals - 1):
            shop.fault = kinds[index]
            shop.fault_day = days // 2 + rng.randint(-1, 1)
        if shop.fault in SLIP_FAULTS and index not in INTERNATIONAL:
            shop.protocol = "slip"
        shops.append(shop)
    _give_replacement_fault_to_numbering_terminal(shops)
    for shop in shops:
        if shop.fault is not None:
            shop.fault_date = trading[shop.fault_day]
    return World(seed, trading, shops, rng)


def _give_replacement_fault_to_numbering_terminal(shops: list[Shop]) -> None:
    holder = next((s for s in shops if s.fault == "final_batch_not_uploaded"), None)
    if holder is None or holder.protocol in ("mispos", "poslink"):
        return
    swap = next(
        (
            s
            for s in shops
            if s.protocol in ("mispos", "poslink") and s.fault not in ("aggregated",)
        ),
        None,
    )
    if swap is not None:
        holder.fault, swap.fault = swap.fault, holder.fault
        holder.fault_day, swap.fault_day = swap.fault_day, holder.fault_day

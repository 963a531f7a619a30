"""``settleguard demo``: a fortnight of trading, card changes, replacements and faults, end to end.

Everything a real deployment has runs here, on embedded defaults: a broker, the collector (SQLite
store, ingest worker, web app under waitress), simulated terminals on real pseudo-terminals, and
one real agent per terminal that enrolls with a one-time token and syncs signed records over
MQTT. An acquirer/bank model then pays what the terminals sold, with faults injected, and
writes real statement files that go through the normal importers. Reconciliation runs on what
the collector received, and its findings are compared with what was injected.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from settleguard.agent import enroll as agent_enroll
from settleguard.agent.card_change import CardChangeRequest, build_card_change
from settleguard.agent.config import AgentConfig
from settleguard.agent.home import AgentHome, agent_home
from settleguard.agent.keys import load_or_create_key
from settleguard.agent.recorder import heartbeat_record, open_outbox, seal_heartbeat
from settleguard.agent.replace import Replacement, ReplaceState
from settleguard.agent.slip_entry import SlipEntry, merge_rows
from settleguard.agent.sync import SyncLink
from settleguard.agent.technician import LinkTerminals, OutboxAdapter, close_and_store, store_record
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.ingest.worker import run_worker
from settleguard.collector.merchants import COLUMNS as MERCHANT_COLUMNS
from settleguard.collector.merchants import import_merchants, set_account_status
from settleguard.collector.reconcile import load_calendar
from settleguard.collector.reconcile.store import reconcile
from settleguard.collector.statements.importer import import_file
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import get_store
from settleguard.collector.web.read_models import money_at_risk
from settleguard.demo import files
from settleguard.demo.bank import (
    ACQUIRER,
    CardTimeline,
    contract,
    control_shop,
    settle,
    trap_findings,
)
from settleguard.demo.services import Broker, WebServer, start_broker, start_web, wait_for
from settleguard.demo.world import TZ, Shop, World, build_world
from settleguard.privacy import scan_path
from settleguard.protocol.records import BatchSummary
from settleguard.simulator.runner import RunningSimulator, start_on_pty
from settleguard.simulator.scenario import Scenario

MARKER = ".settleguard-demo"
Progress = Callable[[str], None]


@dataclass
class DemoOptions:
    """What ``settleguard demo`` was asked to do."""

    terminals: int = 12
    days: int = 14
    seed: int = 7
    broker: str | None = None
    workdir: Path = Path("settleguard-demo")
    today: date | None = None


@dataclass
class DemoResult:
    """The end of the run: what was injected, what was found, and where to look."""

    injected: dict[str, int]
    detected: dict[str, int]
    false_positives: int
    sms_sent: int
    money_at_risk: int
    records: int
    privacy_hits: int
    broker: str
    seconds: float
    details: list[dict[str, Any]] = field(default_factory=list)
    #: open, due gaps whose SMS wait because their due date lies outside the working calendar
    sms_held: int = 0
    dashboard: str | None = None
    login: tuple[str, str] | None = None
    #: the collector's instance folder (point the CLI at it with SETTLEGUARD_INSTANCE_PATH)
    instance: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` object."""
        return {
            "injected": self.injected,
            "detected": self.detected,
            "false_positives": self.false_positives,
            "sms_sent": self.sms_sent,
            "sms_held": self.sms_held,
            "dashboard": self.dashboard,
            "instance": self.instance,
            "money_at_risk": self.money_at_risk,
            "records": self.records,
            "privacy_hits": self.privacy_hits,
            "broker": self.broker,
            "seconds": round(self.seconds, 1),
        }


def prepare_workdir(path: Path) -> Path:
    """Empty ``path`` for a new run; refuse a non-empty folder that is not ours."""
    path = path.resolve()
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise SystemExit(
                f"{path} exists and is not a settleguard demo folder; choose --workdir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by settleguard demo; removed by the next run\n")
    return path


class Demo:
    """One run. The public method is :meth:`run`; the rest are its steps, in order."""

    def __init__(self, options: DemoOptions, progress: Progress) -> None:
        self.options = options
        self.say = progress
        self.today = options.today or datetime.now(TZ).date()
        self.workdir = prepare_workdir(options.workdir)
        self.private = Path(tempfile.mkdtemp(prefix="settleguard-demo-bank-"))
        self.stop = threading.Event()
        self.sims: dict[str, RunningSimulator] = {}
        self.homes: dict[str, AgentHome] = {}
        self.batches: dict[str, list[BatchSummary]] = {}
        self.timelines: dict[str, CardTimeline] = {}
        self.lost_batches = 0
        self.broker: Broker | None = None
        self.web: WebServer | None = None
        self.worker: threading.Thread | None = None

    # -- set-up --------------------------------------------------------------------------
    def start_services(self, port: int = 0) -> None:
        instance = self.workdir / "collector"
        # The app (and its URL rules) is built before any other thread runs: werkzeug compiles
        # rules with the ast module, which CPython 3.11 cannot use from two threads at once
        # ("AST constructor recursion depth mismatch", CPython gh-106905).
        self.app = create_app(
            {
                "INSTANCE_PATH": str(instance),
                "DATABASE_URL": f"sqlite:///{instance / 'collector.db'}",
                "SMS_URL": f"file://{self.workdir / 'sms' / 'outbox.jsonl'}",
            }
        )
        self.broker = start_broker(self.workdir, self.options.broker)
        self.say(f"broker: {self.broker.kind} on {self.broker.url}")
        self.app.config.update(
            MQTT_HOST=self.broker.host,
            MQTT_PORT=self.broker.port,
            MQTT_USERNAME=self.broker.collector_user,
            MQTT_PASSWORD=self.broker.collector_password,
            MQTT_PROTOCOL=self.broker.protocol,
            BROKER_PID_FILE=str(self.broker.pid_file) if self.broker.pid_file else None,
        )
        if self.broker.password_file:  # approve and revoke rewrite the broker's own passwd
            self.app.config["BROKER_DIR"] = str(self.broker.password_file.parent)
        write_instance_settings(instance, self.app.config)
        self.store = get_store(self.app)
        self.store.migrate()
        self.keys, _ = init_keys(Path(self.app.config["KEYS_DIR"]))
        plain = {k: v for k, v in self.app.config.items() if isinstance(v, str | int | float)}
        ready = threading.Event()
        self.worker = threading.Thread(
            target=run_worker, args=(plain, self.stop, self.keys, ready), name="ingest", daemon=True
        )
        self.worker.start()
        if not ready.wait(30):
            raise RuntimeError("the ingest worker did not subscribe within 30 s")
        self.web = start_web(self.app, port)
        self.say(f"collector: SQLite store, ingest worker subscribed, web on {self.web.url}")

    def import_merchants(self, world: World) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(MERCHANT_COLUMNS)
        start = (world.days[0] - timedelta(days=30)).isoformat()
        control = control_shop(world.shops)
        for shop in world.shops:
            cycle, fees = contract(shop, control)
            writer.writerow(
                [
                    shop.merchant_id,
                    shop.name,
                    shop.phone,
                    "zh-CN",
                    cycle,
                    "23:00",
                    "Asia/Shanghai",
                    fees,
                    shop.account,
                    shop.holder,
                    start,
                    ACQUIRER,
                ]
            )
        # The merchant file holds full account numbers: it stays outside the demo folder.
        counts = import_merchants(
            self.store, out.getvalue().encode(), account_hmac=self.keys.account_hmac, actor="demo"
        )
        self.say(f"merchants: {counts['merchants']} imported with their settlement accounts")

    def start_terminals(self, world: World) -> None:
        for shop in world.shops:
            if shop.protocol != "slip":  # a slip shop's terminal has no link: nothing to run
                scenario = Scenario(
                    terminal_id=shop.terminal_id,
                    merchant_id=shop.merchant_id,
                    currency="156",
                    buckets=[],
                )
                self.sims[shop.merchant_id] = start_on_pty(shop.protocol, scenario)
            home = agent_home(self.workdir / "agents" / shop.merchant_id)
            self.homes[shop.merchant_id] = home
            token = enrollment.issue_token(
                self.store, shop.merchant_id, ttl_s=3600, sealing_public=self.keys.sealing_public
            )
            state = agent_enroll.enroll(home, self.web.url if self.web else "", token)
            enrollment.approve(self.store, state["agent_id"], actor="demo-operator")
        if self.broker and self.broker.password_file:
            enrollment.sync_broker_passwords(
                self.store,
                self.broker.password_file,
                collector_user=self.broker.collector_user,
                pid_file=self.broker.pid_file,
            )
        kinds = Counter(s.protocol for s in world.shops)
        self.say(
            f"terminals: {kinds['mispos']} MIS-POS, {kinds['zvt']} ZVT and {kinds['poslink']} "
            f"POSLink on real ptys, {kinds['slip']} without a link (typed slips); "
            f"{len(world.shops)} agents enrolled with one-time tokens and approved"
        )

    # -- trading -------------------------------------------------------------------------
    def trade(self, world: World) -> None:
        """Every shop trades every day and closes its batch through its agent, in parallel."""
        self.say(f"trading: {len(world.days)} days from {world.days[0]} to {world.days[-1]}")
        done = Counter[str]()
        lock = threading.Lock()

        def shop_days(shop: Shop) -> None:
            self.batches[shop.merchant_id] = []
            for index, day in enumerate(world.days):
                self._trading_day(world, shop, index, day)
                with lock:
                    done["closes"] += 1
                    if done["closes"] % max(1, len(world.shops) * 2) == 0:
                        total = len(world.shops) * len(world.days)
                        self.say(f"  {done['closes']}/{total} batches closed")

        with ThreadPoolExecutor(max_workers=min(16, len(world.shops))) as pool:
            list(pool.map(shop_days, world.shops))

    def _trading_day(self, world: World, shop: Shop, index: int, day: date) -> None:
        home = self.homes[shop.merchant_id]
        if shop.protocol == "slip":
            self._typed_slip(world, shop, home, index, day)
            return
        sim = self.sims[shop.merchant_id]
        change_day = {
            "paid_to_old_account": 2,
            "change_pending_unpaid": 2,
            "change_rejected": 3,
            "returned_name_mismatch": 4,
        }.get(shop.fault or "")
        if change_day is not None and index == shop.fault_day - change_day:
            self._card_change(shop, home, day)
        for bucket, amount in world.sales(shop, day):
            sim.scenario.add_sale(bucket, amount)
        closed_at = _utc(world.close_at(day))
        if shop.fault == "final_batch_not_uploaded" and index == shop.fault_day:
            self._replace_terminal(shop, home, closed_at, lose_final_batch=True)
            return
        if shop.fault is None and index == len(world.days) // 2:
            # The control shops get a device replacement too, one that goes right.
            self._replace_terminal(shop, home, closed_at, lose_final_batch=False)
            return
        closed = close_and_store(
            home,
            sim.path,
            shop.protocol,
            password=sim.scenario.password,
            baud=None,
            terminal_id=shop.terminal_id,
            merchant_id=shop.merchant_id,
            closed_at=closed_at,
        )
        self.batches[shop.merchant_id].append(closed.summary)

    def _typed_slip(self, world: World, shop: Shop, home: AgentHome, index: int, day: date) -> None:
        """The merchant types the day's printed settlement slip (``agent slip``)."""
        sales = world.sales(shop, day)
        entry = SlipEntry(
            merchant_no=shop.merchant_id,
            terminal_no=shop.terminal_id,
            batch_no=index + 1,
            local_time=world.close_at(day).replace(tzinfo=None),
            rows=merge_rows([(bucket, 1, amount) for bucket, amount in sales]),
            stated_total=sum(amount for _, amount in sales),
        )
        entry.check()
        summary = entry.batch_summary()
        store_record(home, summary)
        self.batches[shop.merchant_id].append(summary)

    def _card_change(self, shop: Shop, home: AgentHome, day: date) -> None:
        requested = datetime.combine(day, dtime(10, 0), TZ)
        key = agent_enroll.load_enrollment(home) or {}
        import base64

        change = build_card_change(
            CardChangeRequest(
                merchant_id=shop.merchant_id,
                holder_name=shop.holder,
                bank="中国建设银行",
                requested_at=_utc(requested),
                old_account_masked="****" + shop.account[-4:],
            ),
            shop.new_account,
            base64.b64decode(key["collector_public_key"]),
        )
        store_record(home, change)
        decision = {
            "paid_to_old_account": ("under_review", 1),
            "change_pending_unpaid": ("under_review", 1),
            "change_rejected": ("rejected", 2),
            "returned_name_mismatch": ("active", 2),
        }[shop.fault or ""]
        self.timelines[shop.merchant_id] = CardTimeline(
            requested, decision[0], requested + timedelta(days=decision[1])
        )

    def _replace_terminal(
        self, shop: Shop, home: AgentHome, closed_at: str, *, lose_final_batch: bool
    ) -> None:
        """``agent replace`` on site: close the old batch, bind the new terminal, record it."""
        old = self.sims[shop.merchant_id]
        new_id = shop.replaced_terminal_id
        new = start_on_pty(shop.protocol, Scenario(terminal_id=new_id, currency="156", buckets=[]))
        outbox = OutboxAdapter(home)
        replacement = Replacement(
            home=home.root,
            terminals=LinkTerminals(
                old.scenario.password, None, {old.path: shop.terminal_id, new.path: new_id}
            ),
            outbox=outbox,
            now=lambda: closed_at,
            say=lambda message: None,
            confirm_swap=lambda state: new.path,
        )
        state = replacement.run(
            ReplaceState(
                merchant_id=shop.merchant_id, old_port=old.path, old_protocol=shop.protocol
            )
        )
        (home.root / "replace.json").rename(home.root / f"replace-{state.replaced_seq}.json")
        self.batches[shop.merchant_id].append(self._stored_batch(home, state.final_batch_seq))
        if lose_final_batch:
            # The fault: the final batch never reaches the collector (the box's storage was
            # swapped with the old terminal before it synced). The acquirer got it from the
            # terminal itself, so it is still paid.
            with open_outbox(home) as box, box.transaction() as conn:
                conn.execute("DELETE FROM outbox WHERE seq = ?", (state.final_batch_seq,))
            self.lost_batches += 1
        self._switch_terminal(shop, old, new, new_id)

    def _switch_terminal(
        self, shop: Shop, old: RunningSimulator, new: RunningSimulator, new_id: str
    ) -> None:
        old.stop()
        self.sims[shop.merchant_id] = new
        shop.terminal_id = new_id

    @staticmethod
    def _stored_batch(home: AgentHome, seq: int | None) -> BatchSummary:
        from settleguard.protocol.envelope import read_header
        from settleguard.protocol.records import record_from_body

        with open_outbox(home) as box:
            payload = box.conn.execute(
                "SELECT payload FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()[0]
        summary = record_from_body(
            "batch_summary", json.loads(read_header(bytes(payload)).signed_bytes)["body"]
        )
        assert isinstance(summary, BatchSummary)
        return summary

    # -- sync ----------------------------------------------------------------------------
    def sync(self) -> int:
        """Every agent flushes its outbox over MQTT and waits for the collector's acks."""
        total = 0
        for merchant_id, home in self.homes.items():
            config = AgentConfig()
            target = agent_enroll.broker_target(home, config)
            if target is None:
                raise RuntimeError(f"agent of {merchant_id} has no broker after enrollment")
            with open_outbox(home) as outbox:
                key = load_or_create_key(home)
                link = SyncLink(outbox, key, target, config.sync)
                result = link.flush(120)
                # then a heartbeat, as `agent run` sends them: the agents page shows its depth
                beat = heartbeat_record(outbox, link_state="connected", terminal_id=None)
                sealed = seal_heartbeat(key, beat, outbox.stats().next_seq - 1)
                link.flush(30, heartbeat=lambda sealed=sealed: sealed)
            if not result.complete or result.rejected:
                raise RuntimeError(
                    f"agent of {merchant_id}: {result.pending} records unsent, "
                    f"{result.rejected} rejected by the collector"
                )
            total += result.acked
        self.say(f"sync: {total} signed records delivered over MQTT and acked by the collector")
        return total

    def operator_decisions(self) -> None:
        """The acquirer's review of each card change, as an operator records it."""
        for merchant_id, timeline in self.timelines.items():
            row = wait_for(
                lambda m=merchant_id: self.store.query_one(
                    "SELECT id FROM settlement_accounts WHERE merchant_id = ?"
                    " AND status IN ('requested', 'under_review') ORDER BY id DESC",
                    (m,),
                ),
                30,
                f"the card change of {merchant_id} to be stored",
            )
            set_account_status(
                self.store,
                row["id"],
                "under_review",
                actor="demo-operator",
                at=timeline.requested_at + timedelta(hours=2),
            )
            if timeline.decision != "under_review":
                set_account_status(
                    self.store,
                    row["id"],
                    timeline.decision,
                    actor="demo-operator",
                    at=timeline.decided_at,
                )
        self.say(f"operators: {len(self.timelines)} settlement-card changes reviewed")

    # -- the outside world ---------------------------------------------------------------
    def bank_files(self, world: World) -> dict[str, Any]:
        """The acquirer pays, the banks book; their files go through the normal importers."""
        calendar = load_calendar()
        outcome = settle(
            world.shops, self.batches, self.timelines, calendar, self.today, world.sales
        )
        start, end = world.days[0], self.today
        written: list[tuple[str, bytes, str | None]] = []
        for shop in world.shops:
            accounts = [shop.account]
            if shop.merchant_id in self.timelines:
                accounts.append(shop.new_account)
            for account in accounts:
                name, data = files.bank_export(
                    account,
                    owner=shop.holder,
                    opening=500000,
                    start=start,
                    end=end,
                    credits=outcome.credits.get(account, []),
                    message_id=f"STMT{end:%Y%m%d}{account[-6:]}",
                )
                written.append((name, data, shop.merchant_id))
        written.append(
            (
                "acquirer-payouts.csv",
                files.payout_csv(generated_at=f"{end} 08:00:00", lines=outcome.payouts),
                None,
            )
        )
        credits = 0
        for name, data, merchant_id in written:
            # Bank files carry full account numbers: they live outside the demo folder and
            # are deleted after import; the store keeps masked numbers and keyed hashes.
            (self.private / name).write_bytes(data)
            # the exports print the own card masked: the operator names the merchant
            result = import_file(
                self.store,
                data,
                filename=name,
                account_hmac=self.keys.account_hmac,
                account_of=merchant_id,
                open_account=self.keys.open_card_change,
                actor="demo",
            )
            credits += int(result.summary.get("credits", 0))
        self.say(
            f"bank: {len(written) - 1} statements (工商银行 CSV, 建设银行 .xls, …) and an acquirer "
            f"payout file imported; {credits} credits"
        )
        return {"outcome": outcome}

    def close(self) -> None:
        """Stop every simulator, the worker, the web server and the broker."""
        for sim in self.sims.values():
            sim.stop()
        self.stop.set()
        if self.worker:
            self.worker.join(10)
        if self.web:
            self.web.stop()
        if self.broker:
            self.broker.stop()
        shutil.rmtree(self.private, ignore_errors=True)


#: The settings a ``settleguard collector …`` command needs to work on the demo's instance.
CLI_SETTINGS = (
    "BROKER_DIR",
    "BROKER_PID_FILE",
    "MQTT_HOST",
    "MQTT_PORT",
    "MQTT_USERNAME",
    "MQTT_PASSWORD",
    "MQTT_PROTOCOL",
)


def write_instance_settings(instance: Path, config: Any) -> Path:
    """Write the demo's ``collector.toml`` (mode 0600: it holds the broker password), so the
    CLI pointed at the instance (``SETTLEGUARD_INSTANCE_PATH``) approves into the demo's broker.
    """
    lines = [f"{key} = {json.dumps(config[key])}" for key in CLI_SETTINGS if config.get(key)]
    path = instance / "collector.toml"
    instance.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("# written by settleguard demo\n" + "\n".join(lines) + "\n")
    return path


def scan_apart(root: Path, known: list[str]) -> list[Any]:
    """:func:`scan_path` in a process of its own.

    The scan reads the live SQLite files byte by byte. Closing any file descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's included; another process (the
    CLI pointed at the demo's instance) would then take the demo's database for unused,
    checkpoint it and delete the WAL under the demo's open connections.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(scan_path, root, known).result()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def findings(
    store: Any, world: World, outcome: Any, lost: dict[str, int]
) -> tuple[dict[str, int], dict[str, int], int, int, list[dict[str, Any]]]:
    """Compare what reconciliation found with what was injected, shop by shop.

    A gap counts once per batch it covers (a duplicate credit or a missing upload once per gap).
    Anything found beyond what a shop's fault explains is a false positive.
    """
    expected = Counter(outcome.expected)
    for merchant_id, count in lost.items():
        expected[(merchant_id, "BATCH_NOT_UPLOADED")] += count
    found: Counter[tuple[str, str]] = Counter()
    at_risk = money_at_risk(store)  # the dashboard overview's figure, by the same definition
    for gap in store.query(
        "SELECT merchant_id, category, amount, batch_ids FROM gaps WHERE status = 'open'"
    ):
        batches = json.loads(gap["batch_ids"] or "[]")
        weight = (
            1
            if gap["category"] in ("DUPLICATE_CREDIT", "BATCH_NOT_UPLOADED")
            else max(1, len(batches))
        )
        found[(gap["merchant_id"], gap["category"])] += weight
    aggregated = store.query(
        "SELECT merchant_id, count(*) AS n FROM matches WHERE rule = 'aggregated' GROUP BY merchant_id"
    )
    injected = Counter[str]()
    detected = Counter[str]()
    for (_, category), count in expected.items():
        injected[category] += count
    false_positives = 0
    for (merchant_id, category), count in found.items():
        hit = min(count, expected.get((merchant_id, category), 0))
        detected[category] += hit
        false_positives += count - hit
    agg_injected = outcome.injected.get("aggregated_credit", 0)
    if agg_injected:
        injected["aggregated_credit"] = agg_injected
        detected["aggregated_credit"] = min(agg_injected, sum(int(r["n"]) for r in aggregated))
    open_gaps = store.query(
        "SELECT merchant_id, category, batch_ids, evidence FROM gaps WHERE status = 'open'"
    )
    for row in open_gaps:
        row["batch_ids"] = json.loads(row["batch_ids"] or "[]")
        row["evidence"] = json.loads(row["evidence"] or "{}")
    for trap, (laid, handled) in trap_findings(open_gaps, outcome).items():
        injected[trap], detected[trap] = laid, handled
    details = [
        {
            "merchant_id": s.merchant_id,
            "fault": s.fault,
            "protocol": s.protocol,
            "found": {c: n for (m, c), n in found.items() if m == s.merchant_id},
        }
        for s in world.shops
    ]
    return (
        dict(sorted(injected.items())),
        dict(sorted(detected.items())),
        false_positives,
        at_risk,
        details,
    )


def run_demo(
    options: DemoOptions, progress: Progress, *, keep_running: bool = False, port: int = 0
) -> tuple[DemoResult, Demo]:
    """Run the whole demo; with ``keep_running`` the services stay up for the dashboard."""
    started = time.monotonic()
    demo = Demo(options, progress)
    try:
        demo.start_services(port if keep_running else 0)
        world = build_world(options.terminals, options.days, options.seed, demo.today)
        demo.import_merchants(world)
        demo.start_terminals(world)
        demo.trade(world)
        records = demo.sync()
        demo.operator_decisions()
        outcome = demo.bank_files(world)["outcome"]
        report = reconcile(demo.store, full=True, now=datetime.now(UTC))
        progress(f"reconciliation: {report.merchants} merchants, {report.batches} batches")
        lost = {s.merchant_id: 1 for s in world.shops if s.fault == "final_batch_not_uploaded"}
        injected, detected, false_positives, at_risk, details = findings(
            demo.store, world, outcome, lost
        )
        sms, held = send_alerts(demo, progress)
        hits = scan_apart(
            demo.workdir, [n for s in world.shops for n in (s.account, s.new_account)]
        )
        result = DemoResult(
            injected,
            detected,
            false_positives,
            sms,
            at_risk,
            records,
            len(hits),
            demo.broker.kind if demo.broker else "none",
            time.monotonic() - started,
            details,
            sms_held=held,
            instance=str(Path(demo.app.instance_path).resolve()),
        )
        if keep_running:
            result.dashboard = demo.web.url if demo.web else None
            result.login = create_login(demo)
        else:
            demo.close()
        return result, demo
    except BaseException:
        demo.close()
        raise


def send_alerts(demo: Demo, progress: Progress) -> tuple[int, int]:
    """Plan the SMS the open gaps call for and send them through the ``file://`` gateway.

    Returns the SMS sent and the gaps held because the working calendar does not cover their
    due dates (the run then says so).

    Quiet hours (21:00-08:00 in the merchant's timezone) defer messages. When the demo runs
    during them, it dispatches at the next 08:00 instead, as the dispatcher service would.
    """
    from settleguard.collector.alerts.dispatcher import dispatch_due, recover_interrupted
    from settleguard.collector.alerts.planner import plan_alerts
    from settleguard.collector.alerts.policy import AlertPolicy
    from settleguard.collector.alerts.providers import gateway_from_url
    from settleguard.collector.alerts.store import AlertStore

    policy = AlertPolicy()
    now = datetime.now(UTC)
    local = now.astimezone(TZ)
    if local.time() >= policy.quiet_start or local.time() < policy.quiet_end:
        morning = local.date() + timedelta(days=1 if local.time() >= policy.quiet_start else 0)
        now = datetime.combine(morning, policy.quiet_end, TZ).astimezone(UTC)
        progress(
            f"alerts: quiet hours in Asia/Shanghai; dispatching as at {now.astimezone(TZ):%m-%d %H:%M}"
        )
    alerts = AlertStore(demo.store)
    planned = plan_alerts(demo.store, now, policy, alert_store=alerts)
    gateway = gateway_from_url(demo.app.config["SMS_URL"])
    try:
        recover_interrupted(alerts, gateway, now)
        sent = 0
        while True:
            report = dispatch_due(alerts, gateway, now, policy)
            sent += len(report.sent)
            if not report.sent:
                break
    finally:
        gateway.close()
    progress(
        f"alerts: {len(planned.queued)} SMS queued for {planned.considered} open gaps, {sent} sent "
        f"to {demo.workdir / 'sms' / 'outbox.jsonl'}"
    )
    if planned.held:
        progress(
            f"alerts: {len(planned.held)} gaps held: their due dates lie outside the working "
            "calendar; add the next year's public holidays (docs/reconciliation.md)"
        )
    return sent, len(planned.held)


def create_login(demo: Demo) -> tuple[str, str]:
    """An operator login for the dashboard (the password exists only in this run's output)."""
    from settleguard.collector.web.users import add_user

    password = secrets.token_urlsafe(12)
    add_user(demo.store, "demo", "operator", password, actor="demo")
    return "demo", password

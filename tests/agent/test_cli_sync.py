"""The sync-side commands end to end: init, status, export, enroll (HTTP double), sync, run."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from settleguard.agent.cli import agent as agent_group
from settleguard.agent.config import AgentConfig, SyncSettings, load_config
from settleguard.agent.daemon import run
from settleguard.agent.errors import UsageError
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey, load_or_create_key, rotate_key
from settleguard.agent.recorder import record
from settleguard.agent.status import status
from settleguard.protocol.enroll_token import bind_token
from settleguard.protocol.envelope import decode_bundle, verify_and_parse

from tests.agent.ackdouble import AckDouble
from tests.agent.conftest import AGENT_PASSWORD, sample_record
from tests.helpers.mosquitto import Broker, free_port, wait_until


def invoke(home: AgentHome, *args: str) -> Any:
    return CliRunner().invoke(agent_group, [*args, "--home", str(home.root)])


def test_init_writes_a_commented_config_that_loads_to_defaults(home: AgentHome) -> None:
    result = invoke(home, "init")
    assert result.exit_code == 0, result.output
    text = home.config_path.read_text()
    assert "# window = 500" in text and "[outbox]" in text
    assert load_config(home.config_path) == AgentConfig()
    assert "agent id a-k" in result.output


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\nwindw = 3\n")
    with pytest.raises(UsageError, match=r"\[sync\] unknown setting 'windw'"):
        load_config(path)
    path.write_text("[outbox]\ndisk_budget_mb = 'big'\n")
    with pytest.raises(UsageError, match="disk_budget_mb must be float"):
        load_config(path)
    path.write_text("[sync\n")
    with pytest.raises(UsageError, match="line 1"):
        load_config(path)


def test_key_file_is_private_and_id_is_stable(home: AgentHome) -> None:
    key = load_or_create_key(home)
    (pem,) = home.keys_dir.glob("*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert key.agent_id == f"a-{key.key_id}"
    announcement = rotate_key(home)
    rotated = load_or_create_key(home)
    assert rotated.agent_id == key.agent_id and rotated.key_id != key.key_id
    assert announcement["old_key_id"] == key.key_id
    # the old key signed the announcement in the collector's format
    message = b"settleguard/v1 rotate\n" + key.agent_id.encode() + b"\n"
    key.private_key.public_key().verify(
        base64.b64decode(announcement["signature"]),
        message + base64.b64decode(announcement["public_key"]),
    )


def test_status_json_and_export_bundle(home: AgentHome, key: AgentKey, tmp_path: Path) -> None:
    for i in range(3):
        record(home, sample_record(i))
    result = invoke(home, "status", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["outbox"]["pending"] == 3 and info["outbox"]["oldest_age_s"] >= 0
    assert info["last_sync_at"] is None
    assert info["key"]["key_id"] == key.key_id and info["key"]["enrollment"] == "not_enrolled"
    assert info["broker"]["link_state"] == "not_running"
    assert info["terminal"]["terminal_id"] == "T0000001"
    out = tmp_path / "backlog.sgb"
    result = invoke(home, "export", "--out", str(out), "--json")
    assert json.loads(result.output)["records"] == 3
    payloads = decode_bundle(out.read_bytes())
    seqs = [verify_and_parse(p, key.private_key.public_key()).seq for p in payloads]
    assert seqs == [1, 2, 3]


def test_export_to_an_unwritable_place_is_a_storage_error(home: AgentHome) -> None:
    record(home, sample_record())
    result = invoke(home, "export", "--out", "/proc/no/such/dir/bundle")
    assert result.exit_code == 10
    assert "cannot write bundle" in result.output


SEALING_KEY = b"\x01" * 32
GOOD_TOKEN = bind_token("good-token", SEALING_KEY)


class CollectorDouble(BaseHTTPRequestHandler):
    """The collector's enrollment API contract (collector/web/enroll.py)."""

    answers: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, body))
        if self.path == "/api/v1/enroll" and body["token"] != GOOD_TOKEN:
            return self._send(400, {"error": "enrollment token unknown, already used or expired"})
        return self._send(201, {**self.answers, "agent_id": body.get("agent_id")})

    def do_GET(self) -> None:
        self.requests.append((self.path, {"authorization": self.headers["Authorization"]}))
        self._send(200, {"status": "approved"})

    def _send(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector_url(broker: Broker, key: AgentKey) -> Iterator[str]:
    CollectorDouble.requests = []
    CollectorDouble.answers = {
        "merchant_id": "m-100",
        "key_id": key.key_id,
        "status": "pending",
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker.port,
            "username": key.agent_id,
            "password": AGENT_PASSWORD,
            "protocol": 5,
        },
        "collector_public_key": base64.b64encode(SEALING_KEY).decode(),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), CollectorDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_enroll_offline_first_then_sync(
    home: AgentHome, key: AgentKey, collector_url: str, ack_double: AckDouble
) -> None:
    record(home, sample_record(1))  # recorded before enrollment, under the fixed id
    away = f"http://127.0.0.1:{free_port()}"
    result = invoke(home, "enroll", "--collector", away, "--token", GOOD_TOKEN)
    assert result.exit_code == 13 and "cannot reach collector" in result.output
    state = json.loads(home.enrollment_path.read_text())
    assert state["status"] == "queued"
    state["collector"] = collector_url  # the collector is back (as `run` would find it)
    home.enrollment_path.write_text(json.dumps(state))
    from settleguard.agent.enroll import retry_pending

    state = retry_pending(home)
    assert state is not None and state["status"] == "pending"
    stored = home.enrollment_path
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["broker"]["password"] == AGENT_PASSWORD
    path, body = CollectorDouble.requests[0]
    assert (path, body["agent_id"], body["public_key"]) == (
        "/api/v1/enroll",
        key.agent_id,
        key.public_b64,
    )
    result = invoke(home, "sync", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"acked": 1, "rejected": 0, "pending": 0}
    assert ack_double.accepted[(key.agent_id, 1)] == 1


def test_pending_agent_polls_its_status_with_its_own_credentials(
    home: AgentHome, key: AgentKey, collector_url: str
) -> None:
    from settleguard.agent.enroll import retry_pending

    result = invoke(home, "enroll", "--collector", collector_url, "--token", GOOD_TOKEN)
    assert result.exit_code == 0, result.output
    CollectorDouble.requests.clear()
    state = retry_pending(home)
    assert state is not None and state["status"] == "approved"
    [(path, headers)] = CollectorDouble.requests
    assert path == f"/api/v1/agents/{key.agent_id}/status"
    scheme, _, pair = headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(pair).decode()) == (
        "Basic",
        f"{key.agent_id}:{AGENT_PASSWORD}",
    )


def test_enroll_refused_token_is_exit_12(home: AgentHome, collector_url: str) -> None:
    result = invoke(
        home, "enroll", "--collector", collector_url, "--token", bind_token("bad", SEALING_KEY)
    )
    assert result.exit_code == 12
    assert "already used or expired" in result.output


@pytest.mark.parametrize(
    "url", ["http://192.0.2.10:5000", "http://collector.example", "ftp://127.0.0.1", "https://"]
)
def test_enroll_needs_https_off_loopback(home: AgentHome, url: str) -> None:
    result = invoke(home, "enroll", "--collector", url, "--token", GOOD_TOKEN)
    assert result.exit_code == 2, result.output
    assert "must start with https://" in result.output
    assert not home.enrollment_path.exists()  # not even queued for a later retry


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"])
def test_plain_http_is_accepted_on_loopback(host: str) -> None:
    from settleguard.agent.enroll import check_collector_url

    check_collector_url(f"http://{host}:5000")
    check_collector_url("https://collector.example")


def test_enroll_refuses_a_sealing_key_other_than_the_tokens(
    home: AgentHome, collector_url: str
) -> None:
    CollectorDouble.answers["collector_public_key"] = base64.b64encode(b"\x02" * 32).decode()
    result = invoke(home, "enroll", "--collector", collector_url, "--token", GOOD_TOKEN)
    assert result.exit_code == 12, result.output
    assert "sealing key that does not match the token" in result.output
    assert not home.enrollment_path.exists()


def test_enroll_refuses_a_token_without_the_collectors_fingerprint(
    home: AgentHome, collector_url: str
) -> None:
    result = invoke(home, "enroll", "--collector", collector_url, "--token", "good-token")
    assert result.exit_code == 2 and "does not name the collector's key" in result.output
    assert CollectorDouble.requests == [] and not home.enrollment_path.exists()


def test_status_says_approved_after_an_acked_sync(
    home: AgentHome, key: AgentKey, collector_url: str, ack_double: AckDouble
) -> None:
    from settleguard.agent.enroll import enroll

    enroll(home, collector_url, GOOD_TOKEN)  # the collector answers "pending"
    record(home, sample_record(1))
    assert "enrollment pending" in invoke(home, "status").output
    result = invoke(home, "sync", "--json")
    assert json.loads(result.output) == {"acked": 1, "rejected": 0, "pending": 0}
    text = invoke(home, "status").output
    assert "enrollment approved" in text, text


@pytest.mark.parametrize("on_demand", [False, True], ids=["persistent", "connect-on-demand"])
def test_daemon_syncs_heartbeats_and_follows_approval(
    home: AgentHome, key: AgentKey, collector_url: str, ack_double: AckDouble, on_demand: bool
) -> None:
    from settleguard.agent.enroll import enroll

    enroll(home, collector_url, GOOD_TOKEN)
    record(home, sample_record(1))
    config = AgentConfig(
        sync=SyncSettings(
            heartbeat_interval_s=0.2, connect_on_demand=on_demand, on_demand_interval_s=0.1
        )
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def run_daemon() -> None:
        try:
            run(home, config, stop=stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_daemon)
    thread.start()
    try:
        wait_until(lambda: ack_double.accepted[(key.agent_id, 1)] == 1, what="first record")
        record(home, sample_record(2))  # committed by another "process" while running
        wait_until(lambda: ack_double.accepted[(key.agent_id, 2)] == 1, what="second record")
        wait_until(lambda: len(ack_double.heartbeats) >= 2, what="heartbeats")
        wait_until(lambda: status(home, config)["key"]["enrollment"] == "approved")
    finally:
        stop.set()
        thread.join(10)
    assert not failures and not thread.is_alive()
    info = status(home, config)
    assert info["outbox"]["pending"] == 0 and info["last_sync_at"] is not None
    assert info["broker"]["link_state"] == "stopped"
    assert ack_double.heartbeats[-1][1]["agent_version"]


def test_scheduled_end_of_day_calls_the_hook_once_and_survives_a_refusal(
    home: AgentHome, key: AgentKey
) -> None:
    from datetime import datetime, timedelta

    from settleguard.agent.config import ScheduleSettings
    from settleguard.agent.daemon import Daemon
    from settleguard.agent.errors import TerminalAborted

    calls: list[int] = []

    def hook() -> None:
        calls.append(1)
        raise TerminalAborted("End-of-Day not possible", 0x77)

    config = AgentConfig(schedule=ScheduleSettings(end_of_day="23:59"))
    daemon = Daemon(home, config, end_of_day=hook)
    daemon.eod_at = datetime.now() - timedelta(seconds=1)  # due now
    stop = threading.Event()
    daemon.turn(stop)
    daemon.turn(stop)
    assert calls == [1]
    assert daemon.eod_at is not None and daemon.eod_at > datetime.now()
    assert "End-of-Day not possible" in (daemon.outbox.get_meta("last_error") or "")
    daemon.close()


def test_budget_alarm_shows_in_status_and_heartbeat(home: AgentHome, key: AgentKey) -> None:
    from settleguard.agent.errors import StorageError
    from settleguard.agent.recorder import heartbeat_record, open_outbox

    home.config_path.write_text("[outbox]\ndisk_budget_mb = 0.0001\n")
    config = load_config(home.config_path)
    with pytest.raises(StorageError, match="budget reached"):
        record(home, sample_record(), config=config)
    result = invoke(home, "status", "--json")
    assert "budget reached" in json.loads(result.output)["outbox"]["disk_alarm"]
    with open_outbox(home, config) as outbox:
        beat = heartbeat_record(outbox, link_state="offline", terminal_id=None)
    assert beat.disk_alarm is True

"""Our generated Mosquitto configuration, proven on a real broker."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from settleguard.collector.cli import collector as collector_group
from settleguard.collector.enrollment import broker
from settleguard.collector.ingest.mqtt_link import IngestLink, LinkError, LinkRefused, tls_context
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store

from tests.helpers.mosquitto import (
    Broker,
    free_port,
    mosquitto_process,
    running_broker,
    wait_until,
)
from tests.helpers.mqtt import MqttProbe
from tests.helpers.records import make_agent
from tests.helpers.tls import TestCA

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def two_agents(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a", "agent-b": "pw-b"}) as running:
        yield running


def test_config_has_the_required_settings(tmp_path: Path) -> None:
    files = broker.write_broker_config(
        tmp_path, port=1999, collector_password_hash=broker.hash_password("x")
    )
    text = files.config.read_text()
    for line in ("set_tcp_nodelay true", "allow_anonymous false", "password_file", "acl_file"):
        assert line in text
    acl = files.acl_file.read_text()
    assert "pattern write sg/v1/a/%u/rec" in acl and "pattern read sg/v1/a/%u/ack" in acl
    broker.check_config(files)


def test_our_hash_matches_mosquitto_passwd_format(tmp_path: Path) -> None:
    hashed = broker.hash_password("secret")
    assert broker.verify_password("secret", hashed)
    assert not broker.verify_password("wrong", hashed)
    assert hashed.startswith("$7$101$")


def test_anonymous_and_wrong_password_refused(two_agents: Broker) -> None:
    anonymous = MqttProbe.connect(two_agents.port, None, None)
    wrong = MqttProbe.connect(two_agents.port, "agent-a", "nope")
    good = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        assert not anonymous.connected and not wrong.connected
        assert good.connected
    finally:
        for probe in (anonymous, wrong, good):
            probe.close()


def test_agent_cannot_publish_as_another(two_agents: Broker) -> None:
    collector = MqttProbe.connect(two_agents.port, *two_agents.collector)
    agent_a = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        assert not collector.subscribe("sg/v1/a/+/rec")[0].is_failure
        agent_a.publish("sg/v1/a/agent-b/rec", b"forged")
        agent_a.publish("sg/v1/a/agent-a/rec", b"own")
        # same connection, in order: once "own" is in, "forged" would have been too
        collector.wait_for(lambda msgs: ("sg/v1/a/agent-a/rec", b"own") in msgs)
        assert collector.messages == [("sg/v1/a/agent-a/rec", b"own")]
    finally:
        collector.close()
        agent_a.close()


def test_agent_cannot_read_another_agents_acks(two_agents: Broker) -> None:
    collector = MqttProbe.connect(two_agents.port, *two_agents.collector)
    agent_a = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        agent_a.subscribe("sg/v1/a/agent-b/ack")
        agent_a.subscribe("sg/v1/a/+/ack")
        agent_a.subscribe("sg/v1/a/agent-a/ack")
        collector.publish("sg/v1/a/agent-b/ack", b"for b")
        collector.publish("sg/v1/a/agent-a/ack", b"for a")
        agent_a.wait_for(lambda msgs: any(p == b"for a" for _, p in msgs))
        assert all(payload == b"for a" for _, payload in agent_a.messages)
    finally:
        collector.close()
        agent_a.close()


def test_revoked_agent_cut_off(two_agents: Broker) -> None:
    before = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    before.close()
    assert before.connected
    two_agents.set_agents({"agent-b": "pw-b"})  # revocation rewrites passwd and SIGHUPs

    def refused() -> bool:
        probe = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
        probe.close()
        return not probe.connected

    from tests.helpers.mosquitto import wait_until

    wait_until(refused, what="the revoked agent to be refused")
    still = MqttProbe.connect(two_agents.port, "agent-b", "pw-b")
    still.close()
    assert still.connected


def _broker_config(runner: FlaskCliRunner, out: Path, port: int, *args: str):  # type: ignore[no-untyped-def]
    base = ["broker-config", "--out", str(out), "--port", str(port),
            "--collector-password", "collector-pw"]  # fmt: skip
    return runner.invoke(collector_group, [*base, *args])


@pytest.fixture
def broker_app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    """The collector app with BROKER_DIR in a folder any system user may traverse."""
    shared = Path(tempfile.mkdtemp(prefix="sg-broker-"))
    shared.chmod(0o755)
    application = create_app({
        "TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url, "BROKER_DIR": str(shared / "broker"),
        "MQTT_PASSWORD": "collector-pw",
    })  # fmt: skip
    get_store(application).migrate()
    yield application
    close_store(application)
    shutil.rmtree(shared, ignore_errors=True)


def test_approval_reaches_a_broker_that_drops_privileges(broker_app: Flask) -> None:
    """Started as root with ``user nobody``, Mosquitto re-reads passwd as nobody on SIGHUP:
    the rewritten file must stay readable by it, and approve must find the broker's pid."""
    if os.geteuid() != 0:
        pytest.skip("needs root: only a broker started as root drops to its run_as user")
    runner = broker_app.test_cli_runner()
    out, port = Path(broker_app.config["BROKER_DIR"]), free_port()
    pid_file = out / "run" / "mosquitto.pid"  # the default
    made = _broker_config(runner, out, port, "--run-as", "nobody")
    assert made.exit_code == 0, made.output
    nobody = pwd.getpwnam("nobody").pw_uid
    for written in ("passwd", "acl", "run"):
        assert (out / written).stat().st_uid == nobody
    assert "user nobody" in (out / "mosquitto.conf").read_text().splitlines()
    store = get_store(broker_app)
    agent = make_agent(store, "agent-p", approve=False)
    with mosquitto_process(out / "mosquitto.conf", port) as process:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="pid file")
        own = MqttProbe.connect(port, "collector", "collector-pw")  # ready for SIGHUP
        own.close()
        assert own.connected
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert f"Uid:\t{nobody}" in status  # it really dropped to nobody
        approved = runner.invoke(collector_group, ["agents", "approve", "agent-p"])
        assert approved.exit_code == 0, approved.output
        assert "updated and the broker reloaded" in approved.output
        assert (out / "passwd").stat().st_uid == nobody

        def agent_in() -> bool:
            probe = MqttProbe.connect(port, "agent-p", agent.password)
            probe.close()
            return probe.connected

        wait_until(agent_in, what="the approved agent to log in")
        own = MqttProbe.connect(port, "collector", "collector-pw")
        own.close()
        assert own.connected  # the collector's login survived the reload
        log = (out / "mosquitto.log").read_text()
        assert "Unable to open pwfile" not in log


def test_approve_without_a_running_broker_says_how_to_finish(broker_app: Flask) -> None:
    runner = broker_app.test_cli_runner()
    out = Path(broker_app.config["BROKER_DIR"])
    assert _broker_config(runner, out, free_port(), "--run-as", _me()).exit_code == 0
    make_agent(get_store(broker_app), "agent-q", approve=False)
    result = runner.invoke(collector_group, ["agents", "approve", "agent-q"])
    assert result.exit_code == 2
    assert f"broker password file {out.resolve() / 'passwd'} updated" in result.output
    assert "the broker was not reloaded (no running broker in pid file" in result.output
    assert "systemctl reload mosquitto" in result.output
    assert "agent-q:" in (out / "passwd").read_text()


def test_pid_file_goes_where_asked(tmp_path: Path, runner: FlaskCliRunner) -> None:
    made = _broker_config(runner, tmp_path / "b", 1883, "--pid-file", "/run/mosquitto/sg.pid")
    assert made.exit_code == 0, made.output
    conf = (tmp_path / "b" / "mosquitto.conf").read_text().splitlines()
    assert "pid_file /run/mosquitto/sg.pid" in conf
    assert broker.configured_pid_file(tmp_path / "b" / "mosquitto.conf") == Path(
        "/run/mosquitto/sg.pid"
    )
    unknown = _broker_config(runner, tmp_path / "c", 1883, "--run-as", "no-such-user-sg")
    assert unknown.exit_code == 1 and "no system user 'no-such-user-sg'" in unknown.output


def test_plain_tcp_on_a_public_address_is_warned(tmp_path: Path, runner: FlaskCliRunner) -> None:
    public = _broker_config(runner, tmp_path / "a", 1883, "--bind", "0.0.0.0")
    assert public.exit_code == 0
    assert "warning: plain-TCP listener on 0.0.0.0:1883" in public.output
    for bind in ("127.0.0.1", "::1", "localhost"):
        local = _broker_config(runner, tmp_path / bind, 1883, "--bind", bind)
        assert local.exit_code == 0 and "warning" not in local.output


def test_password_file_keeps_its_owner_group_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    broker.write_password_file(path, ("collector", broker.hash_password("c")), {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 0, grp.getgrnam("nogroup").gr_gid)
    before = path.stat()
    broker.write_password_file(path, ("collector", broker.hash_password("c")), {"a-1": "$7$x"})
    after = path.stat()
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        before.st_uid, before.st_gid, 0o640)  # fmt: skip
    assert after.st_ino != before.st_ino  # replaced atomically, not edited in place


def _frame(first: int, body: bytes) -> bytes:
    size, length = len(body), b""
    while True:
        size, digit = divmod(size, 128)
        length += bytes([digit | (0x80 if size else 0)])
        if not size:
            return bytes([first]) + length + body


def _text(value: str) -> bytes:
    return len(value.encode()).to_bytes(2, "big") + value.encode()


def _raw_publish_is_cut_off(port: int, user: str, password: str, size: int) -> bool:
    """Log in over a bare socket (MQTT 3.1.1), publish ``size`` bytes at QoS 0, and say whether
    the broker hung up on us."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        connect = _text("MQTT") + b"\x04\xc2\x00\x3c" + _text(f"raw-{user}") + _text(user)
        sock.sendall(_frame(0x10, connect + _text(password)))
        assert sock.recv(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
        try:
            sock.sendall(_frame(0x30, _text(f"sg/v1/a/{user}/rec") + b"x" * size))
            sock.sendall(_frame(0xC0, b""))  # PINGREQ: an open link answers PINGRESP
            return sock.recv(2) != b"\xd0\x00"
        except (ConnectionResetError, BrokenPipeError):
            return True


def test_broker_refuses_a_packet_over_max_packet_size(two_agents: Broker) -> None:
    conf = two_agents.files.config.read_text().splitlines()
    assert f"max_packet_size {broker.MAX_PACKET_SIZE}" in conf
    collector = MqttProbe.connect(two_agents.port, *two_agents.collector)
    try:
        assert not collector.subscribe("sg/v1/a/+/rec")[0].is_failure
        assert _raw_publish_is_cut_off(two_agents.port, "agent-a", "pw-a", broker.MAX_PACKET_SIZE)
        largest = 65536  # the largest record envelope the collector accepts
        assert not _raw_publish_is_cut_off(two_agents.port, "agent-b", "pw-b", largest)
        collector.wait_for(lambda msgs: any(t == "sg/v1/a/agent-b/rec" for t, _ in msgs))
        assert [(t, len(p)) for t, p in collector.messages] == [("sg/v1/a/agent-b/rec", largest)]
    finally:
        collector.close()


def test_revoked_agent_with_a_valid_certificate_cannot_connect(
    tmp_path: Path, runner: FlaskCliRunner
) -> None:
    """broker-config --require-certificate: the certificate opens TLS, the password file
    decides the login, so revoking (rewriting passwd + SIGHUP) shuts the agent out."""
    ca = TestCA.create(tmp_path / "pki", "test CA")
    server, agent_cert = ca.issue("broker", server=True), ca.issue("agent-c")
    out, port = tmp_path / "b", free_port()
    made = _broker_config(runner, out, port, "--tls-cafile", str(ca.cert), "--tls-certfile",
                          str(server.cert), "--tls-keyfile", str(server.key),
                          "--require-certificate", "--run-as", _me())  # fmt: skip
    assert made.exit_code == 0, made.output
    files = broker.BrokerFiles(out / "mosquitto.conf", out / "passwd", out / "acl")
    collector_line = (out / "passwd").read_text().strip().split(":", 1)
    agent_tls = tls_context(str(ca.cert), str(agent_cert.cert), str(agent_cert.key))

    def connect(password: str | None) -> IngestLink:
        link = IngestLink("127.0.0.1", port, client_id="agent-c", username="agent-c",
                          password=password, filters=["sg/v1/a/agent-c/ack"], tls=agent_tls)  # fmt: skip
        link.connect(5)
        return link

    broker.write_password_file(files.password_file, (collector_line[0], collector_line[1]),
                               {"agent-c": broker.hash_password("pw-c")})  # fmt: skip
    with mosquitto_process(files.config, port) as process:
        # a login first: Mosquitto listens before it handles SIGHUP
        wait_until(lambda: _login(connect, "pw-c") == "in", what="the approved agent")
        with pytest.raises(LinkRefused):
            connect(None)  # a certificate alone is no login
        broker.write_password_file(files.password_file, (collector_line[0], collector_line[1]), {})
        assert broker.reload_broker(pid=process.pid)
        wait_until(lambda: _login(connect, "pw-c") == "refused", what="the revoked agent refused")


def _login(connect, password: str) -> str:  # type: ignore[no-untyped-def]
    """``in``, ``refused`` (the broker said no) or ``unreachable`` (a reload may be under way)."""
    try:
        connect(password).close()
    except LinkRefused:
        return "refused"
    except LinkError:
        return "unreachable"
    return "in"


def _me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def test_run_as_without_root_says_who_must_read_passwd(
    tmp_path: Path, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4242)  # not root, and not nobody
    made = _broker_config(runner, tmp_path / "b", 1883, "--run-as", "nobody")
    assert made.exit_code == 0, made.output
    assert "warning: not root, so passwd and acl stay yours" in made.output
    assert f"chown nobody {(tmp_path / 'b' / 'passwd').resolve()}" in made.output


def test_a_rewrite_by_a_group_member_keeps_the_brokers_group(tmp_path: Path) -> None:
    """A collector that is not root cannot keep the file's owner, but keeps its group, so a
    ``root:<broker group>`` 0640 password file stays readable by the broker."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test runs the rewrite as nobody in group daemon")
    shared = Path(tempfile.mkdtemp(prefix="sg-passwd-"))
    try:
        shared.chmod(0o777)
        path = shared / "passwd"
        broker.write_password_file(path, ("collector", broker.hash_password("c")), {})
        nogroup, daemon = grp.getgrnam("nogroup").gr_gid, grp.getgrnam("daemon").gr_gid
        os.chown(path, 0, daemon)  # daemon stands for the broker's group
        path.chmod(0o640)
        child = os.fork()
        if child == 0:  # the child drops to nobody:nogroup, member of daemon, and rewrites
            status = 1
            try:
                os.setgroups([daemon])
                os.setgid(nogroup)
                os.setuid(pwd.getpwnam("nobody").pw_uid)
                broker.write_password_file(path, ("collector", "$7$x"), {})
                status = 0
            finally:
                os._exit(status)
        assert os.waitpid(child, 0)[1] == 0
        after = path.stat()
        assert (after.st_gid, stat.S_IMODE(after.st_mode)) == (daemon, 0o640)
        assert path.read_text() == "collector:$7$x\n"
    finally:
        shutil.rmtree(shared, ignore_errors=True)

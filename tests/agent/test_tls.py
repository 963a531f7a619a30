"""The agent's MQTT link over TLS against a real Mosquitto with a TLS listener.

A throw-away PKI is made per test (:mod:`tests.helpers.tls`): a CA that issues the broker's
certificate (SAN 127.0.0.1/localhost), the agent's client certificate (CN = ``agent_id``) and
the collector's (CN = ``collector``), and a second, rogue CA. The broker runs with the config
``collector.enrollment.broker.write_broker_config`` ships, its listener made TLS by ``TlsListener``; the
ack double (the collector's role) connects over the same TLS listener.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from settleguard.agent.cli import agent as agent_group
from settleguard.agent.config import load_config
from settleguard.agent.daemon import run
from settleguard.agent.errors import SyncError, UsageError
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import record
from settleguard.agent.status import status
from settleguard.agent.sync import BrokerTarget, SyncLink
from settleguard.collector.enrollment.broker import BrokerFiles, TlsListener, render_config

from tests.agent.ackdouble import AckDouble
from tests.agent.conftest import AGENT_PASSWORD
from tests.agent.samples import sample_record
from tests.helpers.mosquitto import Broker, running_broker, wait_until
from tests.helpers.tls import Issued, TestCA


@dataclass(frozen=True)
class Pki:
    ca: TestCA
    rogue: TestCA
    server: Issued
    agent: Issued  # CN = agent_id, from ca
    rogue_agent: Issued  # CN = agent_id, from the rogue CA
    collector: Issued  # CN = collector, from ca


@pytest.fixture
def pki(tmp_path: Path, key: AgentKey) -> Pki:
    ca = TestCA.create(tmp_path / "pki", "settleguard test CA")
    rogue = TestCA.create(tmp_path / "pki", "rogue CA")
    return Pki(
        ca=ca,
        rogue=rogue,
        server=ca.issue("broker", server=True),
        agent=ca.issue(key.agent_id),
        rogue_agent=rogue.issue(key.agent_id),
        collector=ca.issue("collector"),
    )


@contextmanager
def tls_broker(
    tmp_path: Path, key: AgentKey, pki: Pki, *, client_certs: bool
) -> Iterator[tuple[Broker, AckDouble]]:
    """A TLS-only broker (client certificates required if ``client_certs``) and the double."""
    listener = TlsListener(
        cafile=pki.ca.cert,
        certfile=pki.server.cert,
        keyfile=pki.server.key,
        require_certificate=client_certs,
    )
    agents = {key.agent_id: AGENT_PASSWORD}
    with running_broker(tmp_path / "broker", agents, tls=listener) as broker:
        context = ssl.create_default_context(cafile=pki.ca.cert)
        if client_certs:
            context.load_cert_chain(pki.collector.cert, pki.collector.key)
        user, password = broker.collector
        keys = {key.agent_id: key.private_key.public_key()}
        double = AckDouble(broker.port, user, password, keys, tls=context).start()
        try:
            yield broker, double
        finally:
            double.stop()


def write_config(home: AgentHome, port: int, **broker: str) -> None:
    lines = ["[broker]", f'url = "mqtts://127.0.0.1:{port}"']
    lines += [f'{name} = "{value}"' for name, value in broker.items()]
    lines += ["[sync]", "backoff_min_s = 0.2", "backoff_max_s = 0.5"]
    home.config_path.write_text("\n".join(lines) + "\n")


def invoke(home: AgentHome, *args: str) -> Any:
    return CliRunner().invoke(agent_group, [*args, "--home", str(home.root)])


def test_agent_syncs_over_tls_with_username_and_password(
    tmp_path: Path, home: AgentHome, key: AgentKey, pki: Pki
) -> None:
    with tls_broker(tmp_path, key, pki, client_certs=False) as (broker, double):
        for i in range(25):
            record(home, sample_record(i))
        write_config(
            home,
            broker.port,
            username=key.agent_id,
            password=AGENT_PASSWORD,
            ca_file=str(pki.ca.cert),
        )
        result = invoke(home, "sync", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"acked": 25, "rejected": 0, "pending": 0}
        assert sorted(seq for _, seq in double.accepted) == list(range(1, 26))
        info = status(home, load_config(home.config_path))
        assert info["outbox"]["pending"] == 0 and info["last_sync_at"] is not None
        assert info["broker"]["url"] == f"mqtts://127.0.0.1:{broker.port}"


def test_agent_logs_in_with_its_client_certificate_and_password(
    tmp_path: Path, home: AgentHome, key: AgentKey, pki: Pki
) -> None:
    with tls_broker(tmp_path, key, pki, client_certs=True) as (broker, double):
        for i in range(5):
            record(home, sample_record(i))
        # the certificate opens the TLS listener; the password file still decides the login
        write_config(
            home,
            broker.port,
            username=key.agent_id,
            password=AGENT_PASSWORD,
            ca_file=str(pki.ca.cert),
            cert_file=str(pki.agent.cert),
            key_file=str(pki.agent.key),
        )
        result = invoke(home, "sync", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"acked": 5, "rejected": 0, "pending": 0}
        assert sum(double.accepted.values()) == 5


def test_certificate_from_another_ca_is_refused_and_shown_in_status_and_log(
    tmp_path: Path,
    home: AgentHome,
    key: AgentKey,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tls_broker(tmp_path, key, pki, client_certs=True) as (broker, double):
        record(home, sample_record(1))
        write_config(
            home,
            broker.port,
            ca_file=str(pki.ca.cert),
            cert_file=str(pki.rogue_agent.cert),
            key_file=str(pki.rogue_agent.key),
        )
        config = load_config(home.config_path)
        stop = threading.Event()
        caplog.set_level(logging.WARNING, logger="settleguard.agent")
        thread = threading.Thread(target=run, args=(home, config), kwargs={"stop": stop})
        thread.start()
        try:
            error = wait_until(
                lambda: status(home, config)["broker"]["last_error"], what="a link error"
            )
        finally:
            stop.set()
            thread.join(10)
        assert "does not trust our client certificate" in error
        assert str(pki.rogue_agent.cert) in error and "issued by CN=rogue CA" in error
        assert any("does not trust our client certificate" in m for m in caplog.messages)
        text = invoke(home, "status").output
        assert "error    TLS: broker" in text
        assert status(home, config)["outbox"]["pending"] == 1
        assert not double.deliveries


def test_client_without_a_certificate_is_refused_with_a_hint(
    tmp_path: Path, home: AgentHome, key: AgentKey, pki: Pki
) -> None:
    with tls_broker(tmp_path, key, pki, client_certs=True) as (broker, double):
        record(home, sample_record(1))
        write_config(
            home,
            broker.port,
            username=key.agent_id,
            password=AGENT_PASSWORD,
            ca_file=str(pki.ca.cert),
        )
        result = invoke(home, "sync")
        assert result.exit_code == 11
        assert "requires a client certificate; set [broker] cert_file and key_file" in (
            result.output
        )
        assert len(result.output.strip().splitlines()) == 1  # one line, no paho noise
        assert not double.deliveries


def test_wrong_ca_on_the_agent_fails_verification(
    tmp_path: Path, home: AgentHome, key: AgentKey, pki: Pki
) -> None:
    with tls_broker(tmp_path, key, pki, client_certs=False) as (broker, double):
        box = Outbox(home.outbox_path)
        record(home, sample_record(1))
        target = BrokerTarget.from_url(
            f"mqtts://127.0.0.1:{broker.port}",
            username=key.agent_id,
            password=AGENT_PASSWORD,
            ca_file=str(pki.rogue.cert),
        )
        link = SyncLink(box, key, target, load_config(home.config_path).sync)
        with pytest.raises(SyncError) as raised:
            link.connect(timeout=5)
        message = raised.value.message
        assert f"broker 127.0.0.1:{broker.port} presented a certificate" in message
        assert f"does not verify against ca_file {pki.rogue.cert}" in message
        assert link.last_error == message and not link.connected
        assert box.stats().pending == 1 and not double.deliveries
        box.close()


def test_mqtts_to_a_plain_listener_says_so(
    home: AgentHome, key: AgentKey, broker: Broker, pki: Pki
) -> None:
    box = Outbox(home.outbox_path)
    target = BrokerTarget.from_url(
        f"mqtts://127.0.0.1:{broker.port}",  # the plain-TCP broker of tests/agent/conftest.py
        username=key.agent_id,
        password=AGENT_PASSWORD,
        ca_file=str(pki.ca.cert),
    )
    link = SyncLink(box, key, target, load_config(home.config_path).sync)
    with pytest.raises(SyncError, match=f"broker 127.0.0.1:{broker.port}.*TLS"):
        link.connect(timeout=5)
    box.close()


def test_tls_file_mistakes_name_the_setting(
    tmp_path: Path, home: AgentHome, key: AgentKey, pki: Pki
) -> None:
    box = Outbox(home.outbox_path)

    def link(url: str = "mqtts://127.0.0.1:8883", **files: str) -> SyncLink:
        target = BrokerTarget.from_url(url, username=key.agent_id, password="pw", **files)
        return SyncLink(box, key, target, load_config(home.config_path).sync)

    missing = str(tmp_path / "nope.crt")
    with pytest.raises(UsageError, match=rf"\[broker\] ca_file {missing}: cannot load"):
        link(ca_file=missing)
    with pytest.raises(UsageError, match=r"cert_file .* / key_file .*: cannot load"):
        link(cert_file=str(pki.agent.cert), key_file=str(pki.rogue_agent.key))  # not its key
    with pytest.raises(UsageError, match="key_file is set but cert_file is not"):
        link(key_file=str(pki.agent.key))
    with pytest.raises(UsageError, match=r"plain mqtt://.*use mqtts://"):
        link("mqtt://127.0.0.1:1883", ca_file=str(pki.ca.cert))
    box.close()


def test_broker_config_tls_listener_lines(tmp_path: Path) -> None:
    files = BrokerFiles(tmp_path / "m.conf", tmp_path / "passwd", tmp_path / "acl")
    tls = TlsListener(
        Path("/etc/sg/ca.crt"),
        Path("/etc/sg/broker.crt"),
        Path("/etc/sg/broker.key"),
        require_certificate=True,
    )
    lines = render_config(files, port=8883, tls=tls).splitlines()
    at = lines.index("listener 8883 127.0.0.1")
    assert lines[at + 1 : at + 6] == [
        "protocol mqtt",
        "cafile /etc/sg/ca.crt",
        "certfile /etc/sg/broker.crt",
        "keyfile /etc/sg/broker.key",
        "require_certificate true",
    ]
    assert "use_identity_as_username" not in "\n".join(lines)  # no login without passwd
    plain = render_config(files, port=1883)
    assert "cafile" not in plain and "require_certificate" not in plain
    assert "set_tcp_nodelay true" in plain and "set_tcp_nodelay true" in "\n".join(lines)

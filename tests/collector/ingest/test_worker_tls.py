"""The ingest worker over TLS (mqtts) against a real Mosquitto TLS listener, and broker-config's
TLS options. PKI per test from :mod:`tests.helpers.tls`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from settleguard.collector.cli import collector as collector_group
from settleguard.collector.enrollment.broker import TlsListener
from settleguard.collector.ingest.mqtt_link import IngestLink, LinkError, tls_context
from settleguard.collector.ingest.worker import IngestWorker, WorkerError
from settleguard.collector.store import Store
from settleguard.protocol.acks import decode_acks
from settleguard.protocol.topics import ack_topic

from tests.helpers.mosquitto import running_broker, wait_until
from tests.helpers.records import batch, make_agent
from tests.helpers.tls import TestCA

pytestmark = pytest.mark.mosquitto


@pytest.mark.parametrize("client_certs", [False, True], ids=["password", "certificate"])
def test_worker_ingests_over_tls(tmp_path: Path, store: Store, client_certs: bool) -> None:
    ca = TestCA.create(tmp_path / "pki", "settleguard test CA")
    server, collector_cert = ca.issue("broker", server=True), ca.issue("collector")
    agent = make_agent(store, "agent-tls")
    agent_cert = ca.issue(agent.agent_id)
    listener = TlsListener(cafile=ca.cert, certfile=server.cert, keyfile=server.key,
                           require_certificate=client_certs)  # fmt: skip
    with running_broker(tmp_path / "b", {agent.agent_id: agent.password}, tls=listener) as b:
        settings = {"port": b.port, "username": b.collector[0], "password": b.collector[1],
                    "tls_ca_file": str(ca.cert)}  # fmt: skip
        if client_certs:
            settings |= {"tls_cert_file": str(collector_cert.cert),
                         "tls_key_file": str(collector_cert.key)}  # fmt: skip
        worker = IngestWorker(store, settings)
        worker.start()
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        agent_tls = tls_context(str(ca.cert), *((str(agent_cert.cert), str(agent_cert.key))
                                                if client_certs else ()))  # fmt: skip
        link = IngestLink("127.0.0.1", b.port, client_id=agent.agent_id,
                          filters=[ack_topic(agent.agent_id)], username=agent.agent_id,
                          password=agent.password, tls=agent_tls)  # fmt: skip
        try:
            link.connect(5)
            for seq in (1, 2):
                link.publish(agent.topic, agent.seal(batch(batch_no=seq), seq))
            assert link.flush()
            acks = []
            wait_until(lambda: acks.extend(link.receive(5, 0.2)) or len(acks) >= 1)
            assert [(a.seq, a.status) for m in acks for a in decode_acks(m.payload)[1]] == [
                (1, "accepted"), (2, "accepted")]  # fmt: skip
            assert store.count("batch_summaries") == 2
        finally:
            link.close()
            stop.set()
            thread.join(10)
            worker.stop()


def test_tls_refusals_are_clear(tmp_path: Path, store: Store) -> None:
    ca, rogue = (TestCA.create(tmp_path / "pki", n) for n in ("test CA", "rogue CA"))
    server = ca.issue("broker", server=True)
    listener = TlsListener(cafile=ca.cert, certfile=server.cert, keyfile=server.key,
                           require_certificate=True)  # fmt: skip
    with running_broker(tmp_path / "b", tls=listener) as b:
        wrong_ca = {"port": b.port, "username": "collector", "tls_ca_file": str(rogue.cert)}
        with pytest.raises(WorkerError, match=r"TLS handshake .* failed: .*certificate verify"):
            IngestWorker(store, wrong_ca).start(5)
        no_cert = {"port": b.port, "username": "collector", "tls_ca_file": str(ca.cert)}
        with pytest.raises(WorkerError):
            IngestWorker(store, no_cert).start(5)
        plain = IngestLink("127.0.0.1", b.port, client_id="x", filters=["x"], username="c")
        with pytest.raises(LinkError):  # plain MQTT on a TLS port: the broker hangs up
            plain.connect(3)
    with pytest.raises(WorkerError, match="cannot load the TLS files"):
        IngestWorker(store, {"port": 1, "tls_ca_file": str(tmp_path / "missing.pem")})


def test_broker_config_tls_options(tmp_path: Path, runner: FlaskCliRunner) -> None:
    ca = TestCA.create(tmp_path / "pki", "test CA")
    server = ca.issue("broker", server=True)
    out = tmp_path / "broker"
    args = ["broker-config", "--out", str(out), "--collector-password", "pw",
            "--tls-cafile", str(ca.cert), "--tls-certfile", str(server.cert),
            "--tls-keyfile", str(server.key), "--require-certificate"]  # fmt: skip
    result = runner.invoke(collector_group, args)
    assert result.exit_code == 0, result.output
    text = (out / "mosquitto.conf").read_text()
    for line in (f"cafile {ca.cert.resolve()}", f"certfile {server.cert.resolve()}",
                 "require_certificate true"):  # fmt: skip
        assert line in text.splitlines()
    assert "use_identity_as_username" not in text  # the broker keeps checking passwords
    partial = runner.invoke(collector_group, args[:7])
    assert partial.exit_code != 0 and "needs all three" in partial.output

"""A running daemon signs its heartbeats with the current key, also after a key rotation."""

from __future__ import annotations

from settleguard.agent.config import AgentConfig
from settleguard.agent.daemon import Daemon
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey, load_or_create_key, rotate_key
from settleguard.protocol.envelope import read_header


def test_heartbeat_after_rotation_is_signed_by_the_new_key(home: AgentHome, key: AgentKey) -> None:
    daemon = Daemon(home, AgentConfig())
    try:
        assert read_header(daemon._heartbeat("connected")).key_id == key.key_id
        rotate_key(home)
        new = load_or_create_key(home)
        assert new.key_id != key.key_id
        assert read_header(daemon._heartbeat("connected")).key_id == new.key_id
    finally:
        daemon.outbox.close()

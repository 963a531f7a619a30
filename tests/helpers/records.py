"""Factories for signed test records and enrolled agents (reusable by any test).

``agent = make_agent(store, "agent-a")`` enrolls and approves an agent in a collector store and
returns a :class:`TestAgent` that can ``seal(record, seq)`` payloads for it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.store import Store
from settleguard.protocol.envelope import DOMAIN, key_id_for, seal_envelope
from settleguard.protocol.records import BatchSummary, Bucket, Heartbeat, Record
from settleguard.protocol.topics import hb_topic, rec_topic


def batch(
    terminal_id: str = "T0001",
    batch_no: int = 1,
    amount: int = 12_345,
    closed_at: str | None = None,
) -> BatchSummary:
    """A small valid ZVT batch summary (amounts in minor units)."""
    return BatchSummary(
        terminal_id=terminal_id,
        merchant_id="M100",
        batch_no=batch_no,
        closed_at=closed_at or f"2026-03-{1 + batch_no % 28:02d}T22:00:00Z",
        terminal_local_time=None,
        currency="978",
        buckets=(Bucket("girocard", sale_count=3, sale_amount=amount),),
        receipt_start=1,
        receipt_end=3,
        host_reconciled=True,
        protocol="zvt",
    )


def heartbeat() -> Heartbeat:
    """A valid heartbeat."""
    return Heartbeat(
        outbox_pending=2,
        oldest_unacked_age_s=5,
        link_state="up",
        agent_version="0.1.0",
        terminal_id="T0001",
        agent_time="2026-03-01T10:00:00Z",
    )


@dataclass
class TestAgent:
    """An enrolled agent: its id, key and broker password."""

    __test__ = False
    agent_id: str
    key: Ed25519PrivateKey
    password: str

    @property
    def topic(self) -> str:
        return rec_topic(self.agent_id)

    @property
    def hb_topic(self) -> str:
        return hb_topic(self.agent_id)

    @property
    def public_raw(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign_raw(self, signed_bytes: bytes) -> bytes:
        """A payload of any ``signed_bytes`` under a valid signature of this agent (to reach
        the checks after the signature with bytes ``seal`` would not make)."""
        key_id = key_id_for(self.key.public_key())
        signature = base64.urlsafe_b64encode(self.key.sign(DOMAIN + signed_bytes)).rstrip(b"=")
        return b"SG1 " + key_id.encode() + b" " + signature + b"\n" + signed_bytes

    def seal(self, record: Record, seq: int, *, agent_id: str | None = None) -> bytes:
        """Sign ``record`` as envelope number ``seq``."""
        return seal_envelope(
            self.key,
            record_type=record.RECORD_TYPE,
            agent_id=agent_id or self.agent_id,
            seq=seq,
            created_at="2026-03-01T10:00:00.000Z",
            body=record.to_body(),
        )


def make_agent(
    store: Store, agent_id: str, *, merchant: str = "M100", approve: bool = True
) -> TestAgent:
    """Enroll (and by default approve) an agent with a fresh key."""
    key = Ed25519PrivateKey.generate()
    token = enrollment.issue_token(store, merchant, ttl_s=600)
    agent = TestAgent(agent_id, key, "")
    result = enrollment.enroll(store, token=token, public_key=agent.public_raw, agent_id=agent_id)
    agent.password = result.broker_password
    if approve:
        enrollment.approve(store, agent_id, actor="test")
    return agent

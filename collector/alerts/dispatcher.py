"""The dispatcher: sends what the planner queued, tracks receipts, escalates (see :mod:`.store`).

Exactly once per stage. The row is moved ``queued -> sending`` and committed *before* the gateway
is called. After a crash an alert found in ``sending`` is therefore one whose SMS may or may not
have left. SMPP and the HTTP providers offer no idempotency key, so we do **not** resend it:
:func:`recover_interrupted` asks the gateway whether it can find the message by our client
reference (the file gateway can); if not, the alert is escalated to an operator and stays in
``sending`` until the operator decides (:meth:`AlertStore.resolve_uncertain`). A lost SMS is
visible and recoverable by a person; a doubled one cannot be taken back. See docs/alerts.md.

Each alert goes to the gateway as its text (signature included, for free-text gateways) and as
its template call (for Aliyun and Tencent Cloud, which send only approved templates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from settleguard.collector.alerts.gateway import (
    GatewayUnavailable,
    SendRejected,
    SendUncertain,
    SmsGateway,
)
from settleguard.collector.alerts.policy import (
    AlertPolicy,
    AlertState,
    escalation_reason,
    limit_deferral,
    local_day_start,
    next_allowed,
)
from settleguard.collector.alerts.store import Alert, AlertStore

__all__ = ["DispatchReport", "dispatch_due", "recover_interrupted"]


@dataclass(slots=True)
class DispatchReport:
    """What one :func:`dispatch_due` pass did (alert ids per outcome)."""

    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    receipts: int = 0


def recover_interrupted(store: AlertStore, gateway: SmsGateway, now: datetime) -> list[int]:
    """At start-up: settle alerts left in ``sending`` by a crash, never by resending.

    :returns: ids escalated to an operator
    """
    escalated = []
    for alert in store.in_state(AlertState.SENDING):
        found = gateway.lookup(alert.client_ref)
        if found is not None:
            store.mark_sent(alert.id, found, now)
        elif alert.escalated_at is None:
            store.escalate(alert.id, "interrupted while sending; outcome unknown, not resent", now)
            escalated.append(alert.id)
    return escalated


def _send_one(
    store: AlertStore,
    gateway: SmsGateway,
    alert: Alert,
    now: datetime,
    policy: AlertPolicy,
    report: DispatchReport,
) -> None:
    allowed = next_allowed(now, alert.tz, policy)
    day = local_day_start(now, alert.tz)
    later = (
        allowed
        if allowed > now
        else limit_deferral(
            now,
            alert.tz,
            policy,
            store.sent_count(day, to_number=alert.to_number),
            store.sent_count(day, merchant_id=alert.merchant_id),
        )
    )
    if later is not None:
        store.defer(alert.id, later)
        report.deferred.append(alert.id)
        return
    if not store.claim(alert.id, now):
        return
    try:
        result = gateway.send(
            alert.to_number, alert.text, client_ref=alert.client_ref, template=alert.template
        )
    except GatewayUnavailable as exc:
        store.release(alert.id, now + policy.retry_after, str(exc))
        report.retry.append(alert.id)
    except SendRejected as exc:
        store.fail(alert.id, str(exc), now)
        report.failed.append(alert.id)
    except SendUncertain as exc:
        store.escalate(alert.id, f"send outcome unknown: {exc}", now, exc.accepted)
        report.uncertain.append(alert.id)
    else:
        store.mark_sent(alert.id, result, now)
        report.sent.append(alert.id)


def dispatch_due(
    store: AlertStore,
    gateway: SmsGateway,
    now: datetime,
    policy: AlertPolicy | None = None,
    limit: int = 100,
) -> DispatchReport:
    """Send what is due, collect receipts, and escalate what needs an operator.

    :param now: aware UTC time (passed in so tests and replays control the clock)
    """
    policy = policy or AlertPolicy()
    report = DispatchReport()
    for alert in store.due(now, limit):
        _send_one(store, gateway, alert, now, policy, report)
    for receipt in gateway.poll_receipts():
        report.receipts += int(store.record_receipt(receipt, now))
    report.finished = store.apply_receipts(now)
    for state in (AlertState.SENT, AlertState.FAILED, AlertState.EXPIRED):
        for alert in store.in_state(state):
            reason = escalation_reason(state, alert.sent_at, now, policy)
            if reason and alert.escalated_at is None:
                store.escalate(alert.id, reason, now)
                report.escalated.append(alert.id)
    return report

"""Every state-changing thing an operator can do, each written to the audit log.

Library first: the dashboard forms and the JSON API both call these. Each action reads the
row before, changes it, reads it after, and appends one ``audit_log`` line with who, what,
the target and ``{"before": …, "after": …}`` (the store stamps when).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from settleguard.collector import card_reviews
from settleguard.collector.audit import audit
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import KeyFileError, load_keys
from settleguard.collector.reconcile import store as recon_store
from settleguard.collector.statements.importer import ImportRejected, import_file
from settleguard.collector.store import Store, Tx


class ActionError(Exception):
    """An action cannot be done; ``status`` is the HTTP answer (404 missing, 409 wrong state)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_GAP_STATE = (
    "SELECT id, status, note, resolution, acknowledged_by, resolved_at FROM gaps WHERE id = ?"
)


def _gap_state(tx: Tx, gap_id: int) -> dict[str, Any]:
    row = tx.query_one(_GAP_STATE, (gap_id,))
    if row is None:
        raise ActionError(f"no gap {gap_id}", 404)
    return row


def acknowledge_gap(
    store: Store, gap_id: int, *, actor: str, note: str | None = None
) -> dict[str, Any]:
    """Acknowledge an open gap (someone is on it); it stays acknowledged across runs.

    :raises ActionError: no such gap (404), or it is not open (409)
    """
    with store.transaction() as tx:
        before = _gap_state(tx, gap_id)
        if before["status"] != "open":
            raise ActionError(f"gap {gap_id} is {before['status']}, not open")
        stamp = _now()
        # The same change as recon_store.acknowledge_gap, inside this transaction so the
        # before/after in the audit line cannot interleave with another operator's click.
        tx.execute(
            "UPDATE gaps SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?,"
            " note = COALESCE(?, note), updated_at = ? WHERE id = ? AND status = 'open'",
            (stamp, actor, note or None, stamp, gap_id),
        )
        after = _gap_state(tx, gap_id)
        audit(tx, actor, "gap.acknowledge", f"gap:{gap_id}", before, after)
    return after


_BLANK = " \t\r\n"


def resolve_gap(store: Store, gap_id: int, *, actor: str, note: str) -> dict[str, Any]:
    """Resolve a gap by hand with a note saying why (kept resolved by later runs).

    :raises ActionError: empty note (400), no such gap (404), already resolved (409)
    """
    note = note.strip(_BLANK)
    if not note:
        raise ActionError("a resolution needs a note saying why", 400)
    with store.transaction() as tx:
        before = _gap_state(tx, gap_id)
        if before["status"] == "resolved":
            raise ActionError(f"gap {gap_id} is resolved already")
        stamp = _now()
        tx.execute(
            "UPDATE gaps SET status = 'resolved', resolution = 'manual', resolved_at = ?,"
            " note = ?, updated_at = ? WHERE id = ?",
            (stamp, note, stamp, gap_id),
        )
        after = _gap_state(tx, gap_id)
        audit(tx, actor, "gap.resolve", f"gap:{gap_id}", before, after)
    return after


def resend_alert(store: Store, gap_id: int, *, actor: str) -> dict[str, Any]:
    """Queue the gap's latest SMS again as a new alert (the dispatcher sends it once).

    A new row with its own dedupe key, so the old one keeps its delivery history and a
    retry of this request cannot queue two copies in the same second.

    :raises ActionError: no such gap (404), no earlier alert to re-send (409)
    """
    with store.transaction() as tx:
        _gap_state(tx, gap_id)
        last = tx.query_one(
            "SELECT id, merchant_id, phone, locale, text, state, template, params FROM alerts"
            " WHERE gap_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (gap_id,),
        )
        if last is None:
            raise ActionError(f"gap {gap_id} has no alert to re-send yet")
        stamp = _now()
        new_id = tx.insert(
            "alerts",
            {
                "dedupe_key": f"resend:{gap_id}:{last['id']}:{stamp}",
                "gap_id": gap_id,
                "merchant_id": last["merchant_id"],
                "phone": last["phone"],
                "locale": last["locale"],
                "text": last["text"],
                "state": "queued",
                "template": last["template"],
                "params": last["params"],
            },
            ignore_conflict=True,
        )
        if new_id is None:
            raise ActionError("this alert was re-sent a moment ago")
        after = {"alert_id": new_id, "state": "queued"}
        audit(
            tx,
            actor,
            "alert.resend",
            f"gap:{gap_id}",
            {"alert_id": last["id"], "state": last["state"]},
            after,
        )
    return after


def _agent(store: Store, agent_id: str) -> dict[str, Any]:
    row = store.query_one(
        "SELECT agent_id, status, approved_at, revoked_at FROM agents WHERE agent_id = ?",
        (agent_id,),
    )
    if row is None:
        raise ActionError(f"no agent {agent_id}", 404)
    return row


def set_agent_status(
    app: Flask, store: Store, agent_id: str, status: str, *, actor: str
) -> dict[str, Any]:
    """Approve (``approved``) or revoke (``revoked``) an agent and refresh the broker logins.

    The answer's ``broker`` says whether the password file was written and the broker reloaded,
    and, when not, what is missing and how to finish.

    :raises ActionError: no such agent (404), approving a revoked agent (409)
    """
    before = _agent(store, agent_id)
    if status == "approved" and before["status"] == "revoked":
        raise ActionError(f"agent {agent_id} is revoked; it must enroll again")
    change = enrollment.approve if status == "approved" else enrollment.revoke
    change(store, agent_id, actor=actor)  # writes the audit line (before/after) with the change
    update = enrollment.update_broker(store, app.config)
    broker = {"written": update.written, "reloaded": update.reloaded, "missing": update.missing}
    return {**_agent(store, agent_id), "broker": broker}


#: The agent actions of the dashboard and the API, by the name in their URL.
AGENT_ACTIONS = ("approve", "revoke", "revoke-keys")


def agent_action(
    app: Flask, store: Store, agent_id: str, action: str, *, actor: str
) -> dict[str, Any]:
    """Run one of :data:`AGENT_ACTIONS` on an agent.

    ``revoke-keys`` ends the grace period of the agent's retired keys
    (:func:`collector.enrollment.service.revoke_retired_keys`): after a rotation away from a leaked key
    the old key signs nothing beyond the last seq the collector had seen at the rotation.

    :raises ActionError: no such agent or action (404), approving a revoked agent (409)
    """
    if action in ("approve", "revoke"):
        status = "approved" if action == "approve" else "revoked"
        return set_agent_status(app, store, agent_id, status, actor=actor)
    if action != "revoke-keys":
        raise ActionError(f"no agent action {action!r}", 404)
    row = _agent(store, agent_id)
    row["revoked_keys"] = enrollment.revoke_retired_keys(store, agent_id, actor=actor)
    return row


def upload_statement(
    app: Flask,
    store: Store,
    data: bytes,
    *,
    filename: str,
    actor: str,
    fmt: str = "auto",
    profile: str | None = None,
    account: str | None = None,
    account_of: str | None = None,
) -> dict[str, Any]:
    """Import an uploaded statement or payout file, then reconcile what it touched.

    ``account_of`` names the merchant whose registered account a masked export belongs to.

    :returns: ``{"import_id", "duplicate", "summary", "reconcile"}``, or with ``"error"`` when
        the file was rejected (the attempt is recorded and audited either way)
    :raises ActionError: the collector has no keys yet (500)
    """
    try:
        keys = load_keys(Path(app.config["KEYS_DIR"]), sealing_private=False)
    except KeyFileError as exc:
        raise ActionError(
            f"collector keys missing ({exc}); run 'settleguard collector keys init'", 500
        ) from exc
    try:
        result = import_file(
            store,
            data,
            filename=filename,
            account_hmac=keys.account_hmac,
            fmt=fmt,
            profile=profile or None,
            account=account or None,
            account_of=account_of or None,
            open_account=keys.open_card_change,
            actor=actor,
        )
    except ImportRejected as exc:
        outcome: dict[str, Any] = {"import_id": exc.import_id, "error": str(exc)}
        with store.transaction() as tx:
            audit(
                tx,
                actor,
                "import.rejected",
                f"import:{exc.import_id}",
                None,
                outcome,
                filename=filename,
            )
        return outcome
    report = None if result.duplicate else recon_store.reconcile(store).as_dict()
    outcome = {
        "import_id": result.import_id,
        "duplicate": result.duplicate,
        "summary": result.summary,
        "reconcile": report,
    }
    with store.transaction() as tx:
        audit(
            tx,
            actor,
            "import.upload",
            f"import:{result.import_id}",
            None,
            {"duplicate": result.duplicate, "summary": result.summary},
            filename=filename,
        )
    return outcome


def set_account_status(
    store: Store,
    account_id: int,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    reference: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Review a merchant's settlement-account change (:func:`collector.card_reviews.review_account`).

    :raises ActionError: no such account (404), unknown status (400), a move the review does
        not allow (409)
    """
    try:
        return card_reviews.review_account(
            store, account_id, status, actor=actor, note=note, reference=reference, at=at
        )
    except card_reviews.ReviewError as exc:
        raise ActionError(str(exc), exc.status) from exc


_ALERT_STATE = "SELECT id, state, sent_at, escalated_at, escalation_reason FROM alerts WHERE id = ?"
DECISIONS = {"went_out": True, "send_again": False}


def decide_uncertain_alert(
    store: Store, alert_id: int, decision: str, *, actor: str
) -> dict[str, Any]:
    """The operator's answer for an escalated SMS whose send was interrupted.

    ``went_out`` marks it sent (the merchant got it; never send it twice); ``send_again``
    queues it for the dispatcher. Both close the escalation via
    :meth:`collector.alerts.store.AlertStore.resolve_uncertain`.

    :param decision: ``went_out`` or ``send_again``
    :raises ActionError: unknown decision (400), no such alert (404), the alert is not
        stuck in ``sending`` (409: someone decided already, or it failed for good)
    """
    from settleguard.collector.alerts.store import AlertStore

    if decision not in DECISIONS:
        raise ActionError(f"decision must be one of {', '.join(DECISIONS)}", 400)
    before = store.query_one(_ALERT_STATE, (alert_id,))
    if before is None:
        raise ActionError(f"no alert {alert_id}", 404)
    try:
        AlertStore(store).resolve_uncertain(alert_id, DECISIONS[decision], datetime.now(UTC))
    except ValueError as exc:  # not in ``sending`` (any more): nothing changed
        raise ActionError(str(exc)) from exc
    after = store.query_one(_ALERT_STATE, (alert_id,)) or {}
    with store.transaction() as tx:
        audit(tx, actor, f"alert.{decision}", f"alert:{alert_id}", before, after)
    return after

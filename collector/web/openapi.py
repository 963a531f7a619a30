"""The OpenAPI 3.0 description served at ``/api/v1/openapi.json``.

Written by hand next to :mod:`collector.web.api` and checked against the live app by a
property-based run (schemathesis) in ``tests/collector/web/test_openapi.py``: every response
must match what is written here.
"""

from __future__ import annotations

from typing import Any

from settleguard.collector.reconcile.model import GAP_CATEGORIES

_NULLABLE_STR = {"type": "string", "nullable": True}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ITEM = {"type": "object", "additionalProperties": True}


def _items(next_after: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"items": {"type": "array", "items": _ITEM}}
    if next_after is not None:
        props["next_after"] = next_after
    return {"type": "object", "properties": props, "required": ["items"]}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "bad request",
        401: "no credentials",
        403: "role too low",
        404: "not found",
        409: "wrong state",
        422: "file rejected",
        500: "not configured",
    }
    return {str(code): _json(_ERROR, texts[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size")
_AFTER_ID = _query(
    "after",
    {"type": "integer", "minimum": 0, "maximum": 2**62},
    "the next_after of the previous page",
)
# Query text: at most 64 characters and no NUL (the API answers 400 to either).
_TEXT = {"type": "string", "maxLength": 64, "pattern": "^[^\\x00]*$"}
_CATEGORY = {"type": "string", "enum": ["", *GAP_CATEGORIES]}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_IDS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 200,
    "items": {"type": "string", "minLength": 1, "maxLength": 200},
}
_NOTE = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "[^ \\t\\r\\n]"}


def _read(
    summary: str, schema: dict[str, Any], params: list[dict[str, Any]], *extra: int
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": _json(schema), **_errors(400, 401, 403, *extra)},
        }
    }


def _action(
    summary: str, params: list[dict[str, Any]], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {"200": _json(_ITEM), **_errors(400, 401, 403, 404, 409)},
    }
    if body is not None:
        op["requestBody"] = {
            "required": "required" in body,
            "content": {"application/json": {"schema": body}},
        }
    return {"post": op}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI document as a dict."""
    gap_id = _path("gap_id", {"type": "integer", "minimum": 0, "maximum": 2**62})
    alert_id = _path("alert_id", {"type": "integer", "minimum": 0, "maximum": 2**62})
    agent_id = _path("agent_id", {"type": "string", "minLength": 1, "maxLength": 64})
    note = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 2000}}}
    hand_id = _path("hand_id", {"type": "integer", "minimum": 0, "maximum": 2**62})
    paths: dict[str, Any] = {
        "/merchants": _read(
            "Search merchants (keyset pages)",
            _items({"type": "string", "nullable": True}),
            [
                _query("q", _TEXT, "id prefix, name part or phone tail"),
                _query("status", {"type": "string", "enum": ["", "at_risk", "ok"]}),
                _query("category", _CATEGORY),
                _query("after", _TEXT),
                _LIMIT,
            ],
        ),
        "/merchants/{merchant_id}": _read(
            "A merchant with its timeline",
            _ITEM,
            [_path("merchant_id", {"type": "string", "minLength": 1, "maxLength": 64})],
            404,
        ),
        "/batches": _read(
            "Batch summaries, newest first",
            _items(_NULLABLE_INT),
            [_query("merchant_id", _TEXT), _AFTER_ID, _LIMIT],
        ),
        "/credits": _read("Bank credits, newest first", _items(_NULLABLE_INT), [_AFTER_ID, _LIMIT]),
        "/gaps": _read(
            "The gap queue (keyset pages)",
            _items(_NULLABLE_STR),
            [
                _query("sort", {"type": "string", "enum": ["money", "age"]}),
                _query("status", {"type": "string", "enum": ["open", "acknowledged", "resolved"]}),
                _query("category", _CATEGORY),
                _query("merchant_id", _TEXT),
                _query(
                    "after",
                    {"type": "string", "maxLength": 128},
                    "the next_after of the previous page (keyset)",
                ),
                _LIMIT,
            ],
        ),
        "/gaps/{gap_id}": _read("One gap with its evidence", _ITEM, [gap_id], 404),
        "/gaps/{gap_id}/acknowledge": _action("Acknowledge an open gap", [gap_id], note),
        "/gaps/{gap_id}/resolve": _action(
            "Resolve a gap with a note",
            [gap_id],
            {
                "type": "object",
                "required": ["note"],
                "properties": {
                    "note": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 2000,
                        "pattern": "[^ \\t\\r\\n]",
                    }
                },
            },
        ),
        "/gaps/{gap_id}/resend": _action("Queue the gap's SMS again", [gap_id]),
        "/gaps/{gap_id}/suggestions": _read(
            "Credits that may pay the gap, best first", _items(), [gap_id], 404
        ),
        "/gaps/{gap_id}/match": _action(
            "Match credits to the gap's batches by hand",
            [gap_id],
            {
                "type": "object",
                "required": ["credit_ids", "note"],
                "properties": {"credit_ids": _IDS, "note": _NOTE},
            },
        ),
        "/matches": _action(
            "Match credits to batches by hand",
            [],
            {
                "type": "object",
                "required": ["merchant_id", "batch_keys", "credit_ids", "note"],
                "properties": {
                    "merchant_id": _ID,
                    "batch_keys": _IDS,
                    "credit_ids": _IDS,
                    "note": _NOTE,
                },
            },
        ),
        "/matches/{hand_id}/undo": _action(
            "Undo a hand match or a split",
            [hand_id],
            {"type": "object", "required": ["note"], "properties": {"note": _NOTE}},
        ),
        "/credits/split": _action(
            "Split a credit into parts (fen) that add up to it",
            [],
            {
                "type": "object",
                "required": ["merchant_id", "credit_id", "amounts", "note"],
                "properties": {
                    "merchant_id": _ID,
                    "credit_id": _ID,
                    "note": _NOTE,
                    "amounts": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 100,
                        "items": {"type": "integer", "minimum": 1, "maximum": 10**15},
                    },
                },
            },
        ),
        "/accounts/{account_id}/status": _action(
            "Review a settlement-account change (under_review, active, rejected, retired)",
            [_path("account_id", {"type": "integer", "minimum": 0, "maximum": 2**62})],
            {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["under_review", "active", "rejected", "retired"],
                    },
                    "reference": {"type": "string", "maxLength": 64},
                    "date": {"type": "string", "format": "date"},
                    "note": {"type": "string", "maxLength": 2000},
                },
            },
        ),
        "/merchants/{merchant_id}/hand-matches": _read(
            "A merchant's hand matches and splits, newest first",
            _items(),
            [_path("merchant_id", {"type": "string", "minLength": 1, "maxLength": 64})],
            404,
        ),
        "/imports": {
            **_read("Statement imports, newest first", _items(), [_LIMIT]),
            "post": {
                "summary": "Upload a statement or payout file",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "format": {"type": "string"},
                                    "profile": {"type": "string"},
                                    "account": {"type": "string"},
                                    "account_of": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _json(_ITEM), **_errors(400, 401, 403, 422, 500)},
            },
        },
        "/agents": _read("Agents with enrollment and key state", _items(), []),
        "/agents/{agent_id}/approve": _action("Approve an enrolled agent", [agent_id]),
        "/agents/{agent_id}/revoke": _action("Revoke an agent", [agent_id]),
        "/agents/{agent_id}/revoke-keys": _action(
            "End the grace period of an agent's retired keys (after a rotation)", [agent_id]
        ),
        "/alerts": _read("The SMS log, newest first", _items(_NULLABLE_INT), [_AFTER_ID, _LIMIT]),
        "/escalations": _read(
            "SMS waiting for an operator's decision, oldest first",
            {**_items(), "properties": {**_items()["properties"], "count": {"type": "integer"}}},
            [_LIMIT],
        ),
        "/alerts/{alert_id}/went_out": _action(
            "An interrupted SMS did go out: mark it sent", [alert_id]
        ),
        "/alerts/{alert_id}/send_again": _action(
            "An interrupted SMS did not go out: queue it again", [alert_id]
        ),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "settleguard collector API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "settleguard collector tokens create",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "sg_session"},
            }
        },
        "security": [{"token": []}, {"session": []}],
        "paths": paths,
    }

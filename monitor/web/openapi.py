"""The OpenAPI 3.1 document of /api/v1, written as data beside `encode.py`, whose documents it
describes (`additionalProperties: false` everywhere, so a field added there and not here
fails the schema tests rather than drifting)."""

from __future__ import annotations

from typing import Any

from monitor import __version__
from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID
from monitor.core.phase import Phase
from monitor.core.views import Sort

__all__ = ["DOCUMENT"]

Schema = dict[str, Any]


def _null(kind: str | list[str], **extra: Any) -> Schema:
    kinds = [kind] if isinstance(kind, str) else kind
    return {"type": [*kinds, "null"], **extra}


def _obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    required = [name for name in properties if name not in optional]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


TIME = _null("string", format="date-time")
LABELS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer"}}
KEY = {
    "install_sid": {"type": "string", "pattern": INSTALL_SID.pattern},
    "exam_sid": {"type": "string", "pattern": EXAM_SID.pattern},
    "session_sid": {"type": "string", "pattern": SESSION_SID.pattern},
}
INTERVAL: Schema = {
    "description": "Poll interval override: seconds, or a duration such as 5m; null follows "
    "the session's phase.",
    "oneOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 999_999_999},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
        {"type": "null"},
    ],
}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": {"type": "string"},
            "field": {"type": "string"},
            "problems": _array({"type": "string"}),
        },
        optional=("field", "problems"),
    ),
    "Session": _obj(
        {
            **KEY,
            "labels": LABELS,
            "source": _null("string"),
            "seen": {"type": "boolean", "description": "False: every field below is unknown."},
            "status": _null("string"),
            "review_required": _null("boolean"),
            "reviewed": _null("boolean"),
            "review_by_date": TIME,
            "url": _null("string"),
            "phase": {"enum": [*map(str, Phase), None]},
            "overdue": _null("boolean"),
            "overdue_since": TIME,
            "lateness_seconds": _null("number"),
            "missing": {"type": "boolean"},
            "last_poll_at": TIME,
            "last_outcome": _null("string"),
        }
    ),
    "SessionPage": _obj(
        {
            "total": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 0},
            "items": _array(_ref("Session")),
        }
    ),
    "Delivery": _obj(
        {
            "event_id": {"type": "string"},
            "sink": {"type": "string"},
            "event_type": {"type": "string"},
            "state": {"enum": ["pending", "delivered", "dead"]},
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": _null("string"),
            "created_at": TIME,
            "delivered_at": TIME,
            "next_attempt_at": TIME,
        }
    ),
    "Transition": _obj(
        {
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "observed_at": TIME,
            "field": _null("string"),
            "previous": _null(["string", "boolean"]),
            "current": _null(["string", "boolean"]),
            "message": _null("string"),
            "deliveries": _array(_ref("Delivery")),
        }
    ),
    "History": _obj(
        {
            "session": {"oneOf": [_ref("Session"), {"type": "null"}]},
            "transitions": _array(_ref("Transition")),
            "deliveries": _array(_ref("Delivery")),
        }
    ),
    "SinkHealth": _obj(
        {
            "name": {"type": "string"},
            "state": {"type": "string"},
            "pending": {"type": "integer", "minimum": 0},
            "dead": {"type": "integer", "minimum": 0},
        }
    ),
    "ApiHealth": _obj(
        {
            "auth_failing": _null("boolean"),
            "breaker_open": _null("boolean"),
            "last_success": TIME,
            "token_expiry": TIME,
            "token_renews": _null("boolean"),
        }
    ),
    "Summary": _obj(
        {
            "at": {"type": "string", "format": "date-time"},
            "running": {"type": "boolean"},
            "watched": {"type": "integer", "minimum": 0},
            "unseen": {"type": "integer", "minimum": 0},
            "by_status": COUNTS,
            "by_phase": {"oneOf": [COUNTS, {"type": "null"}]},
            "pending": {"type": "integer", "minimum": 0},
            "overdue": {
                "type": "integer",
                "minimum": 0,
                "description": "With overdue_known false (sessions unseen) only a floor.",
            },
            "overdue_known": {"type": "boolean"},
            "due_soon": {"type": "integer", "minimum": 0},
            "oldest_overdue_seconds": _null("number"),
            "sinks": _array(_ref("SinkHealth")),
            "api": _ref("ApiHealth"),
            "oldest_pending_delivery": TIME,
        }
    ),
    "Watch": _obj(
        {**KEY, "labels": LABELS, "interval": _null("number"), "source": {"type": "string"}}
    ),
    "WatchPage": _obj(
        {
            "total": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 0},
            "items": _array(_ref("Watch")),
        }
    ),
    "WatchInput": _obj(
        {**KEY, "labels": LABELS, "interval": INTERVAL}, optional=("labels", "interval")
    ),
    "WatchPatch": _obj({"labels": LABELS, "interval": INTERVAL}, optional=("labels", "interval")),
    "WatchAdded": _obj({"created": {"type": "boolean"}, "watch": _ref("Watch")}),
    "WatchChanged": _obj({"watch": _ref("Watch")}),
    "WatchRemoved": _obj({"removed": _ref("Watch")}),
    "Imported": _obj({n: {"type": "integer", "minimum": 0} for n in ("added", "updated", "same")}),
    "OutboxEntry": _obj(
        {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "sink": {"type": "string"},
            "session_sid": _null("string"),
            "event_type": {"type": "string"},
            "state": {"enum": ["pending", "dead", "delivered"]},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": TIME,
            "next_attempt_at": TIME,
            "last_error": _null("string"),
        }
    ),
    "OutboxList": _obj({"items": _array(_ref("OutboxEntry"))}),
    "RetryInput": _obj(
        {
            "ids": {**_array({"type": "integer", "minimum": 1}), "maxItems": 1000},
            "sink": {"type": "string"},
            "all": {"type": "boolean"},
            "pending": {"type": "boolean", "description": "Make waiting rows due now instead."},
        },
        optional=("ids", "sink", "all", "pending"),
    ),
    "Retried": _obj(
        {"requeued": {"type": "integer", "minimum": 0}, "pending": {"type": "boolean"}}
    ),
}

ERRORS = {
    "400": "invalid parameter (the field is named)",
    "401": "missing or wrong bearer token",
    "403": "no admin token is configured: writes (or token reads) are disabled",
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(schema)}}}


def _op(
    summary: str, ok: str, *, status: str = "200", also: tuple[str, ...] = (), **more: Any
) -> dict[str, Any]:
    responses = {status: {"description": "OK", **_json(ok)}}
    for code in (*ERRORS, *also):
        responses[code] = {
            "description": ERRORS[code] if code in ERRORS else _ALSO[code],
            # A POST's 200 is a success too: the watch was there and is replaced.
            **_json(ok if code == "200" else "Error"),
        }
    return {"summary": summary, "responses": responses, **more}


_ALSO = {
    "200": "already watched: its labels, interval and source replaced",
    "404": "no such session, or not watched",
    "415": "wrong Content-Type",
    "422": "invalid body (the field is named)",
}


def _query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


SID_PARAM = {"name": "sid", "in": "path", "required": True, "schema": KEY["session_sid"]}
PAGING = [
    _query("limit", {"type": "integer", "minimum": 0, "maximum": 1000}),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}),
]
SESSION_FILTERS = [
    _query("phase", {"enum": list(map(str, Phase))}),
    _query("overdue", {"type": "boolean"}),
    _query("due_within", {"type": "string", "pattern": r"^\d{1,6}(s|m|h|d)?$"}, "e.g. 24h"),
    _query("status", {"type": "string"}, "case-insensitive"),
    {
        **_query(
            "label", _array({"type": "string", "pattern": "^[^:]+:.*$"}), "key:value, repeatable"
        ),
        "style": "form",
        "explode": True,
    },
    _query("q", {"type": "string"}, "substring of a SID or label value"),
    _query("sort", {"enum": list(map(str, Sort))}),
    *PAGING,
]


def _body(media: str, schema: Schema) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/summary": {"get": _op("Counts, overdue, due soon, sinks' and API health", "Summary")},
    "/sessions": {
        "get": _op(
            "Sessions, filtered, sorted and paged", "SessionPage", parameters=SESSION_FILTERS
        )
    },
    "/sessions/{sid}": {
        "parameters": [SID_PARAM],
        "get": _op("One session", "Session", also=("404",)),
    },
    "/sessions/{sid}/history": {
        "parameters": [SID_PARAM],
        "get": _op("Transitions and each delivery per sink", "History", also=("404",)),
    },
    "/watches": {
        "get": _op("Active watches", "WatchPage", parameters=PAGING),
        "post": _op(
            "Watch a session now (source api)",
            "WatchAdded",
            status="201",
            also=("200", "415", "422"),
            requestBody=_body("application/json", _ref("WatchInput")),
        ),
    },
    "/watches/import": {
        "post": _op(
            "Watch every session of a CSV (all or nothing)",
            "Imported",
            also=("415", "422"),
            requestBody=_body("text/csv", {"type": "string"}),
        )
    },
    "/watches/{sid}": {
        "parameters": [SID_PARAM],
        "patch": _op(
            "Change a watch's labels or interval",
            "WatchChanged",
            also=("404", "415", "422"),
            requestBody=_body("application/json", _ref("WatchPatch")),
        ),
        "delete": _op("Stop watching a session", "WatchRemoved", also=("404",)),
    },
    "/outbox": {
        "get": _op(
            "Pending and dead deliveries, oldest first",
            "OutboxList",
            parameters=[
                _query("state", {"enum": ["pending", "dead"]}),
                _query("sink", {"type": "string"}),
                PAGING[0],
            ],
        )
    },
    "/outbox/retry": {
        "post": _op(
            "Re-queue dead deliveries (ids, sink or all), or make pending ones due now",
            "Retried",
            also=("415", "422"),
            requestBody=_body("application/json", _ref("RetryInput")),
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "spmon API",
        "version": __version__,
        "description": "Sessions, their history, watches and the outbox of a running spmon. "
        "Writes need `Authorization: Bearer <admin token>`; reads too unless `admin.read: open`.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "paths": PATHS,
}

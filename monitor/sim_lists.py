"""The simulator's two list endpoints: which sessions each shows, its rows, and the envelope.

Both answer the documented envelope {total, first, next, prev, last, count, offset, results},
paged by offset/limit (25 by default); links keep every other query parameter, so filters the
simulator does not know pass through page after page, and `next` is null on the last page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from multidict import MultiMapping
from yarl import URL

from monitor.sim_sessions import State

__all__ = [
    "ACTIVE_STATUSES",
    "DEFAULT_LIMIT",
    "MALFORMED_KINDS",
    "BadQuery",
    "Query",
    "appointment_row",
    "completed",
    "enrollment_row",
    "envelope",
    "listed",
    "malformed",
    "query_of",
]

DEFAULT_LIMIT: Final = 25

# "In progress" is not one documented status: these are the ones a session is in while it runs
# (the simulator's lifecycle shows Needs Proctor and Incident between start and Processing).
ACTIVE_STATUSES: Final = frozenset({"In Progress", "Needs Proctor", "Incident"})

MALFORMED_KINDS: Final = 5

_APPOINTMENT_FIELDS: Final = (
    "sid",
    "examSid",
    "enrollmentSid",
    "status",
    "sessionType",
    "appointmentDate",
    "reviewByDate",
    "reviewCompletedDate",
    "reviewRequired",
    "sessionReportCount",
)
_ENROLLMENT_FIELDS: Final = (
    "sid",
    "status",
    "sessionType",
    "appointmentDate",
    "createdDate",
    "editDate",
)
_BOOLEANS: Final = {"true": True, "false": False, "1": True, "0": False}


class BadQuery(ValueError):
    """A query parameter the API would answer 400 INVALIDINPUT to."""


@dataclass(frozen=True, slots=True)
class Query:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    statuses: frozenset[str] | None = None
    """`status[]` values; None when the parameter is absent (any status)."""
    include_active: bool = False


def query_of(params: MultiMapping[str]) -> Query:
    statuses = params.getall("status[]", None)
    return Query(
        offset=_whole(params, "offset", 0, least=0),
        limit=_whole(params, "limit", DEFAULT_LIMIT, least=1),
        statuses=None if statuses is None else frozenset(statuses),
        include_active=_boolean(params, "includeActive"),
    )


def completed(state: State) -> bool:
    """Out of the appointments report: Closed, and reviewed or never needing review. A session
    closed with its review still pending stays listed until the review is done."""
    return state.status == "Closed" and (state.reviewed or not state.review_required)


def listed(state: State, query: Query) -> bool:
    """Whether the enrollment session list shows a session in this state."""
    if not query.include_active and state.status in ACTIVE_STATUSES:
        return False
    return query.statuses is None or state.status in query.statuses


def appointment_row(document: Mapping[str, object]) -> dict[str, object]:
    """A report row: the session document's own values, so row and GET agree."""
    row = {name: document[name] for name in _APPOINTMENT_FIELDS}
    row["exam"] = {
        "sid": document["examSid"],
        "title": document["exam"],
        "courseName": document["course"],
    }
    row["enrollment"] = {"sid": document["enrollmentSid"]}
    return row


def enrollment_row(document: Mapping[str, object]) -> dict[str, object]:
    return {name: document[name] for name in _ENROLLMENT_FIELDS}


def envelope(
    url: URL, query: Query, total: int, results: Sequence[Mapping[str, object]]
) -> dict[str, object]:
    offset, limit = query.offset, query.limit
    last = (total - 1) // limit * limit if total else 0
    return {
        "total": total,
        "first": _link(url, 0, limit),
        "next": _link(url, offset + limit, limit) if offset + limit < total else None,
        "prev": _link(url, max(0, offset - limit), limit) if offset > 0 else None,
        "last": _link(url, last, limit),
        "count": len(results),
        "offset": offset,
        "results": list(results),
    }


def malformed(page: dict[str, object], kind: int) -> bytes:
    """The ways a 200 page can still be unusable: cut short, a gateway's message, a mistyped
    total, results that are not a list, or a row that is not a session."""
    body = json.dumps(page).encode()
    if kind == 0:
        return body[: len(body) // 2]
    if kind == 1:
        return b'{"message": "upstream request timeout"}'
    if kind == 2:
        return json.dumps({**page, "total": str(page["total"])}).encode()
    if kind == 3:
        return json.dumps({**page, "results": None}).encode()
    return json.dumps({**page, "results": [{"status": "Closed"}], "count": 1}).encode()


def _link(url: URL, offset: int, limit: int) -> str:
    return str(url.update_query({"offset": str(offset), "limit": str(limit)}))


def _whole(params: MultiMapping[str], name: str, default: int, *, least: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, got {raw!r}") from None
    if value < least:
        raise BadQuery(f"{name} must be at least {least}, got {value}")
    return value


def _boolean(params: MultiMapping[str], name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise BadQuery(f"{name} must be true or false, got {raw!r}") from None

"""Raw API body → Snapshot, or a ParseProblem that names what was wrong.

Strict only where spmon reads (it diffs, evaluates or echo-checks the value): a body is a
session only if it is a JSON object naming the requested session (`sid`) and carrying every
tracked field (`status`, `reviewRequired`, `reviewed`, `reviewByDate`), each possibly null (the
API makes every field nullable). A 200 that is not a session document (`{}`, a gateway's
`{"message": …}`) is therefore a problem, never an all-null session. `"reviewRequired": "yes"`
is a problem too, not `True`.

Everything else is kept as it comes, whatever its type: the raw body is stored as is, and drift
in a field spmon never reads (`"duration": "90"`) must not blind it to a real change. Fields
spmon only renders (`URL`, `statusReason`, `exam`, `course`, `install`, `reviewByUserSid`) or
schedules by (`appointmentDate`) are lenient: a
value of the wrong type (or a date that is not an instant) is dropped (read as null) instead of
invalidating the document, since losing a link or a faster poll costs less than losing the
session.

The session's names become a shared `Context`. Student data (the enrollment, the user SID, a
name or an e-mail anywhere in the body) is never read, so no event can carry it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from monitor.core.context import Context, shared_context
from monitor.core.instants import shared_instant
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot, compact_url

__all__ = ["TRACKED_FIELDS", "ParseProblem", "SessionPayload", "parse", "parse_instant"]

TRACKED_FIELDS = ("status", "reviewRequired", "reviewed", "reviewByDate")
"""API fields the diff and the review rules read: a session document always carries them."""


def _encodable(value: str) -> str:
    # Python's json keeps a lone UTF-16 surrogate ("\ud83d"); such a string cannot be stored
    # in SQLite or sent as UTF-8, so it is refused where it is read (and ignored elsewhere).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone UTF-16 surrogate") from None
    return value


def _text_or_none(value: object) -> object:
    """A rendered string of the wrong type (or unencodable) is dropped, not fatal."""
    if not isinstance(value, str):
        return None
    try:
        return _encodable(value)
    except ValueError:
        return None


Text = Annotated[str, AfterValidator(_encodable)]
Rendered = Annotated[str | None, BeforeValidator(_text_or_none)]
Named = Annotated[object, BeforeValidator(lambda value: value)]
"""A name the docs type as a string and a report nests as an object: read by `_name`."""


class SessionPayload(BaseModel):
    """The fields of "Exam Session Details" (session.schema.json) that spmon reads.

    No default means required: absent is a problem, null is fine. Undeclared fields are
    ignored here; the raw body keeps them.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)

    sid: Text | None
    installSid: Text | None = None
    examSid: Text | None = None
    status: Text | None
    reviewRequired: bool | None
    reviewed: bool | None
    reviewByDate: Text | None
    url: Rendered = Field(default=None, alias="URL")
    statusReason: Rendered = None
    appointmentDate: Rendered = None
    exam: Named = None
    course: Named = None
    install: Named = None
    reviewByUserSid: Rendered = None


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why a body could not become a Snapshot; `field` is the API name when one is to blame."""

    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def parse(
    body: bytes | str,
    key: SessionKey,
    *,
    naive_tz: tzinfo | None = None,
    link_template: str | None = None,
) -> Snapshot | ParseProblem:
    """Validate one response body for `key`. Naive timestamps are rejected unless `naive_tz` says
    which zone the API meant: guessing would move every deadline by the UTC offset.
    `link_template` (`https://…/{session_sid}`) makes the link when the API's `URL` is null."""
    decoded = _decode(body)
    if isinstance(decoded, ParseProblem):
        return decoded
    try:
        payload = SessionPayload.model_validate(decoded)
    except pydantic.ValidationError as exc:
        return _problem_from(exc)
    echoed = _echo_problem(payload, key)
    if echoed is not None:
        return echoed
    review_by = parse_instant(payload.reviewByDate, naive_tz=naive_tz)
    if isinstance(review_by, ParseProblem):
        return ParseProblem(review_by.reason, "reviewByDate")
    return Snapshot(
        # A handful of statuses across 100,000 sessions: keep one copy of each string.
        status=sys.intern(payload.status) if payload.status else payload.status,
        review_required=payload.reviewRequired,
        reviewed=payload.reviewed,
        review_by_date=shared_instant(review_by),
        url=compact_url(_url(payload.url, key, link_template), key.session_sid),
        appointment=shared_instant(_lenient_instant(payload.appointmentDate, naive_tz)),
        context=_context(payload),
    )


def _url(url: str | None, key: SessionKey, template: str | None) -> str | None:
    if url is not None or template is None:
        return url
    return template.format(
        install_sid=key.install_sid, exam_sid=key.exam_sid, session_sid=key.session_sid
    )


def _context(payload: SessionPayload) -> Context | None:
    exam = payload.exam
    # The report's exam object names its course; a plain exam string is the title only.
    nested = _name(exam, "courseName") if isinstance(exam, dict) else None
    course = _name(payload.course, "name") or nested
    return shared_context(
        _name(exam, "title"),
        course,
        _name(payload.install, "name"),
        _name(payload.statusReason, ""),
        _name(payload.reviewByUserSid, ""),
    )


_NAME_CHARS = 200  # a title longer than this is not a title; it would only bloat alerts


def _name(value: object, inner: str) -> str | None:
    """A string as is, or an object's `inner` string (the report's `exam {title, courseName}`);
    anything else (a number, a list, an unencodable or blank string) is read as absent."""
    if isinstance(value, dict):
        value = value.get(inner)
    text = _text_or_none(value)
    if not isinstance(text, str) or not text.strip():
        return None
    text = " ".join(text.split())
    return text if len(text) <= _NAME_CHARS else text[: _NAME_CHARS - 1] + "…"


def _lenient_instant(value: str | None, naive_tz: tzinfo | None) -> datetime | None:
    parsed = parse_instant(value, naive_tz=naive_tz)
    return None if isinstance(parsed, ParseProblem) else parsed


def _decode(body: bytes | str) -> Any | ParseProblem:
    """JSON text → Python value. Python's json rather than pydantic's parser: that one refuses
    a whole body for a lone surrogate escape in any field, read or not (one truncated emoji in
    `notes` would fail every poll of the session)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return json.loads(text)
    except UnicodeDecodeError:
        return ParseProblem("body is not UTF-8 text")
    except ValueError as exc:
        return ParseProblem(f"body is not JSON ({exc})")
    except RecursionError:
        return ParseProblem("body is not JSON we can read (nested too deeply)")


def parse_instant(
    value: str | None, *, naive_tz: tzinfo | None = None
) -> datetime | ParseProblem | None:
    """ISO 8601 text → aware UTC datetime (None stays None)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return ParseProblem("not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        if naive_tz is None:
            return ParseProblem("date-time has no timezone (set api.naive_date_timezone)")
        parsed = parsed.replace(tzinfo=naive_tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. year 9999 at a negative offset: not a real deadline
        return ParseProblem("date-time is out of range")


def _problem_from(exc: pydantic.ValidationError) -> ParseProblem:
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "model_type":
        return ParseProblem(f"body is not a JSON object ({first['msg']})")
    if first["type"] == "missing":
        return ParseProblem("missing: not a session document", loc)
    return ParseProblem(first["msg"], loc or None)


def _echo_problem(payload: SessionPayload, key: SessionKey) -> ParseProblem | None:
    # A body for another session, or for none, must never overwrite this one's snapshot.
    if payload.sid is None:
        return ParseProblem("is null: the body does not name the session asked for", "sid")
    for field, expected in (
        ("sid", key.session_sid),
        ("installSid", key.install_sid),
        ("examSid", key.exam_sid),
    ):
        value = getattr(payload, field)
        if value is not None and value != expected:
            return ParseProblem(f"names another session ({value!r})", field)
    return None

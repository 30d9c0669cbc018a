"""Hypothesis strategies for the pure core: SIDs, instants and their spellings, snapshots, raw bodies.

Valid bodies come with the Snapshot they must parse to, and malformed ones with the API field the
ParseProblem must name, so tests state the expectation without re-implementing the parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from monitor.core import rules
from monitor.core.context import Context
from monitor.core.events import CHANGE_TYPES, Change, Event, EventType, Field
from monitor.core.keys import SessionKey
from monitor.core.parse import TRACKED_FIELDS, SessionPayload
from monitor.core.snapshot import Snapshot

__all__ = [
    "KNOWN_STATUSES",
    "UNREAD_FIELDS",
    "Malformed",
    "Payload",
    "aware_instants",
    "events",
    "exam_sids",
    "install_sids",
    "instant_spellings",
    "json_blobs",
    "malformed_payloads",
    "offsets",
    "policies",
    "review_states",
    "session_keys",
    "session_sids",
    "snapshots",
    "spell",
    "statuses",
    "valid_payloads",
]

KNOWN_STATUSES = (
    "Needs Proctor",
    "Pending Approval",
    "Approval Denied",
    "Scheduled",
    "Incident",
    "Closed",
    "Processing",
)

# Every name the model knows, by alias and by attribute, so generated extras never collide with one
# (populate_by_name=True means "url" would fill the URL field).
_KNOWN_NAMES = frozenset(
    {name for name in SessionPayload.model_fields}
    | {f.alias for f in SessionPayload.model_fields.values() if f.alias}
)

# ── SIDs and keys ────────────────────────────────────────────────────────────────────────────

_hex32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
install_sids = _hex32.map(lambda h: "AI" + h)
exam_sids = _hex32.map(lambda h: "EX" + h)
session_sids = _hex32.map(lambda h: "ES" + h)
session_keys = st.builds(SessionKey, install_sids, exam_sids, session_sids)

# ── instants ─────────────────────────────────────────────────────────────────────────────────

# Years stay four digits under any offset, so every spelling below is a valid ISO 8601 string.
_EARLIEST = datetime(2000, 1, 1)
_LATEST = datetime(2100, 1, 1)

aware_instants = st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=st.just(UTC))
"""Aware datetimes in UTC."""

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
"""Fixed UTC offsets with minute precision, as the API could spell them (-14:00 … +14:00)."""


def spell(instant: datetime, *, tz: timezone, fraction: str = "auto", zulu: bool = True) -> str:
    """One ISO 8601 spelling of `instant` in zone `tz`.

    fraction: "auto" (six digits only when there are microseconds), "micro" (always six),
    "milli" (three, only when exact), "seven" (.NET's seven digits, a trailing zero).
    zulu: write a zero offset as "Z" rather than "+00:00".
    """
    local = instant.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    micro = local.microsecond
    if fraction == "seven":
        text += f".{micro:06d}0"
    elif fraction == "milli" and micro % 1000 == 0:
        text += f".{micro // 1000:03d}"
    elif fraction != "auto" or micro:
        text += f".{micro:06d}"
    offset = local.utcoffset() or timedelta(0)
    if offset == timedelta(0) and zulu:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def instant_spellings(draw: st.DrawFn, instant: datetime | None = None) -> str:
    """A spelling of `instant` (drawn when not given): Z, +00:00, another offset, any fraction."""
    moment = draw(aware_instants) if instant is None else instant
    tz = draw(st.one_of(st.just(UTC), offsets))
    fraction = draw(st.sampled_from(("auto", "micro", "milli", "seven")))
    return spell(moment, tz=tz, fraction=fraction, zulu=draw(st.booleans()))


# ── snapshots and rule inputs ────────────────────────────────────────────────────────────────

statuses = st.one_of(
    st.none(),
    st.sampled_from(KNOWN_STATUSES),
    st.text(st.characters(codec="utf-8"), max_size=20),
)
"""Known statuses, unknown ones (data, never errors) and null."""

_tristate = st.one_of(st.none(), st.booleans())
_json_text = st.text(st.characters(codec="utf-8"), max_size=12)
_urls = st.one_of(st.none(), st.just("https://app.example/sessions/1"))


def snapshots(
    *, dates: st.SearchStrategy[datetime | None] | None = None
) -> st.SearchStrategy[Snapshot]:
    """Snapshots with every tracked field nullable; `dates` overrides the reviewByDate strategy."""
    return st.builds(
        Snapshot,
        status=statuses,
        review_required=_tristate,
        reviewed=_tristate,
        review_by_date=st.one_of(st.none(), aware_instants) if dates is None else dates,
        url=_urls,
        context=st.one_of(st.none(), _contexts),
    )


_durations = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=7))


def policies() -> st.SearchStrategy[rules.Policy]:
    """Rule policies as settings allow them (a zero repeat or window is configured as None)."""
    return st.builds(
        rules.Policy,
        overdue_repeat=st.one_of(st.none(), _durations),
        due_soon=st.one_of(st.none(), _durations),
    )


def review_states(
    instants: st.SearchStrategy[datetime] = aware_instants,
) -> st.SearchStrategy[rules.ReviewState]:
    """Any ReviewState, consistent or not: evaluate must cope with whatever a store hands back."""
    maybe = st.one_of(st.none(), instants)
    return st.builds(
        rules.ReviewState, overdue_since=maybe, last_overdue_alert=maybe, due_soon_for=maybe
    )


# ── events ───────────────────────────────────────────────────────────────────────────────────

_instants_anywhere = st.builds(datetime.astimezone, aware_instants, offsets)
"""Instants in any zone: an event's facts are instants, whatever zone they were computed in."""
_labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
_FIELD_OF = {kind: name for name, kind in CHANGE_TYPES.items()}
_VALUES: dict[Field, st.SearchStrategy[Any]] = {
    Field.STATUS: statuses,
    Field.REVIEW_REQUIRED: _tristate,
    Field.REVIEW_BY_DATE: st.one_of(st.none(), _instants_anywhere),
}


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Events as spmon makes them: the facts their type carries, instants in any zone."""
    kind = draw(st.sampled_from(EventType))
    # api.auth_failed is about no session; labels belong to the session.
    key = None if kind is EventType.API_AUTH_FAILED else draw(session_keys)
    change = None
    if (name := _FIELD_OF.get(kind)) is not None:
        change = Change(name, draw(_VALUES[name]), draw(_VALUES[name]))
    carries_snapshot = kind not in {EventType.SESSION_NOT_FOUND, EventType.API_AUTH_FAILED}
    snapshot = draw(snapshots(dates=st.one_of(st.none(), _instants_anywhere)))
    return Event(
        id=draw(st.from_regex(r"evt_[0-9a-f]{32}", fullmatch=True)),
        type=kind,
        observed_at=draw(_instants_anywhere),
        key=key,
        labels={} if key is None else draw(_labels),
        change=change,
        snapshot=snapshot if carries_snapshot else None,
        message=draw(_json_text) if kind is EventType.API_AUTH_FAILED else None,
    )


# ── raw API bodies ───────────────────────────────────────────────────────────────────────────

json_blobs = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**9), max_value=10**9),
        st.floats(allow_nan=False, allow_infinity=False),
        _json_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_json_text, inner, max_size=3)
    ),
    max_leaves=8,
)
"""Any JSON value (the API's "details" blobs arrive as objects, strings or null)."""

_extra_names = st.from_regex(r"x[A-Za-z]{1,12}", fullmatch=True).filter(
    lambda name: name not in _KNOWN_NAMES
)


@dataclass(frozen=True)
class Payload:
    """A valid body for `key` and the Snapshot it must parse to."""

    key: SessionKey
    body: dict[str, Any]
    expected: Snapshot

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode()


def _maybe(draw: st.DrawFn, body: dict[str, Any], name: str, values: st.SearchStrategy[Any]) -> Any:
    """Put `name` in the body (possibly null) or leave it out; returns what a model would read."""
    if draw(st.booleans()):
        return None  # absent: an optional field defaults to null
    body[name] = draw(values)
    return body[name]


# Fields of session.schema.json that spmon never reads: they arrive in any JSON shape
# (`"duration": "90"`, details as objects) and must never make a body invalid.
UNREAD_FIELDS = (
    "duration",
    "sessionReportCount",
    "notes",
    "createdDate",
    "editDate",
    "mandatoryRoomScanVideo",
    "messagingConfirmations",
    "account",
    "enrollment",
    "proctor",
    "appointment",
    "automated",
)


@st.composite
def valid_payloads(draw: st.DrawFn) -> Payload:
    """A realistic subset of the ~70 fields: the session's own sid, every tracked field (nulls
    included), optional echoes and URL, unread schema fields and unknown extras of any type."""
    key = draw(session_keys)
    body: dict[str, Any] = {"sid": key.session_sid}
    for name, own in (("installSid", key.install_sid), ("examSid", key.exam_sid)):
        _maybe(draw, body, name, st.sampled_from((own, None)))
    body["status"] = status = draw(statuses)
    body["reviewRequired"] = required = draw(_tristate)
    body["reviewed"] = reviewed = draw(_tristate)
    deadline = draw(st.one_of(st.none(), aware_instants))
    body["reviewByDate"] = None if deadline is None else draw(instant_spellings(deadline))
    url = _maybe(draw, body, "URL", _urls)
    context = draw(_context_fields(body))
    for name in UNREAD_FIELDS:
        _maybe(draw, body, name, json_blobs)
    body.update(draw(st.dictionaries(_extra_names, json_blobs, max_size=3)))
    names = list(body)
    order = draw(st.permutations(names))  # field order carries no meaning
    body = {name: body[name] for name in order}
    expected = Snapshot(
        status=status,
        review_required=required,
        reviewed=reviewed,
        review_by_date=deadline,
        url=url,
        context=context,
    )
    return Payload(key, body, expected)


_NAMES = st.sampled_from(
    ("BIO 101 Midterm", "CHEM 201: Organic Chemistry (Fall 2026)", "Example U - Canvas", "Late")
)
_NOT_A_NAME = st.one_of(
    st.none(), st.integers(), st.booleans(), st.lists(st.integers()), st.just("  ")
)


_contexts = st.builds(
    Context,
    exam_title=st.one_of(st.none(), _NAMES),
    course=st.one_of(st.none(), _NAMES),
    install_name=st.one_of(st.none(), _NAMES),
    status_reason=st.one_of(st.none(), _NAMES),
    reviewer_sid=st.one_of(st.none(), st.just("US" + "7" * 32)),
).filter(lambda context: any((context.exam_title, context.course, context.install_name)))


@st.composite
def _context_fields(draw: st.DrawFn, body: dict[str, Any]) -> Context | None:
    """The fields a session's names come from, each a name, an object holding one (the report's
    `exam {title, courseName}`) or something that is none (wrong type, blank): `expected` says
    which names the body gives, by the documented reading, not by running the parser."""
    found: dict[str, str | None] = {}
    for api, ours in (
        ("statusReason", "status_reason"),
        ("install", "install_name"),
        ("reviewByUserSid", "reviewer_sid"),
        ("course", "course"),
    ):
        value = draw(st.one_of(_NAMES, _NOT_A_NAME))
        if draw(st.booleans()):
            body[api] = value
            found[ours] = value if isinstance(value, str) and value.strip() else None
    shape = draw(st.sampled_from(("absent", "text", "object", "junk")))
    title, course = draw(_NAMES), draw(_NAMES)
    if shape == "text":
        body["exam"], found["exam_title"] = title, title
    elif shape == "object":
        body["exam"] = {"sid": "EX1", "title": title, "courseName": course}
        found["exam_title"] = title
        if not found.get("course"):
            found["course"] = course
    elif shape == "junk":
        body["exam"] = draw(_NOT_A_NAME)
    if not any(found.values()):
        return None
    return Context(**found)


@dataclass(frozen=True)
class Malformed:
    """A body that must not become a Snapshot; `field` is the API name the problem must carry
    (None when the body as a whole is wrong: not JSON, or not an object)."""

    key: SessionKey
    body: bytes
    field: str | None
    kind: str


_not_bool = st.one_of(
    st.sampled_from(("true", "false", "yes", "1", "")),
    st.integers(-2, 2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.booleans(), max_size=2),
    st.dictionaries(_json_text, st.booleans(), max_size=2),
)
_not_str = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(_json_text, max_size=2),
    st.dictionaries(_json_text, _json_text, max_size=2),
)


def _unparseable_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return True
    return False


_garbage_dates = st.one_of(
    st.sampled_from(
        (
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "01/02/2024 10:00",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00+25:00",
            "Mon, 01 Jan 2024 00:00:00 GMT",
        )
    ),
    _json_text.filter(_unparseable_date),
)


@st.composite
def _naive_dates(draw: st.DrawFn) -> str:
    return draw(aware_instants).replace(tzinfo=None).isoformat()


@st.composite
def _another_sid(draw: st.DrawFn, own: str, sids: st.SearchStrategy[str]) -> str:
    return draw(sids.filter(lambda sid: sid != own))


def _with(payload: Payload, name: str, value: Any) -> bytes:
    return json.dumps({**payload.body, name: value}).encode()


@st.composite
def malformed_payloads(draw: st.DrawFn) -> Malformed:
    """One thing wrong with an otherwise valid body, and where the parser must point."""
    base = draw(valid_payloads())
    key = base.key
    kind = draw(
        st.sampled_from(
            (
                "reviewRequired",
                "reviewed",
                "status",
                "reviewByDate-type",
                "naive-date",
                "garbage-date",
                "another-session",
                "missing-field",
                "null-sid",
                "not-a-session",
                "not-json",
                "json-array",
                "json-scalar",
            )
        )
    )
    if kind in {"reviewRequired", "reviewed"}:
        return Malformed(key, _with(base, kind, draw(_not_bool)), kind, kind)
    if kind == "status":
        return Malformed(key, _with(base, kind, draw(_not_str)), kind, kind)
    if kind == "reviewByDate-type":
        return Malformed(key, _with(base, "reviewByDate", draw(_not_str)), "reviewByDate", kind)
    if kind == "naive-date":
        return Malformed(
            key, _with(base, "reviewByDate", draw(_naive_dates())), "reviewByDate", kind
        )
    if kind == "garbage-date":
        return Malformed(
            key, _with(base, "reviewByDate", draw(_garbage_dates)), "reviewByDate", kind
        )
    if kind == "another-session":
        name, own, sids = draw(
            st.sampled_from(
                (
                    ("sid", key.session_sid, session_sids),
                    ("installSid", key.install_sid, install_sids),
                    ("examSid", key.exam_sid, exam_sids),
                )
            )
        )
        return Malformed(key, _with(base, name, draw(_another_sid(own, sids))), name, kind)
    if kind == "missing-field":
        name = draw(st.sampled_from(("sid", *TRACKED_FIELDS)))
        rest = {field: value for field, value in base.body.items() if field != name}
        return Malformed(key, json.dumps(rest).encode(), name, kind)
    if kind == "null-sid":
        return Malformed(key, _with(base, "sid", None), "sid", kind)
    if kind == "not-a-session":
        # A gateway's or proxy's own JSON on a 200: an object, but no session in it.
        other = draw(st.dictionaries(_extra_names, json_blobs, max_size=3))
        message = draw(st.sampled_from(({}, {"message": "upstream request timeout"}, other)))
        return Malformed(key, json.dumps(message).encode(), "sid", kind)
    if kind == "json-array":
        return Malformed(
            key, json.dumps(draw(st.lists(json_blobs, max_size=3))).encode(), None, kind
        )
    if kind == "json-scalar":
        scalar = draw(st.one_of(st.none(), st.booleans(), st.integers(), _json_text))
        return Malformed(key, json.dumps(scalar).encode(), None, kind)
    return Malformed(key, draw(_non_json_bytes), None, kind)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


_non_json_bytes = st.one_of(
    st.sampled_from(
        (
            b"",
            b"<html>502 Bad Gateway</html>",
            b"{",
            b'{"status": "Closed",}',
            b"\xff\xfe{}",
            b"{'status': 'Closed'}",
            b"null null",
        )
    ),
    st.binary(max_size=64).filter(lambda data: not _is_json(data)),
)

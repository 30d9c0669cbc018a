"""Raw body → Snapshot | ParseProblem: tolerant where the API is open, strict where a type would mislead."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strategies
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.diff import diff
from monitor.core.keys import SessionKey
from monitor.core.parse import TRACKED_FIELDS, ParseProblem, parse, parse_instant
from monitor.core.snapshot import Snapshot

KEY = SessionKey("AI" + "1a" * 16, "EX" + "2b" * 16, "ES" + "3c" * 16)
OTHER = SessionKey("AI" + "a" * 32, "EX" + "b" * 32, "ES" + "c" * 32)
PLUS7 = timezone(timedelta(hours=7))
MINUS5 = timezone(timedelta(hours=-5))
INSTANT = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def doc(**fields: Any) -> bytes:
    """A minimal session document for KEY: its sid and every tracked field, null unless given."""
    return body(**{"sid": KEY.session_sid, **dict.fromkeys(TRACKED_FIELDS), **fields})


# ── valid bodies ─────────────────────────────────────────────────────────────────────────────


def test_realistic_body_parses_to_its_tracked_fields() -> None:
    raw = {
        "sid": KEY.session_sid,
        "installSid": KEY.install_sid,
        "examSid": KEY.exam_sid,
        "status": "Scheduled",
        "statusReason": None,
        "duration": 90,
        "sessionReportCount": 0,
        "reviewByDate": "2024-03-01T12:30:00Z",
        "reviewRequired": True,
        "reviewed": False,
        "URL": "https://app.example/s/1",
        "account": {"sid": "AC1", "name": "Uni"},
        "exam": {"name": "Final", "settings": [1, 2, {"x": None}]},
        "messagingConfirmations": [{"channel": "email"}, "sms"],
        "mandatoryRoomScanVideo": None,
    }
    assert parse(json.dumps(raw).encode(), KEY) == Snapshot(
        status="Scheduled",
        review_required=True,
        reviewed=False,
        review_by_date=INSTANT,
        url="https://app.example/s/1",
    )


def test_all_null_document_is_an_all_null_snapshot() -> None:
    # The API makes every field nullable: present-but-null is data, absent is not.
    assert parse(doc(), KEY) == Snapshot(None, None, None, None, None)


def test_unknown_status_is_data() -> None:
    result = parse(doc(status="Teleported To Mars"), KEY)
    assert isinstance(result, Snapshot)
    assert result.status == "Teleported To Mars"


def test_extra_fields_of_any_shape_are_allowed() -> None:
    raw = doc(status="Closed", brandNewField={"nested": [1, {"deep": True}]}, another=None, n=3)
    assert parse(raw, KEY) == Snapshot("Closed", None, None, None)


@pytest.mark.parametrize("blob", [{"a": 1}, "a string, as the docs say", [1, "x"], None, 42])
def test_detail_blobs_take_any_json_shape(blob: object) -> None:
    assert isinstance(parse(doc(account=blob, exam=blob, proctor=blob), KEY), Snapshot)


def test_str_and_bytes_bodies_parse_alike() -> None:
    text = doc(status="Incident", reviewRequired=True, reviewByDate="2024-03-01T12:30:00Z").decode()
    assert parse(text, KEY) == parse(text.encode(), KEY)
    assert parse(text, KEY) == Snapshot("Incident", True, None, INSTANT)


def test_echoed_sids_of_this_session_are_accepted() -> None:
    raw = doc(installSid=KEY.install_sid, examSid=KEY.exam_sid)
    assert isinstance(parse(raw, KEY), Snapshot)


# ── instants (invariant 8) ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "spelling",
    [
        "2024-03-01T12:30:00Z",
        "2024-03-01T12:30:00+00:00",
        "2024-03-01T12:30:00-00:00",
        "2024-03-01T12:30:00.000Z",
        "2024-03-01T12:30:00.000000+00:00",
        "2024-03-01T12:30:00.0000000Z",
        "2024-03-01T19:30:00+07:00",
        "2024-03-01T07:30:00-05:00",
        "2024-03-02T02:15:00+13:45",
        "2024-03-01 12:30:00Z",
        "20240301T123000Z",
    ],
)
def test_spellings_of_one_instant_parse_to_that_instant_in_utc(spelling: str) -> None:
    result = parse(doc(reviewByDate=spelling), KEY)
    assert isinstance(result, Snapshot)
    assert result.review_by_date == INSTANT
    assert result.review_by_date is not None
    assert result.review_by_date.tzinfo is UTC


def test_fractional_seconds_are_kept() -> None:
    result = parse_instant("2024-03-01T19:30:00.250+07:00")
    assert result == INSTANT + timedelta(milliseconds=250)


def test_seven_digit_fractions_keep_microsecond_precision() -> None:
    # .NET writes seven digits; Python keeps six, which is all a datetime can hold.
    assert parse_instant("2024-03-01T12:30:00.1234567Z") == INSTANT + timedelta(microseconds=123456)


def test_missing_date_stays_none() -> None:
    assert parse_instant(None) is None
    result = parse(doc(reviewByDate=None), KEY)
    assert isinstance(result, Snapshot)
    assert result.review_by_date is None


@settings(deadline=None)
@given(payload=strategies.valid_payloads())
def test_valid_payloads_parse_to_the_expected_snapshot(payload: strategies.Payload) -> None:
    result = parse(payload.encoded(), payload.key)
    assert result == payload.expected
    assert isinstance(result, Snapshot)
    if result.review_by_date is not None:
        assert result.review_by_date.tzinfo is UTC


@given(
    instant=strategies.aware_instants,
    data=st.data(),
)
def test_two_spellings_of_one_instant_parse_equal(instant: datetime, data: st.DataObject) -> None:
    first = data.draw(strategies.instant_spellings(instant))
    second = data.draw(strategies.instant_spellings(instant))
    left = parse(doc(reviewByDate=first, reviewRequired=True), KEY)
    right = parse(doc(reviewByDate=second, reviewRequired=True), KEY)
    assert left == right == Snapshot(None, True, None, instant)


# ── naive dates ──────────────────────────────────────────────────────────────────────────────


def test_naive_date_is_rejected_without_a_zone() -> None:
    result = parse(doc(reviewByDate="2024-03-01T12:30:00"), KEY)
    assert isinstance(result, ParseProblem)
    assert result.field == "reviewByDate"
    assert "timezone" in result.reason


def test_date_without_time_is_naive_and_rejected() -> None:
    result = parse(doc(reviewByDate="2024-03-01"), KEY)
    assert isinstance(result, ParseProblem)
    assert result.field == "reviewByDate"


@pytest.mark.parametrize(
    ("naive_tz", "expected"),
    [
        (UTC, datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        (PLUS7, datetime(2024, 3, 1, 5, 30, tzinfo=UTC)),
        (MINUS5, datetime(2024, 3, 1, 17, 30, tzinfo=UTC)),
    ],
)
def test_naive_date_is_read_in_the_configured_zone(naive_tz: timezone, expected: datetime) -> None:
    result = parse(doc(reviewByDate="2024-03-01T12:30:00"), KEY, naive_tz=naive_tz)
    assert isinstance(result, Snapshot)
    assert result.review_by_date == expected
    assert result.review_by_date is not None
    assert result.review_by_date.tzinfo is UTC


def test_naive_tz_does_not_move_an_aware_date() -> None:
    result = parse(doc(reviewByDate="2024-03-01T12:30:00Z"), KEY, naive_tz=PLUS7)
    assert isinstance(result, Snapshot)
    assert result.review_by_date == INSTANT


@given(instant=strategies.aware_instants, tz=strategies.offsets)
def test_naive_dates_are_wall_time_in_naive_tz(instant: datetime, tz: timezone) -> None:
    wall = instant.astimezone(tz).replace(tzinfo=None).isoformat()
    assert isinstance(parse_instant(wall), ParseProblem)
    assert parse_instant(wall, naive_tz=tz) == instant


# ── not a session document (issue 7.1) ─────────────────────────────────────────────────────

GATEWAY = {"message": "upstream request timeout"}


def without(name: str) -> bytes:
    full = json.loads(doc(status="Closed", reviewRequired=True, URL="https://app.example/s/1"))
    del full[name]
    return json.dumps(full).encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{}", "sid"),
        (json.dumps(GATEWAY).encode(), "sid"),
        (body(status="Closed", reviewRequired=None, reviewed=None, reviewByDate=None), "sid"),
        (doc(sid=None), "sid"),
        (without("sid"), "sid"),
        (without("status"), "status"),
        (without("reviewRequired"), "reviewRequired"),
        (without("reviewed"), "reviewed"),
        (without("reviewByDate"), "reviewByDate"),
    ],
    ids=[
        "empty-object",
        "gateway-message",
        "no-sid",
        "null-sid",
        "sid-removed",
        "no-status",
        "no-reviewRequired",
        "no-reviewed",
        "no-reviewByDate",
    ],
)
def test_a_200_that_is_not_a_session_document_is_a_problem(raw: bytes, field: str) -> None:
    result = parse(raw, KEY)
    assert isinstance(result, ParseProblem)
    assert result.field == field
    assert "session" in result.reason


def test_optional_fields_may_be_absent() -> None:
    # Only the sid and the tracked fields are required; echoes and the link are optional.
    assert parse(without("URL"), KEY) == Snapshot("Closed", True, None, None)


@settings(deadline=None)
@given(
    payload=strategies.valid_payloads(),
    name=st.sampled_from(("sid", *TRACKED_FIELDS)),
)
def test_a_body_missing_sid_or_a_tracked_field_is_a_problem_naming_it(
    payload: strategies.Payload, name: str
) -> None:
    rest = {field: value for field, value in payload.body.items() if field != name}
    result = parse(json.dumps(rest), payload.key)
    assert isinstance(result, ParseProblem)
    assert result.field == name


@given(
    value=st.dictionaries(
        st.text(max_size=8).filter(lambda name: name != "sid"), strategies.json_blobs, max_size=5
    )
)
def test_any_json_object_without_sid_is_a_problem_naming_sid(value: dict[str, Any]) -> None:
    result = parse(json.dumps(value), KEY)
    assert isinstance(result, ParseProblem)
    assert result.field == "sid"


# ── drift in fields spmon never reads (issue 7.2) ──────────────────────────────────────────


@pytest.mark.parametrize(
    "drift",
    [
        {"duration": "90"},
        {"duration": {"minutes": 90}},
        {"sessionReportCount": "none"},
        {"messagingConfirmations": {"a": 1}},
        {"mandatoryRoomScanVideo": "yes"},
        {"createdDate": 1709296200},
        {"notes": ["a", "b"]},
        {"brandNewField": {"nested": [1, {"deep": True}]}},
    ],
)
def test_drift_in_an_unread_field_does_not_invalidate_the_body(drift: dict[str, Any]) -> None:
    assert parse(doc(status="Incident", **drift), KEY) == Snapshot("Incident", None, None, None)


@pytest.mark.parametrize("bad", [5, True, ["https://x.example"], {"href": "https://x.example"}])
def test_a_rendered_field_of_the_wrong_type_is_dropped_not_fatal(bad: object) -> None:
    assert parse(doc(status="Closed", URL=bad, statusReason=bad), KEY) == Snapshot(
        "Closed", None, None, None, url=None
    )


@settings(deadline=None)
@given(
    payload=strategies.valid_payloads(),
    drift=st.dictionaries(
        st.one_of(st.sampled_from(strategies.UNREAD_FIELDS), st.from_regex(r"x[A-Za-z]{1,12}")),
        strategies.json_blobs,
        max_size=6,
    ),
)
def test_arbitrary_values_in_unread_fields_never_make_a_valid_body_invalid(
    payload: strategies.Payload, drift: dict[str, Any]
) -> None:
    assert parse(json.dumps({**payload.body, **drift}), payload.key) == payload.expected


@settings(deadline=None)
@given(
    payload=strategies.valid_payloads(),
    url=st.one_of(st.booleans(), st.integers(), st.lists(strategies.json_blobs, max_size=2)),
)
def test_a_wrong_typed_url_only_loses_the_link(payload: strategies.Payload, url: object) -> None:
    result = parse(json.dumps({**payload.body, "URL": url}), payload.key)
    assert result == replace(payload.expected, url=None)


# ── malformed bodies ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (doc(reviewRequired="yes"), "reviewRequired"),
        (doc(reviewRequired="true"), "reviewRequired"),
        (doc(reviewRequired=1), "reviewRequired"),
        (doc(reviewRequired=0), "reviewRequired"),
        (doc(reviewed="false"), "reviewed"),
        (doc(reviewed=[True]), "reviewed"),
        (doc(status=3), "status"),
        (doc(status=True), "status"),
        (doc(status={"name": "Closed"}), "status"),
        (doc(status="Closed \ud83d"), "status"),
        (doc(reviewByDate=1709296200), "reviewByDate"),
        (doc(reviewByDate="tomorrow"), "reviewByDate"),
        (doc(reviewByDate="2024-02-30T00:00:00Z"), "reviewByDate"),
        (doc(reviewByDate=""), "reviewByDate"),
        (doc(sid=OTHER.session_sid), "sid"),
        (doc(sid=5), "sid"),
        (doc(installSid=OTHER.install_sid), "installSid"),
        (doc(examSid=OTHER.exam_sid), "examSid"),
        (doc(sid=KEY.session_sid.upper()), "sid"),
        (b"not json", None),
        (b"", None),
        (b"\xff\xfe\x00", None),
        (b"[]", None),
        (b'[{"status": "Closed"}]', None),
        (b'"Closed"', None),
        (b"null", None),
        (b"42", None),
        (b'{"status": "Closed"} trailing', None),
        (b"[" * 10_000, None),
    ],
)
def test_malformed_body_is_a_problem_naming_the_field(raw: bytes, field: str | None) -> None:
    result = parse(raw, KEY)
    assert isinstance(result, ParseProblem)
    assert result.field == field
    assert result.reason


def test_another_sessions_body_names_the_foreign_sid() -> None:
    result = parse(doc(sid=OTHER.session_sid, status="Closed"), KEY)
    assert isinstance(result, ParseProblem)
    assert OTHER.session_sid in result.reason


def test_not_an_object_says_so() -> None:
    result = parse(b"[]", KEY)
    assert isinstance(result, ParseProblem)
    assert "not a JSON object" in result.reason


def test_problem_renders_with_its_field() -> None:
    assert str(ParseProblem("Input should be a valid boolean", "reviewed")) == (
        "reviewed: Input should be a valid boolean"
    )
    assert str(ParseProblem("body is not a JSON object")) == "body is not a JSON object"


@settings(deadline=None)
@given(bad=strategies.malformed_payloads())
def test_every_malformed_kind_is_a_problem_naming_its_field(bad: strategies.Malformed) -> None:
    result = parse(bad.body, bad.key)
    assert isinstance(result, ParseProblem), bad.kind
    assert result.field == bad.field


@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse(raw, KEY), Snapshot | ParseProblem)


@given(value=strategies.json_blobs)
def test_arbitrary_json_never_raises(value: object) -> None:
    assert isinstance(parse(json.dumps(value), KEY), Snapshot | ParseProblem)


@given(text=st.text(max_size=40))
def test_parse_instant_never_raises_on_text(text: str) -> None:
    result = parse_instant(text)
    assert isinstance(result, ParseProblem) or (result is not None and result.tzinfo is UTC)


@pytest.mark.parametrize(
    ("spelling", "naive_tz"),
    [
        ("9999-12-31T23:59:59-01:00", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("0001-01-01T00:00:00", PLUS7),
    ],
    ids=["year-10000-in-utc", "year-0-in-utc", "naive-year-0-in-utc"],
)
def test_out_of_range_instant_is_a_problem_not_an_exception(
    spelling: str, naive_tz: timezone | None
) -> None:
    result = parse(doc(reviewByDate=spelling), KEY, naive_tz=naive_tz)
    assert isinstance(result, ParseProblem)
    assert result.field == "reviewByDate"


def test_lone_surrogate_in_an_untracked_field_does_not_sink_the_body() -> None:
    # One truncated emoji in free text (notes) must not fail every poll of the session.
    raw = doc(status="Closed")[:-1] + b', "notes": "cut mid-emoji \\ud83d"}'
    assert json.loads(raw)["status"] == "Closed"  # valid JSON by RFC 8259's grammar
    assert parse(raw, KEY) == Snapshot("Closed", None, None, None)


# ── appointmentDate: read for the lifecycle phase, lenient, never diffed ─────────────────────


def test_the_appointment_is_read_as_an_instant() -> None:
    result = parse(doc(status="Scheduled", appointmentDate="2024-03-01T19:30:00+07:00"), KEY)
    assert isinstance(result, Snapshot) and result.appointment == INSTANT


@pytest.mark.parametrize(
    "bad", [42, True, ["2024-03-01T12:30:00Z"], "next tuesday", "2024-03-01T12:30:00", "\ud83d"]
)
def test_a_bad_appointment_is_dropped_never_the_session(bad: object) -> None:
    """Like URL: a wrong type, a non-date or a naive date without naive_tz read as null."""
    result = parse(doc(status="Closed", reviewRequired=True, appointmentDate=bad), KEY)
    assert result == Snapshot("Closed", True, None, None)


def test_a_naive_appointment_is_read_in_naive_tz() -> None:
    result = parse(doc(appointmentDate="2024-03-01T19:30:00"), KEY, naive_tz=PLUS7)
    assert isinstance(result, Snapshot) and result.appointment == INSTANT


def test_a_moved_appointment_is_no_change_event() -> None:
    before = parse(doc(status="Scheduled", appointmentDate="2024-03-01T12:30:00Z"), KEY)
    after = parse(doc(status="Scheduled", appointmentDate="2024-03-02T12:30:00Z"), KEY)
    assert isinstance(before, Snapshot) and isinstance(after, Snapshot)
    assert before != after and diff(before, after) == ()


def test_a_session_url_naming_its_sid_is_kept_as_one_shared_string() -> None:
    """100,000 session URLs differ only by their SID: memory keeps one string, every output
    (alert link, wire form, store) shows the URL as the API gave it."""
    other = SessionKey(KEY.install_sid, KEY.exam_sid, "ES" + "4d" * 16)
    url_of = "https://proctoring.example.com/sessions/{}?tab=review".format
    first = parse(doc(URL=url_of(KEY.session_sid)), KEY)
    second = parse(doc(sid=other.session_sid, URL=url_of(other.session_sid)), other)
    assert isinstance(first, Snapshot) and isinstance(second, Snapshot)
    assert first.url is second.url  # one object for both
    assert first.link(KEY) == url_of(KEY.session_sid)
    assert second.link(other) == url_of(other.session_sid)
    plain = parse(doc(URL="https://app.example/s/1"), KEY)
    assert isinstance(plain, Snapshot) and plain.url == plain.link(KEY) == "https://app.example/s/1"

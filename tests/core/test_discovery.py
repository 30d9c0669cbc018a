"""List pages: the envelope validated field by field, next links kept on the API, rows → watches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.core import discovery
from monitor.core.discovery import Found, Page, PageError
from monitor.core.keys import SessionKey
from monitor.core.watches import Watch

INSTALL = "AI" + "a" * 32
EXAM = "EX" + "b" * 32
ENROLLMENT = "EN" + "c" * 32
S1, S2, S3 = ("ES" + c * 32 for c in "123")
BASE = "https://api.smarterproctoring.com"
FIRST = f"{BASE}/v1/installs/{INSTALL}/reports/appointments?limit=25"
SOURCE = f"discovery:appointments:{INSTALL}"


def envelope(results: list[Any], **fields: Any) -> bytes:
    body = {"total": len(results), "first": FIRST, "next": None, "prev": None, "last": FIRST}
    return json.dumps(
        {**body, "count": len(results), "offset": 0, "results": results, **fields}
    ).encode()


def appointment(sid: str, **fields: Any) -> dict[str, Any]:
    """A "List Appointments" row as API-NOTES describes it, student data included."""
    return {
        "sid": sid,
        "examSid": EXAM,
        "enrollmentSid": ENROLLMENT,
        "status": "Scheduled",
        "sessionType": "Automated with review",
        "appointmentDate": "2024-03-01T12:00:00Z",
        "reviewByDate": None,
        "reviewCompletedDate": None,
        "reviewRequired": False,
        "sessionReportCount": 0,
        "exam": {"title": " Midterm 1 ", "courseName": "BIO101", "sid": EXAM},
        "enrollment": {
            "sid": ENROLLMENT,
            "firstName": "Jane",
            "lastName": "Doe",
            "email": "jane.doe@example.edu",
            "userName": "jdoe",
        },
        **fields,
    }


# ── the envelope ─────────────────────────────────────────────────────────────────────────────


def test_a_page_parses_rows_next_and_total() -> None:
    page = discovery.parse_page(envelope([appointment(S1)], next="?offset=25", total=40))
    assert page == Page(results=(appointment(S1),), next="?offset=25", total=40)
    assert page.more


def test_the_last_page_and_an_empty_page_end_the_walk() -> None:
    assert not discovery.parse_page(envelope([appointment(S1)])).more
    assert not discovery.parse_page(envelope([], next="?offset=25")).more
    assert discovery.parse_page(envelope([], next="")).next is None


def test_a_minimal_envelope_is_enough() -> None:
    assert discovery.parse_page(b'{"results": []}') == Page(results=())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>Bad gateway</html>", "body: not JSON"),
        (b"\xff\xfe\xfa", "body: not JSON"),
        (b"[" * 100_000, "body: not JSON"),
        (b"[]", "body: expected an object, got a list"),
        (b'{"message": "Internal server error"}', "results: missing"),
        (b'{"results": null}', "results: expected a list, got null"),
        (b'{"results": {"sid": "x"}}', "results: expected a list, got an object"),
        (b'{"results": [], "next": 25}', "next: expected a link or null, got a number"),
        (b'{"results": [], "total": "12"}', "total: expected a count or null, got a string"),
        (b'{"results": [], "total": true}', "total: expected a count or null, got a boolean"),
        (b'{"results": [], "total": 1.5}', "total: expected a count or null, got a number"),
        (b'{"results": [], "total": -1}', "total: negative"),
    ],
)
def test_a_malformed_page_is_an_error_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(PageError) as caught:
        discovery.parse_page(body)
    assert str(caught.value) == message


# ── next links ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("link", "url"),
    [
        (None, None),
        (f"{FIRST}&offset=25", f"{FIRST}&offset=25"),
        (
            f"/v1/installs/{INSTALL}/reports/appointments?offset=25",
            f"{BASE}/v1/installs/{INSTALL}/reports/appointments?offset=25",
        ),
        (
            "?limit=25&offset=50",
            f"{BASE}/v1/installs/{INSTALL}/reports/appointments?limit=25&offset=50",
        ),
        (
            "HTTPS://API.SmarterProctoring.com:443/v1/x?o=1",
            "https://API.SmarterProctoring.com:443/v1/x?o=1",
        ),
        (f"{FIRST}&offset=25#top", f"{FIRST}&offset=25"),
    ],
)
def test_next_is_absolute_or_relative_to_the_page(link: str | None, url: str | None) -> None:
    assert discovery.resolve_next(link, request_url=FIRST, base_url=BASE) == url


@pytest.mark.parametrize(
    ("link", "shown"),
    [
        ("https://evil.example/v1/installs?offset=25&token=1", "https://evil.example"),
        ("http://api.smarterproctoring.com/v1/x", "http://api.smarterproctoring.com"),
        ("https://api.smarterproctoring.com:8443/v1/x", "https://api.smarterproctoring.com"),
        ("https://api.smarterproctoring.com:x/v1/x", "https://api.smarterproctoring.com"),
        ("//evil.example/v1/x", "https://evil.example"),
        ("https://user@api.smarterproctoring.com/v1/x", "https://api.smarterproctoring.com"),
        ("javascript:alert(1)", "javascript://"),
    ],
)
def test_next_never_leaves_the_api(link: str, shown: str) -> None:
    with pytest.raises(PageError) as caught:
        discovery.resolve_next(link, request_url=FIRST, base_url=BASE)
    assert str(caught.value) == f"next: leads to {shown}, not the API at {BASE}"
    assert "token" not in str(caught.value)


def test_next_pointing_back_at_the_same_page_is_an_error() -> None:
    with pytest.raises(PageError, match="points back at the page just read"):
        discovery.resolve_next(FIRST, request_url=FIRST, base_url=BASE)


def test_a_simulator_on_loopback_is_its_own_api() -> None:
    base = "http://127.0.0.1:8080"
    assert (
        discovery.resolve_next("/v1/x?offset=2", request_url=f"{base}/v1/x", base_url=base)
        == f"{base}/v1/x?offset=2"
    )


# ── rows → watches ───────────────────────────────────────────────────────────────────────────


def test_appointment_rows_become_watches_labelled_from_the_exam_only() -> None:
    page = discovery.parse_page(
        envelope([appointment(S1), appointment(S2, exam={"title": "Final"})])
    )
    found = discovery.appointments(page, install_sid=INSTALL, source=SOURCE)
    assert found == Found(
        watches=(
            Watch(
                SessionKey(INSTALL, EXAM, S1),
                {"exam_title": "Midterm 1", "course": "BIO101"},
                None,
                SOURCE,
            ),
            Watch(SessionKey(INSTALL, EXAM, S2), {"exam_title": "Final"}, None, SOURCE),
        )
    )
    text = repr(found)
    assert all(word not in text for word in ("Jane", "Doe", "jane.doe", "jdoe", ENROLLMENT))


@pytest.mark.parametrize(
    "exam", [None, "Midterm", {"title": "  ", "courseName": 101}, {"title": None}]
)
def test_missing_or_odd_exam_fields_mean_no_label_not_a_skip(exam: object) -> None:
    page = Page(results=(appointment(S1, exam=exam),))
    (watch,) = discovery.appointments(page, install_sid=INSTALL, source=SOURCE).watches
    assert watch.labels == {}


def test_bad_rows_are_skipped_and_counted_the_rest_kept() -> None:
    rows = (
        appointment(S1),
        "ES" + "9" * 32,
        appointment("ESnope"),
        appointment(S2, examSid=None),
        {"examSid": EXAM},
        appointment(S3),
    )
    found = discovery.appointments(Page(results=rows), install_sid=INSTALL, source=SOURCE)
    assert [watch.key.session_sid for watch in found.watches] == [S1, S3]
    assert found.skipped == 4
    assert found.first_skip == "results[1]: expected an object, got a string"


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (appointment("ESnope"), "results[0].sid: missing or not a session SID"),
        (appointment(S1, examSid="EXnope"), "results[0].examSid: missing or not an exam SID"),
    ],
)
def test_a_skip_names_the_field(row: dict[str, Any], why: str) -> None:
    found = discovery.appointments(Page(results=(row,)), install_sid=INSTALL, source=SOURCE)
    assert found == Found(watches=(), skipped=1, first_skip=why)


def test_enrollment_session_rows_take_install_and_exam_from_the_path() -> None:
    rows = [
        {"sid": S1, "status": "Scheduled", "sessionType": "Live", "appointmentDate": None},
        {"sid": S2, "createdDate": "2024-03-01T12:00:00Z", "editDate": None},
        {"sid": 12},
    ]
    source = f"discovery:sessions:{ENROLLMENT}:{EXAM}"
    found = discovery.enrollment_sessions(
        discovery.parse_page(envelope(rows)), install_sid=INSTALL, exam_sid=EXAM, source=source
    )
    assert found.watches == (
        Watch(SessionKey(INSTALL, EXAM, S1), {}, None, source),
        Watch(SessionKey(INSTALL, EXAM, S2), {}, None, source),
    )
    assert (found.skipped, found.first_skip) == (1, "results[2].sid: missing or not a session SID")


def test_paths() -> None:
    assert discovery.appointments_path(INSTALL) == f"/v1/installs/{INSTALL}/reports/appointments"
    assert (
        discovery.sessions_path(INSTALL, ENROLLMENT, EXAM)
        == f"/v1/installs/{INSTALL}/enrollments/{ENROLLMENT}/exams/{EXAM}/sessions"
    )

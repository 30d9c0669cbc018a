"""`spmon once`'s verdict: overdue beats unknown beats OK, and the words never claim more."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.checkup import NOT_POLLED, OK, Exit, Report, Row
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYS = [SessionKey("AI" + "1" * 32, "EX" + "2" * 32, f"ES{n:032x}") for n in range(5)]
LATE = Snapshot("Closed", True, False, NOW - timedelta(hours=3))
FINE = Snapshot("Scheduled", False, False, None)


def rows(*specs: tuple[str, Snapshot | None]) -> list[Row]:
    return [
        Row(KEYS[i], {"course": "BIO101"}, outcome, snap) for i, (outcome, snap) in enumerate(specs)
    ]


@pytest.mark.parametrize(
    ("specs", "exit", "summary"),
    [
        ([(OK, FINE), (OK, FINE)], Exit.OK, "OK: 2 sessions polled, 0 overdue reviews"),
        ([(OK, LATE), (OK, FINE)], Exit.OVERDUE, "OVERDUE: 1 overdue review among 2 sessions"),
        (
            [("auth_failed", None), (NOT_POLLED, None), (NOT_POLLED, None), (OK, FINE), (OK, FINE)],
            Exit.UNKNOWN,
            "UNKNOWN: 3 of 5 sessions could not be polled; 0 overdue among the 2 polled",
        ),
        (
            [("error", LATE), (OK, FINE)],
            Exit.OVERDUE,
            "OVERDUE: 1 overdue review (1 from an earlier poll) among 2 sessions;"
            " 1 of 2 sessions could not be polled",
        ),
        (
            [("invalid", FINE), ("not_found", FINE)],
            Exit.UNKNOWN,
            "UNKNOWN: 2 of 2 sessions could not be polled; 0 overdue among the 0 polled",
        ),
        ([], Exit.UNKNOWN, "UNKNOWN: no sessions are watched"),
    ],
    ids=["all-ok", "overdue", "auth-failed", "stale-overdue", "invalid-and-gone", "no-watches"],
)
def test_exit_status_and_summary(specs: list, exit: Exit, summary: str) -> None:
    report = Report(rows(*specs), NOW)
    assert report.exit is exit
    assert report.summary() == summary


def test_table_marks_rows_shown_from_an_earlier_poll() -> None:
    header, late, never = Report(rows(("error", LATE), (NOT_POLLED, None)), NOW).table()
    assert header.split()[-1] == "POLL"
    assert "3.0h late" in late and late.endswith("error (showing last good)")
    assert never.endswith("not_polled")


_outcomes = st.sampled_from((OK, OK, "error", "invalid", "auth_failed", "not_found", NOT_POLLED))
_rows = st.lists(
    st.builds(
        Row,
        key=strategies.session_keys,
        labels=st.just({}),
        outcome=_outcomes,
        snapshot=st.one_of(st.none(), strategies.snapshots()),
    ).filter(lambda row: row.outcome != OK or row.snapshot is not None),
    max_size=6,
)


@given(found=_rows, now=strategies.aware_instants)
def test_overdue_beats_unknown_beats_ok(found: list[Row], now: datetime) -> None:
    report = Report(found, now)
    if any(row.overdue(now) for row in found):
        assert report.exit is Exit.OVERDUE
    elif not found or any(row.outcome != OK for row in found):
        assert report.exit is Exit.UNKNOWN
    else:
        assert report.exit is Exit.OK


@given(found=_rows, now=strategies.aware_instants)
def test_the_words_match_the_exit_status(found: list[Row], now: datetime) -> None:
    report = Report(found, now)
    text = report.summary()
    assert text.startswith(report.exit.name + ":")
    if report.exit is not Exit.OK:
        assert "0 overdue reviews" not in text  # never an all-clear about what was not seen


@given(found=_rows, now=strategies.aware_instants)
def test_the_json_document_counts_add_up(found: list[Row], now: datetime) -> None:
    doc = json.loads(json.dumps(Report(found, now).document()))
    summary = doc["summary"]
    assert summary["polled"] + summary["failed"] == summary["sessions"] == len(doc["sessions"])
    assert sum(summary["outcomes"].values()) == summary["sessions"]
    assert summary["overdue"] == sum(1 for s in doc["sessions"] if s["overdue"])
    assert doc["exit_code"] == Exit[doc["status"]]

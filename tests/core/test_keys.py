"""SessionKey: the published SID patterns, and the API path built from them."""

from __future__ import annotations

import pytest
import strategies
from hypothesis import given

from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID, SessionKey

HEX = "0123456789abcdef" * 2
VALID = SessionKey("AI" + HEX, "EX" + HEX, "ES" + HEX)


def test_valid_key_has_no_problems() -> None:
    assert VALID.problems() == []


def test_path_follows_the_api() -> None:
    assert VALID.path == f"/v1/installs/AI{HEX}/exams/EX{HEX}/sessions/ES{HEX}"


@given(key=strategies.session_keys)
def test_generated_keys_are_valid_and_address_their_session(key: SessionKey) -> None:
    assert key.problems() == []
    assert key.path.split("/") == [
        "",
        "v1",
        "installs",
        key.install_sid,
        "exams",
        key.exam_sid,
        "sessions",
        key.session_sid,
    ]


@pytest.mark.parametrize(
    "session_sid",
    [
        "ES" + HEX.upper(),  # uppercase hex
        "es" + HEX,  # lowercase prefix
        "EX" + HEX,  # another kind's prefix
        "AI" + HEX,
        "ES" + HEX[:-1],  # 31 hex digits
        "ES" + HEX + "0",  # 33
        "ES" + HEX[:-1] + "g",  # not hex
        "ES" + HEX[:-3] + "../",  # path traversal
        "ES" + HEX[:-1] + "/",
        "ES" + HEX[:-1] + "?",
        "ES" + HEX[:-3] + "%2F",
        " ES" + HEX,
        "ES" + HEX + " ",
        "",
        "ES",
    ],
)
def test_bad_session_sid_is_named(session_sid: str) -> None:
    key = VALID._replace(session_sid=session_sid)
    assert key.problems() == [f"session_sid must match {SESSION_SID.pattern}"]


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("install_sid", "AI" + HEX.upper(), INSTALL_SID.pattern),
        ("install_sid", "ES" + HEX, INSTALL_SID.pattern),
        ("install_sid", "../../admin", INSTALL_SID.pattern),
        ("exam_sid", "EX" + HEX[:16], EXAM_SID.pattern),
        ("exam_sid", "AI" + HEX, EXAM_SID.pattern),
        ("exam_sid", "EX/" + HEX[1:], EXAM_SID.pattern),
    ],
)
def test_each_bad_sid_names_its_own_field(field: str, value: str, pattern: str) -> None:
    key = VALID._replace(**{field: value})
    assert key.problems() == [f"{field} must match {pattern}"]


def test_every_bad_sid_is_reported() -> None:
    key = SessionKey("x", "y", "z")
    problems = key.problems()
    assert len(problems) == 3
    assert [problem.split()[0] for problem in problems] == [
        "install_sid",
        "exam_sid",
        "session_sid",
    ]


def test_key_is_a_small_hashable_record() -> None:
    assert {VALID: 1}[SessionKey(*VALID)] == 1
    assert VALID == ("AI" + HEX, "EX" + HEX, "ES" + HEX)
    assert VALID.session_sid == "ES" + HEX


@pytest.mark.parametrize("field", ["install_sid", "exam_sid", "session_sid"])
def test_trailing_newline_is_rejected(field: str) -> None:
    key = VALID._replace(**{field: getattr(VALID, field) + "\n"})
    assert len(key.problems()) == 1

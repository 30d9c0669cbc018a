"""SessionKey: the API path built from its SIDs (their patterns are checked where watches are
read: tests/test_settings.py)."""

from __future__ import annotations

import strategies
from hypothesis import given

from monitor.core.keys import SessionKey

HEX = "0123456789abcdef" * 2
VALID = SessionKey("AI" + HEX, "EX" + HEX, "ES" + HEX)


def test_path_follows_the_api() -> None:
    assert VALID.path == f"/v1/installs/AI{HEX}/exams/EX{HEX}/sessions/ES{HEX}"


@given(key=strategies.session_keys)
def test_generated_keys_address_their_session(key: SessionKey) -> None:
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


def test_key_is_a_small_hashable_record() -> None:
    assert {VALID: 1}[SessionKey(*VALID)] == 1
    assert VALID == ("AI" + HEX, "EX" + HEX, "ES" + HEX)
    assert VALID.session_sid == "ES" + HEX

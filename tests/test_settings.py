"""Configuration: YAML + env, watch files, and one clear line per bad key without echoing values."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import strategies
from hypothesis import given

from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID, SessionKey
from monitor.settings import Settings, Watch, load_settings
from tests.settingskit import LOCAL, problems, write

SID = {"install_sid": "AI" + "a" * 32, "exam_sid": "EX" + "b" * 32, "session_sid": "ES" + "c" * 32}


def test_defaults_are_those_documented(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "watches": [SID]}))
    assert (s.poll.interval, s.api.concurrency, s.api.rate_limit) == (60.0, 32, 5.0)
    assert s.rules.overdue_repeat == 86400.0 and s.rules.due_soon == 0
    assert s.state.path == Path("spmon.db") and s.http.listen == "127.0.0.1:10317"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"watches": [{**SID, "session_sid": "ES123"}]},
            "watches[0].session_sid: String should match pattern",
        ),
        (
            {"watches": [{**SID, "exam_sid": "EX" + "B" * 32}]},
            "watches[0].exam_sid: String should match pattern",
        ),
        ({"watches": [{**SID, "install_sid": "AI../../etc/passwd"}]}, "watches[0].install_sid"),
        ({"poll": {"interval": -5}}, "poll.interval: Input should be greater than 0"),
        ({"poll": {"interval": "soon"}}, "poll.interval: expected a duration"),
        ({"api": {"rate_limit": 0}}, "api.rate_limit: Input should be greater than 0"),
        ({"api": {"colour": "blue"}}, "api.colour: unknown key"),
        ({"surprise": 1}, "surprise: unknown key"),
        ({"watch_files": ["missing.csv"]}, "watch_files[0] (missing.csv): cannot read"),
        (
            {
                "sinks": [
                    {"name": "x", "type": "webhook", "url": "http://example.com/", "unsigned": True}
                ]
            },
            "use https or set allow_http",
        ),
        (
            {
                "sinks": [
                    {
                        "name": "x",
                        "type": "webhook",
                        "url": "https://e.com",
                        "secret": "whsec_c2hvcnQ=",
                    }
                ]
            },
            "sinks[0].secret: must decode to 24-64 bytes",
        ),
        (
            {"api": {"naive_date_timezone": "Mars/Olympus"}},
            "api.naive_date_timezone: unknown time zone",
        ),
        ({"http": {"page_timezone": "Mars/Olympus"}}, "http.page_timezone: unknown time zone"),
        ({"display": {"timezone": "Mars/Olympus"}}, "display.timezone: unknown time zone"),
        (
            {"display": {"link_template": "proctoring.example.com/{session_sid}"}},
            "display.link_template: expected an http(s) URL",
        ),
        (
            {"display": {"link_template": "https://p.example/{user_sid}"}},
            "display.link_template: placeholders are {install_sid}",
        ),
        (
            {"display": {"link_template": "https://p.example/{session_sid"}},
            "display.link_template: not a template",
        ),
        (
            {"display": {"timezone": "Europe/Berlin"}, "http": {"page_timezone": "UTC"}},
            "display: set display.timezone only",
        ),
        ({"http": {"page_refresh": -1}}, "http.page_refresh: Input should be greater than"),
    ],
)
def test_each_bad_key_gets_one_line_naming_it(tmp_path: Path, data: dict, expected: str) -> None:
    merged = {**LOCAL, **data, "api": {**LOCAL["api"], **data.get("api", {})}}
    lines = problems(write(tmp_path / "c.yaml", merged))
    assert any(line.startswith(expected) or expected in line for line in lines), lines


def test_errors_never_echo_secret_values(tmp_path: Path) -> None:
    secret = "whsec_" + "A" * 10 + "!!notbase64"
    lines = problems(
        write(
            tmp_path / "c.yaml",
            {
                **LOCAL,
                "sinks": [
                    {
                        "name": "x",
                        "type": "webhook",
                        "url": "https://h.example/abc",
                        "secret": secret,
                    }
                ],
            },
        )
    )
    assert lines and all(secret not in line and "notbase64" not in line for line in lines)


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPMON_POLL__INTERVAL", "5m")
    monkeypatch.setenv("SPMON_API__TOKEN", "tok")
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "poll": {"interval": 10}}))
    assert s.poll.interval == 300.0 and s.token() == "tok"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPMON_CONFIG", str(write(tmp_path / "c.yaml", {**LOCAL, "watches": [SID]})))
    assert len(load_settings().watches) == 1


def test_token_file_and_real_api_needs_a_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  jwt-value\n", encoding="utf-8")
    s = load_settings(write(tmp_path / "c.yaml", {"api": {"token_file": "token"}}))
    assert s.token() == "jwt-value"
    assert problems(write(tmp_path / "d.yaml", {})) == [
        "api.token: required for the SmarterProctoring API (SPMON_API__TOKEN)"
    ]


def test_watch_files_csv_and_yaml_with_labels(tmp_path: Path) -> None:
    (tmp_path / "lms.csv").write_text(
        "install_sid,exam_sid,session_sid,course,term\n"
        f"{SID['install_sid']},{SID['exam_sid']},{SID['session_sid']},BIO101,fall\n"
        f"{SID['install_sid']},{SID['exam_sid']},ES{'d' * 32},CHEM201,\n",
        encoding="utf-8",
    )
    write(tmp_path / "more.yaml", [{**SID, "session_sid": "ES" + "e" * 32, "interval": "30s"}])
    s = load_settings(
        write(
            tmp_path / "c.yaml",
            {**LOCAL, "watches": [SID], "watch_files": ["lms.csv", "more.yaml"]},
        )
    )
    watched = [w for listed in s.listings().values() for w in listed.values()]
    assert [w.key.session_sid[-1] for w in watched] == ["c", "d", "e"]  # the duplicate once
    assert watched[0].labels == {}  # the inline entry came first
    assert watched[1].labels == {"course": "CHEM201"}
    assert s.interval_of(watched[2]) == 30.0
    assert s.watch_count == 3 and len(s.watches) == 1  # files are read again, not kept


def test_bad_csv_rows_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "lms.csv").write_text(
        "install_sid,exam_sid,session_sid\nAIx,EXy,ESz\n", encoding="utf-8"
    )
    lines = problems(write(tmp_path / "c.yaml", {**LOCAL, "watch_files": ["lms.csv"]}))
    # Issue 9: one line per problem per file (counted, first line named), not one per row.
    assert (
        lines[0] == "watch_files[0] (lms.csv): 1 row with an invalid install_sid, first at line 2"
    )


def test_capacity_warning(tmp_path: Path) -> None:
    watches = [{**SID, "session_sid": f"ES{n:032x}"} for n in range(600)]
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "watches": watches}))
    assert s.capacity_warning() is not None and "10.0 requests/s" in s.capacity_warning()
    s = load_settings(write(tmp_path / "d.yaml", {**LOCAL, "watches": watches[:10]}))
    assert s.capacity_warning() is None


def test_redacted_masks_every_secret(tmp_path: Path) -> None:
    url = "https://hooks.slack.com/services/T0/B0/secretpath"
    s = load_settings(
        write(
            tmp_path / "c.yaml",
            {
                **LOCAL,
                "api": {**LOCAL["api"], "token": "jwt-secret"},
                "sinks": [
                    {
                        "name": "s",
                        "type": "webhook",
                        "url": url,
                        "unsigned": True,
                        "headers": {"Authorization": "Bearer hunter2"},
                    }
                ],
            },
        )
    )
    text = repr(s.redacted())
    assert "jwt-secret" not in text and "secretpath" not in text and "hunter2" not in text


# -- SIDs: a watch's keys must match the published patterns --------------------------------

HEX32 = "0123456789abcdef" * 2
KEY = SessionKey("AI" + HEX32, "EX" + HEX32, "ES" + HEX32)


def mismatches(key: SessionKey) -> list[tuple[str, str]]:
    """(field, pattern) of each SID a watch refuses."""
    try:
        Watch(**key._asdict())
    except pydantic.ValidationError as exc:
        return [(str(e["loc"][0]), e["ctx"]["pattern"]) for e in exc.errors()]
    return []


def test_a_valid_key_is_a_watch() -> None:
    assert mismatches(KEY) == []
    assert Watch(**KEY._asdict()).key == KEY


@given(key=strategies.session_keys)
def test_generated_keys_are_valid_watches(key: SessionKey) -> None:
    assert mismatches(key) == []


@pytest.mark.parametrize(
    "session_sid",
    [
        "ES" + HEX32.upper(),  # uppercase hex
        "es" + HEX32,  # lowercase prefix
        "EX" + HEX32,  # another kind's prefix
        "AI" + HEX32,
        "ES" + HEX32[:-1],  # 31 hex digits
        "ES" + HEX32 + "0",  # 33
        "ES" + HEX32[:-1] + "g",  # not hex
        "ES" + HEX32[:-3] + "../",  # path traversal
        "ES" + HEX32[:-1] + "/",
        "ES" + HEX32[:-1] + "?",
        "ES" + HEX32[:-3] + "%2F",
        " ES" + HEX32,
        "ES" + HEX32 + " ",
        "",
        "ES",
    ],
)
def test_bad_session_sid_is_named(session_sid: str) -> None:
    assert mismatches(KEY._replace(session_sid=session_sid)) == [
        ("session_sid", SESSION_SID.pattern)
    ]


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("install_sid", "AI" + HEX32.upper(), INSTALL_SID.pattern),
        ("install_sid", "ES" + HEX32, INSTALL_SID.pattern),
        ("install_sid", "../../admin", INSTALL_SID.pattern),
        ("exam_sid", "EX" + HEX32[:16], EXAM_SID.pattern),
        ("exam_sid", "AI" + HEX32, EXAM_SID.pattern),
        ("exam_sid", "EX/" + HEX32[1:], EXAM_SID.pattern),
    ],
)
def test_each_bad_sid_names_its_own_field(field: str, value: str, pattern: str) -> None:
    assert mismatches(KEY._replace(**{field: value})) == [(field, pattern)]


def test_every_bad_sid_is_reported() -> None:
    found = mismatches(SessionKey("x", "y", "z"))
    assert len(found) == 3
    assert [field for field, _ in found] == ["install_sid", "exam_sid", "session_sid"]


@pytest.mark.parametrize("field", ["install_sid", "exam_sid", "session_sid"])
def test_trailing_newline_is_rejected(field: str) -> None:
    assert len(mismatches(KEY._replace(**{field: getattr(KEY, field) + "\n"}))) == 1


def test_the_old_page_timezone_is_still_read_as_the_display_zone() -> None:
    old = Settings(http={"page_timezone": "America/Chicago"})
    assert old.display.timezone == "America/Chicago"
    assert str(old.display.zone) == "America/Chicago"
    assert str(Settings().display.zone) == "UTC"
    same = Settings(http={"page_timezone": "UTC"}, display={"timezone": "UTC"})
    assert same.display.timezone == "UTC"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"api": {"token_file": "bin"}}, "api.token_file"),
        ({**LOCAL, "watches": [SID], "admin": {"token_file": "bin"}}, "admin.token_file"),
        ({**LOCAL, "watches": [SID], "state": {"url_file": "bin"}}, "state.url_file"),
        (
            {
                **LOCAL,
                "watches": [SID],
                "sinks": [{"name": "h", "type": "webhook", "url_file": "bin"}],
            },
            "sinks[0].url_file",
        ),
        (
            {"api": {"auth": {"mode": "oauth", "client_id": "c", "client_secret_file": "bin"}}},
            "api.auth.client_secret_file",
        ),
    ],
)
def test_a_setting_file_that_is_not_text_is_one_line_naming_its_key(
    tmp_path: Path, data: dict[str, object], key: str
) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00secret")
    lines = problems(write(tmp_path / "c.yaml", data))
    assert lines == [f"{key}: {tmp_path / 'bin'} is not UTF-8 text"], lines

"""Configuration: YAML + env, watch files, and one clear line per bad key without echoing values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.settings import ConfigError, load_settings

SID = {"install_sid": "AI" + "a" * 32, "exam_sid": "EX" + "b" * 32, "session_sid": "ES" + "c" * 32}
LOCAL = {"api": {"base_url": "http://127.0.0.1:9"}}


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.lines


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
    assert [w.session_sid[-1] for w in s.watches] == [
        "c",
        "d",
        "e",
    ]  # the duplicate is watched once
    assert s.watches[0].labels == {}  # the inline entry came first
    assert s.watches[1].labels == {"course": "CHEM201"}
    assert s.interval_of(s.watches[2]) == 30.0


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

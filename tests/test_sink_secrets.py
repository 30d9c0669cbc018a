"""Sink secrets from files and the environment (url_file, secret_file, email.password_file,
${NAME}): read at load, validated like inline values, never in check-config or the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from structlog.typing import EventDict

from monitor.cli import main
from monitor.settings import ConfigError, load_settings
from monitor.wiring import build_sinks
from tests.conftest import assert_no_secrets
from tests.sinks.sinkkit import SECRET, Receiver, make_event, running, scripted
from tests.test_dispatcher import rows_of, until

SLACK_PATH = "/services/T0SECRET/B0SECRET/xoxsecretpath"
PASSWORD = "s3cret-smtp-pass"


def write(tmp_path: Path, sinks: list[dict[str, Any]]) -> Path:
    config = tmp_path / "spmon.yaml"
    config.write_text(
        yaml.safe_dump({"api": {"base_url": "http://127.0.0.1:9"}, "sinks": sinks}),
        encoding="utf-8",
    )
    return config


def files(tmp_path: Path, url: str) -> list[dict[str, Any]]:
    (tmp_path / "slack-url").write_text(url + "\n", encoding="utf-8")
    (tmp_path / "hook-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "smtp-password").write_text(PASSWORD, encoding="utf-8")
    return [
        {"name": "chat", "type": "teams", "url_file": "slack-url", "allow_private": True},
        {"name": "hook", "type": "webhook", "url": url, "secret_file": "hook-secret",
         "allow_private": True},
        {"name": "mail", "type": "email", "allow_private": True,
         "email": {"host": "127.0.0.1", "from": "a@example.edu", "to": ["b@example.edu"],
                   "username": "spmon", "password_file": "smtp-password"}},
    ]  # fmt: skip


def test_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, files(tmp_path, "https://example.com" + SLACK_PATH)))
    chat, hook, mail = settings.sinks
    assert chat.url is not None and chat.url.get_secret_value().endswith(SLACK_PATH)
    assert chat.url_file == tmp_path / "slack-url"
    assert hook.signing_secrets() == [SECRET]
    assert mail.email is not None and mail.email.password is not None
    assert mail.email.password.get_secret_value() == PASSWORD
    assert {PASSWORD, SECRET} <= set(mail.secret_values() + hook.secret_values())


def test_environment_references_are_substituted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAMS_URL", "https://example.com" + SLACK_PATH)
    sinks = [{"name": "chat", "type": "teams", "url": "${TEAMS_URL}",
              "headers": {"x-note": "$${LITERAL}"}}]  # fmt: skip
    (chat,) = load_settings(write(tmp_path, sinks)).sinks
    assert chat.url is not None and chat.url.get_secret_value().endswith(SLACK_PATH)
    assert chat.headers["x-note"].get_secret_value() == "${LITERAL}"


@pytest.mark.parametrize(
    ("sink", "line"),
    [
        ({"url_file": "missing"}, "sinks[0].url_file: cannot read {tmp}/missing (No such file"),
        ({"url_file": "empty"}, "sinks[0].url_file: {tmp}/empty is empty"),
        ({"url_file": "empty", "url": "https://x.example"}, "sinks[0].url_file: give url or"),
        ({"url": "${NOT_SET_ANYWHERE}"}, "sinks[0].url: environment variable NOT_SET_ANYWHERE"),
    ],
)
def test_a_bad_reference_is_one_line_naming_the_key(
    tmp_path: Path, sink: dict[str, str], line: str
) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, [{"name": "chat", "type": "teams", **sink}]))
    (only,) = caught.value.lines
    assert only.startswith(line.format(tmp=tmp_path))


def test_check_config_shows_the_files_never_the_values(tmp_path: Path) -> None:
    config = write(tmp_path, files(tmp_path, "https://example.com" + SLACK_PATH))
    result = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "slack-url" in result.output and "from: a@example.edu" in result.output
    for secret in (SLACK_PATH, "xoxsecretpath", PASSWORD, SECRET):
        assert secret not in result.output


async def test_a_url_from_a_file_never_reaches_the_log(
    endpoint: Any, tmp_path: Path, log_events: list[EventDict]
) -> None:
    server: Receiver = await endpoint(scripted(500, 410))
    settings = load_settings(write(tmp_path, files(tmp_path, server.url + SLACK_PATH)))
    (chat,) = build_sinks(settings.sinks[:1])
    async with running(tmp_path / "s.db", [chat], events=[make_event(1, 1)]) as (_, store):
        await until(lambda: _has(store, "dead"), "disabled after a 500 and a 410")
    assert len(server.hits) == 2
    assert_no_secrets(log_events, SLACK_PATH, "xoxsecretpath", server.url + "/services")


async def _has(store: Any, state: str) -> bool:
    return bool((await rows_of(store)).get(state))

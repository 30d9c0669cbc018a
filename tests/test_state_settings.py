"""`state:`: a PostgreSQL URL inline, from a file or the environment; one line naming the key
when it is wrong; its password masked wherever the configuration is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from monitor.cli import main
from monitor.logs import Redactor
from monitor.settings import load_settings
from monitor.wiring import register_secrets
from tests.settingskit import LOCAL, problems, write

URL = "postgresql://spmon:hunter2-pass@db.internal:5432/spmon?sslmode=require"


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "c.yaml", LOCAL))
    assert s.state.where() == Path("spmon.db") and s.state.url is None


def test_a_url_selects_postgres_and_shows_masked(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "state": {"url": URL}}))
    where = s.state.where()
    assert isinstance(where, SecretStr) and where.get_secret_value() == URL
    assert s.state.shown() == "postgresql://spmon:***@db.internal:5432/spmon?sslmode=require"
    assert "hunter2-pass" not in repr(s) and "hunter2-pass" not in str(s.redacted())
    redactor = Redactor()
    register_secrets(s, redactor)
    assert "hunter2-pass" not in redactor.scrub(f"connection to {URL} failed")


def test_the_url_from_a_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "db-url").write_text(URL + "\n", encoding="utf-8")
    s = load_settings(write(tmp_path / "c.yaml", {**LOCAL, "state": {"url_file": "db-url"}}))
    assert s.state.url is not None and s.state.url.get_secret_value() == URL


def test_the_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPMON_STATE__URL", "postgresql://spmon@db/spmon")
    s = load_settings(write(tmp_path / "c.yaml", LOCAL))
    assert s.state.shown() == "postgresql://spmon@db/spmon"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"url": "mysql://x@y/z"}, "state.url: must be a postgresql:// URL"),
        ({"url": URL, "url_file": "f"}, "state: set state.url or state.url_file, not both"),
        ({"url_file": "missing"}, "state.url_file: cannot read"),
    ],
)
def test_a_bad_state_is_one_line_naming_the_key(
    tmp_path: Path, state: dict[str, str], expected: str
) -> None:
    (found,) = problems(write(tmp_path / "c.yaml", {**LOCAL, "state": state}))
    assert found.startswith(expected), found
    assert "hunter2-pass" not in found


def test_check_config_masks_the_password(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", {**LOCAL, "state": {"url": URL}})
    done = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "url: postgresql://spmon:***@db.internal:5432/spmon" in done.output
    assert "hunter2-pass" not in done.output


def test_once_dry_run_on_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", {**LOCAL, "state": {"url": URL}})
    done = CliRunner().invoke(main, ["once", "--dry-run", "--config", str(config)])
    assert done.exit_code == 2
    assert "--dry-run needs a SQLite state file" in done.output
    assert "hunter2-pass" not in done.output

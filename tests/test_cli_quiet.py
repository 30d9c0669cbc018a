"""`spmon quiet add|ls|rm` on a real state file: windows written without the service's lock
(as beside a running service), listed, removed; bad input is one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.store import SqliteStore


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"base_url": "http://127.0.0.1:9", "token": "t"},
                "state": {"path": str(tmp_path / "s.db")},
                "sinks": [{"name": "slack", "type": "slack", "timezone": "America/Chicago",
                           "url": "https://hooks.slack.com/services/T/B/x"}],
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    return config


async def test_add_ls_rm(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with SqliteStore(tmp_path / "s.db"):  # a service holding the lock (CLI in a thread)
        runner = CliRunner()
        added = await asyncio.to_thread(runner.invoke,
            main, ["quiet", "add", "slack", "--config", str(config), "--until", "2h",
                   "--reason", "LMS upgrade"],
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert added.output.startswith("quiet window 1: slack from ")
        fixed = await asyncio.to_thread(runner.invoke,
            main, ["quiet", "add", "slack", "--config", str(config),
                   "--from", "2099-12-24T18:00", "--until", "2099-12-24T20:00"],
        )  # fmt: skip
        assert fixed.exit_code == 0, fixed.output
        assert "2099-12-25T00:00:00Z until 2099-12-25T02:00:00Z" in fixed.output  # Chicago
        listed = await asyncio.to_thread(
            runner.invoke, main, ["quiet", "ls", "--config", str(config)]
        )
        assert listed.exit_code == 0 and "LMS upgrade" in listed.output
        assert len(listed.output.splitlines()) == 3
        removed = await asyncio.to_thread(
            runner.invoke, main, ["quiet", "rm", "1", "--config", str(config)]
        )
        assert removed.exit_code == 0, removed.output
        listed = await asyncio.to_thread(
            runner.invoke, main, ["quiet", "ls", "--config", str(config)]
        )
        assert "LMS upgrade" not in listed.output


async def test_refusals_are_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with SqliteStore(tmp_path / "s.db"):
        runner = CliRunner()
        unknown = await asyncio.to_thread(
            runner.invoke, main, ["quiet", "add", "pager", "--config", str(config), "--until", "1h"]
        )
        assert unknown.exit_code == 2 and "no sink named 'pager'" in unknown.output
        past = await asyncio.to_thread(
            runner.invoke,
            main,
            ["quiet", "add", "slack", "--config", str(config), "--until", "2020-01-01"],
        )
        assert past.exit_code == 2 and "not in the future" in past.output
        gone = await asyncio.to_thread(
            runner.invoke, main, ["quiet", "rm", "7", "--config", str(config)]
        )
        assert gone.exit_code == 2 and "no quiet window 7" in gone.output

"""A state file spmon cannot use stops it with one line and exit 2, and is left as it was
(issue 7, point 12): never a traceback, never a silent fresh start over an emptied file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import monitor.store
from monitor.simulator import make_keys
from monitor.store import SqliteStore
from tests.conftest import watches_of
from tests.e2e.helpers import write_config

# Every migration raises the schema this build knows (issue 9 added the watch table).
KNOWN = len(list((Path(__file__).parents[2] / "monitor/store/schema").glob("*.sql")))

pytestmark = pytest.mark.slow


def lock_down(path: Path) -> Callable[[], None]:
    """Make `path` unwritable even for root (CI runs as root): the immutable flag there, the
    mode bits otherwise. Returns the undo."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
        return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)
    mode = path.stat().st_mode
    path.chmod(mode & 0o555)
    return lambda: path.chmod(mode)


def spmon_state(path: Path) -> None:
    """A real spmon state file with a pending alert in it."""

    async def make() -> None:
        async with SqliteStore(path):
            pass

    asyncio.run(make())
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO outbox (event_id, sink, session_sid, event_type, payload, created_at,"
            " next_attempt_at) VALUES ('evt_1', 'hook', 'ES1', 'review.overdue', x'7b7d', 1, 1)"
        )


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)


def truncated_half(path: Path) -> None:
    spmon_state(path)
    with (
        contextlib.closing(sqlite3.connect(path)) as db,
        db,
    ):  # enough pages that half of them is a broken database
        db.execute("CREATE TABLE filler (x)")
        db.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 2000,) for _ in range(50)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE users (name TEXT)")


SCHEMAS = len(list((Path(monitor.store.__file__).parent / "schema").glob("*.sql")))
"""The migrations this build knows (each new one raises it)."""


def newer(path: Path) -> None:
    spmon_state(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA user_version=99")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda p: p.write_bytes(b""), "is empty; it may have been truncated"),
    "garbage": (garbage, "is not an SQLite database"),
    "truncated": (truncated_half, "is truncated ("),
    "foreign": (foreign, "is an SQLite database but not a spmon state file (tables: users)"),
    "newer": (newer, f"was written by a newer spmon (schema 99; this build knows up to {SCHEMAS})"),
    "directory": (lambda p: p.mkdir(), "is a directory, not a file"),
    "read-only": (spmon_state, "is read-only (spmon must write to it)"),
    "read-only-dir": (spmon_state, "its directory {dir} is read-only (SQLite writes -wal"),
}


@pytest.fixture
def undo() -> Iterator[list[Callable[[], None]]]:
    pending: list[Callable[[], None]] = []
    yield pending
    for step in reversed(pending):
        step()


def snapshot(path: Path) -> object:
    if path.is_dir():
        return sorted(p.name for p in path.iterdir())
    return path.read_bytes()


@pytest.mark.parametrize("command", ["run", "once"])
@pytest.mark.parametrize("case", list(CASES))
def test_an_unusable_state_file_is_one_line_and_exit_2(
    case: str, command: str, tmp_path: Path, undo: list[Callable[[], None]]
) -> None:
    make, reason = CASES[case]
    state = tmp_path / "state" / "spmon.db"
    state.parent.mkdir()
    make(state)
    if case == "read-only":
        undo.append(lock_down(state))
    if case == "read-only-dir":
        undo.append(lock_down(state.parent))
    before = snapshot(state)
    config = write_config(
        tmp_path / "c.yaml", api_url="http://127.0.0.1:9", watches=watches_of(make_keys(1)),
        state=state,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "monitor", command, "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "SPMON_HTTP__LISTEN": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"spmon: state file {state}: {reason.format(dir=state.parent)}")
    assert "Traceback" not in done.stdout + done.stderr
    assert snapshot(state) == before, "a refused state file must be left exactly as it was"
    assert not list(state.parent.glob(".*.new")), "no scratch file left behind"

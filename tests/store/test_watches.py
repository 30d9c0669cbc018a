"""The watch set in a real SQLite file and a real PostgreSQL database: reconcile writes, hand edits, history, read-only view."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.core.keys import SessionKey
from monitor.core.watches import Changes, Watch
from monitor.store import Where, open_store, read_watches

INSTALL, EXAM = "AI" + "a" * 32, "EX" + "b" * 32


def key(n: int, exam: str = EXAM) -> SessionKey:
    return SessionKey(INSTALL, exam, f"ES{n:032x}")


async def test_changes_apply_in_one_go_and_survive_reopen(where: Where) -> None:
    one = Watch(key(1), {"course": "BIO"}, 30.0, "file:a.csv")
    two = Watch(key(2), source="inline")
    async with open_store(where) as store:
        await store.apply_watches(Changes(added=(one, two)), now=10.0)
        relabelled = Watch(key(1), {"course": "CHEM"}, None, "file:a.csv")
        await store.apply_watches(Changes(changed=(relabelled,), removed=(two,)), now=20.0)
    async with open_store(where) as store:
        assert await store.active_watches() == {key(1): relabelled}
        history = await store.watch_history()
    assert [(r.watch.key, r.added_at, r.removed_at) for r in history] == [
        (key(1), 10.0, None),
        (key(2), 10.0, 20.0),
    ]


async def test_a_session_watched_again_gets_a_new_row_and_keeps_the_old(where: Where) -> None:
    async with open_store(where) as store:
        assert await store.add_watch(Watch(key(1), source="cli"), now=1.0) is None
        assert (await store.remove_watch(key(1).session_sid, now=2.0)) == Watch(
            key(1), source="cli"
        )
        assert await store.remove_watch(key(1).session_sid, now=3.0) is None
        assert await store.add_watch(Watch(key(1), source="cli"), now=4.0) is None
        history = await store.watch_history()
    assert [(r.added_at, r.removed_at) for r in history] == [(1.0, 2.0), (4.0, None)]


async def test_one_open_row_per_session_sid_even_across_exams(where: Where) -> None:
    moved = Watch(key(1, exam="EX" + "c" * 32), source="inline")
    async with open_store(where) as store:
        await store.apply_watches(Changes(added=(Watch(key(1)),)), now=1.0)
        await store.apply_watches(Changes(added=(moved,)), now=2.0)  # its old key not removed
        assert await store.active_watches() == {moved.key: moved}
        held = await store.add_watch(Watch(key(1), source="cli"), now=3.0)
    assert held == moved


async def test_the_reader_reads_beside_a_running_store_and_writes_nothing(
    where: Where,
) -> None:
    async with open_store(where) as store:
        await store.add_watch(Watch(key(1), {"k": "v"}, source="cli"), now=1.0)
        async with read_watches(where) as reader:  # the running store holds the lock
            assert await reader.active_watches() == {key(1): Watch(key(1), {"k": "v"}, None, "cli")}
            assert [r.removed_at for r in await reader.watch_history()] == [None]


async def test_a_state_file_from_before_the_watch_table_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE session (session_sid TEXT PRIMARY KEY); PRAGMA user_version=2;")
    db.close()
    async with read_watches(path) as reader:
        assert await reader.active_watches() == {}
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"session"}  # nothing was created in the real file

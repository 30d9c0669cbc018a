"""`spmon outbox list|retry|purge` on a real state file, while another process holds its lock."""

from __future__ import annotations

import asyncio
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.core.events import EventType
from monitor.store import SqliteStore
from tests.sinks.sinkkit import make_event


async def _prepare(path: Path) -> None:
    """hook: one dead, one delivered, one pending; am: an overdue alert, delivered (firing)."""
    events = [make_event(n, 1) for n in (1, 2, 3)]
    firing = make_event(4, 1, kind=EventType.REVIEW_OVERDUE)
    async with SqliteStore(path) as store:
        now = time.time() - 3600
        await store.enqueue([(e, ["hook"]) for e in events], now)
        await store.enqueue([(firing, ["am"])], now)
        rows = await store.claim("hook", now=time.time(), limit=10, owner="t", lease=60)
        await store.mark_dead(rows[0].id, owner="t", error="HTTP 422")
        await store.mark_delivered(rows[1].id, owner="t", now=time.time())
        await store.release("t")
        (alert,) = await store.claim("am", now=time.time(), limit=10, owner="t", lease=60)
        await store.mark_delivered(alert.id, owner="t", now=time.time())
        await store.disable_sink("gone", fingerprint="f", reason="HTTP 410", now=time.time())


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A prepared state file whose lock is held, as by a running `spmon run`."""
    path = tmp_path / "spmon.db"
    asyncio.run(_prepare(path))
    with path.open("rb") as held:  # `spmon run` flocks the database file itself
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield path


def spmon(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_pending_and_dead_with_their_errors(state: Path) -> None:
    code, out, err = spmon("outbox", "list", "--db", str(state))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATE", "SINK", "TYPE"]
    assert [line.split()[1] for line in lines[1:-1]] == ["dead", "pending"]
    assert "HTTP 422" in out
    assert lines[-1] == "2 deliveries"
    assert "sink gone DISABLED" in err


def test_list_filters_by_state_and_sink(state: Path) -> None:
    code, out, _ = spmon(
        "outbox", "list", "--db", str(state), "--state", "delivered", "--sink", "am"
    )
    assert code == 0
    assert "review.overdue" in out
    assert out.splitlines()[-1] == "1 deliveries"


def test_retry_requeues_dead_rows_with_their_ids(state: Path) -> None:
    assert spmon("outbox", "retry", "--db", str(state))[0] == 2  # must name what to retry
    code, out, _ = spmon("outbox", "retry", "--db", str(state), "--sink", "hook")
    assert code == 0
    assert out.startswith("re-queued 1 dead deliveries")
    _, listed, _ = spmon("outbox", "list", "--db", str(state), "--state", "dead")
    assert listed.splitlines()[-1] == "0 deliveries"


def test_purge_keeps_the_row_that_says_an_alert_is_firing(state: Path) -> None:
    code, out, _ = spmon("outbox", "purge", "--db", str(state), "--state", "delivered")
    assert code == 0
    assert out.strip() == "purged 1 delivered deliveries"  # the hook row, not the alert
    _, listed, _ = spmon("outbox", "list", "--db", str(state), "--state", "delivered")
    assert "review.overdue" in listed


def test_purge_older_than_spares_recent_rows(state: Path) -> None:
    code, out, _ = spmon("outbox", "purge", "--db", str(state), "--older-than", "2h")
    assert code == 0
    assert out.strip() == "purged 0 delivered deliveries"
    assert spmon("outbox", "purge", "--db", str(state), "--older-than", "soon")[0] == 2


def test_a_missing_state_file_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = spmon("outbox", "list", "--db", str(tmp_path / "nope.db"))
    assert code == 2
    assert "no state file at" in err


async def _backed_off(path: Path) -> None:
    """hook: one row retrying in an hour (its receiver failed), one due; other: one waiting."""
    async with SqliteStore(path) as store:
        now = time.time()
        await store.enqueue([(make_event(n, 1), ["hook"]) for n in (1, 2)], now)
        await store.enqueue([(make_event(3, 1), ["other"])], now)
        for sink in ("hook", "other"):
            row = (await store.claim(sink, now=now, limit=1, owner="t", lease=60))[0]
            await store.mark_retry(row.id, owner="t", next_attempt_at=now + 3600, error="HTTP 500")


def test_retry_pending_makes_one_sinks_waiting_deliveries_due_now(tmp_path: Path) -> None:
    path = tmp_path / "spmon.db"
    asyncio.run(_backed_off(path))
    assert spmon("outbox", "retry", "--db", str(path), "--pending")[0] == 2  # name a sink
    assert spmon("outbox", "retry", "--db", str(path), "--pending", "--id", "1")[0] == 2
    code, out, err = spmon("outbox", "retry", "--db", str(path), "--pending", "--sink", "hook")
    assert code == 0, err
    assert out.startswith("made 1 pending deliveries due now")
    _, listed, _ = spmon("outbox", "list", "--db", str(path), "--state", "pending")
    nexts = {line.split()[2]: line.split()[8] for line in listed.splitlines()[1:-1]}
    assert nexts == {"hook": "now", "other": "in"}  # "in 59m…": the other sink's row waits
    code, out, _ = spmon("outbox", "retry", "--db", str(path), "--pending", "--all")
    assert out.startswith("made 1 pending deliveries due now")

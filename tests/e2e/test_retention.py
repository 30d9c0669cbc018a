"""`spmon run` purges settled outbox rows past outbox.retention at start (then hourly) and
counts them; a bad retention stops start-up naming the key (issue 7, point 13)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.store import SqliteStore
from tests.conftest import watches_of
from tests.e2e.helpers import start, write_config
from tests.sinks.sinkkit import make_event

pytestmark = pytest.mark.slow
DAY = 86400.0


async def test_run_purges_old_settled_rows_and_counts_them(
    simulator, tmp_path: Path, unused_tcp_port: int
) -> None:
    sim = await simulator(1)
    state = tmp_path / "spmon.db"
    old, pending, recent = make_event(1, 1), make_event(2, 1), make_event(3, 1)
    async with SqliteStore(state) as store:
        await store.enqueue([(e, ["gone-sink"]) for e in (old, pending, recent)], time.time())
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        db.executemany(
            "UPDATE outbox SET state=?, created_at=? WHERE event_id=?",
            [
                ("delivered", time.time() - 8 * DAY, old.id),
                ("pending", time.time() - 8 * DAY, pending.id),
                ("delivered", time.time() - 6 * DAY, recent.id),
            ],
        )
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=state,
        outbox={"retention": "7d"},
    )  # fmt: skip
    proc = await start(config, unused_tcp_port, tmp_path / "spmon.log")
    try:
        await proc.wait_ready()
        async with asyncio.timeout(20):
            while 'spmon_outbox_purged_total{state="delivered"} 1.0' not in (
                metrics := await proc.metrics()
            ):
                await asyncio.sleep(0.1)
    finally:
        assert await proc.stop() == 0, proc.output()
    assert 'spmon_outbox_purged_total{state="dead"} 0.0' in metrics
    with contextlib.closing(sqlite3.connect(state)) as db:
        kept = dict(db.execute("SELECT event_id, state FROM outbox WHERE sink='gone-sink'"))
    assert kept == {pending.id: "pending", recent.id: "delivered"}
    assert '"event": "outbox.purged"' in proc.output()


def test_a_bad_retention_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", api_url="http://127.0.0.1:9", watches=[], state=tmp_path / "s.db",
        outbox={"retention": "forever"},
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("spmon: config error: outbox.retention: ")

"""A delivery that kills the process is not retried forever (issue 7, point 11): attempts count
at claim, and a row that used them all without an answer is dead-lettered at the next claim,
"crashed during delivery", while every other row keeps flowing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import watches_of
from tests.e2e.helpers import outbox_rows, start, write_config
from tests.sinks.sinkkit import Hit

pytestmark = pytest.mark.slow
ATTEMPTS = 2


def session_of(hit: Hit) -> str:
    body: Any = hit.json()
    return str(body["data"]["session"]["session_sid"])


async def test_a_delivery_that_kills_the_process_is_dead_lettered_after_its_attempts(
    simulator, endpoint, tmp_path: Path, unused_tcp_port: int
) -> None:
    sim = await simulator(2)
    deadly, healthy = sim.keys
    for key in sim.keys:
        sim.sim.set(
            key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None
        )
    poison: list[str] = []  # the webhook-id whose delivery "kills" spmon (the test does it)

    async def respond(hit: Hit) -> web.StreamResponse:
        if session_of(hit) == deadly.session_sid and not poison:
            poison.append(hit.headers["webhook-id"])
        if hit.headers["webhook-id"] in poison:
            return await hit.hang()
        return web.Response(status=204)

    hook = await endpoint(respond)
    state = tmp_path / "spmon.db"
    sink = {
        "name": "hook", "type": "webhook", "url": f"{hook.url}/hook", "timeout": "60s",
        "allow_private": True, "unsigned": True,
        "retry_schedule": ["0s", "1s"],  # ATTEMPTS attempts, then dead
    }  # fmt: skip
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=state,
        sinks=[sink],
    )  # fmt: skip
    log = tmp_path / "spmon.log"

    def poisoned() -> int:
        return sum(1 for hit in hook.hits if hit.headers["webhook-id"] in poison)

    for attempt in range(1, ATTEMPTS + 1):
        proc = await start(config, unused_tcp_port, log)
        await proc.wait_ready()
        if attempt == 1:
            await asyncio.sleep(1.5)  # baselined
            sim.sim.set(deadly, status="Closed")
        await hook.until(lambda _r, n=attempt: poisoned() == n, what=f"poison attempt {attempt}")
        await proc.stop(signal.SIGKILL)  # the delivery "crashed the process"

    proc = await start(config, unused_tcp_port, log)
    try:
        await proc.wait_ready()
        sim.sim.set(healthy, status="Closed")
        sim.sim.set(deadly, status="Incident")  # its next alert is no longer stuck behind it
        await hook.until(
            lambda r: sum(1 for hit in r.hits if hit.headers["webhook-id"] not in poison) == 2,
            what="the other two alerts",
        )
        await asyncio.sleep(1.0)  # time for a third poison attempt, which must not come
        metrics = await proc.metrics()
    finally:
        assert await proc.stop() == 0, proc.output()
    assert poisoned() == ATTEMPTS
    rows = {row[0]: row for row in outbox_rows(state)}
    assert rows.pop(poison[0])[2:] == ("dead", ATTEMPTS)
    assert [row[2] for row in rows.values()] == ["delivered", "delivered"]
    assert 'spmon_notifications_total{outcome="dead",sink="hook"} 1.0' in metrics
    assert "crashed during delivery" in proc.output()

    listed = subprocess.run(
        [sys.executable, "-m", "monitor", "outbox", "list", "--db", str(state)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    (line,) = [line for line in listed.stdout.splitlines() if poison[0] in line]
    assert line.split()[1] == "dead"
    assert line.endswith("crashed during delivery")

"""`python -m monitor run` killed with SIGKILL while a delivery is in flight: after a restart
every pending delivery completes, with the ids it had before; the one that was in flight is
sent again under the same id (the receiver can de-duplicate). Runs with TZ=Asia/Bangkok and
rotating secrets; no secret reaches the logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from monitor.simulator import Simulator, make_keys, serve
from tests.sinks.sinkkit import SECRET, SECRET_OLD, Hit, Receiver, verifier

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
SESSIONS = 8
PATH_SECRET = "s3cret-path-7f1c9e"
BEARER = "sekrit-bearer-4d2a88"


def slow_ok() -> Callable[[Hit], Awaitable[web.StreamResponse]]:
    """503 for the very first request (so failure paths log too), then slow 204s."""
    answered: list[int] = []

    async def respond(_hit: Hit) -> web.StreamResponse:
        answered.append(1)
        if len(answered) == 1:
            return web.Response(status=503)
        await asyncio.sleep(0.4)  # long enough that a kill lands mid-request
        return web.Response(status=204)

    return respond


class Spmon:
    """One `spmon run` child process with its output in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "TZ": "Asia/Bangkok", "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "run", "--config", str(self.config),
                stdout=out, stderr=out, env=env,
            )  # fmt: skip

    async def stop(self, sig: int) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(30):
            return await self.process.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Receiver, list[str]]]:
    rejected: list[str] = []
    server = Receiver(verifier(SECRET, then=slow_ok(), rejected=rejected))
    await server.start()
    yield server, rejected
    await server.stop()


def write_config(path: Path, *, api_url: str, hook_url: str, sim: Simulator, state: Path) -> None:
    config: dict[str, Any] = {
        "api": {"base_url": api_url, "rate_limit": 100, "timeout": "5s"},
        "poll": {"interval": "300ms", "jitter": 0},
        "rules": {"overdue_repeat": 0},
        "state": {"path": str(state)},
        "http": {"listen": ""},
        "log": {"format": "json", "level": "debug"},
        "watches": [{**k._asdict(), "labels": {"course": "BIO101"}} for k in sim.keys],
        "sinks": [
            {
                "name": "hook",
                "type": "webhook",
                "url": f"{hook_url}/hook/{PATH_SECRET}",
                "allow_private": True,
                "secret": SECRET_OLD,
                "secrets": [SECRET],
                "headers": {"Authorization": f"Bearer {BEARER}"},
                "concurrency": 1,
                "retry_schedule": [0, "200ms", "200ms", "200ms", "200ms"],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def outbox(state: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT event_id, session_sid, state FROM outbox ORDER BY id")
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_sigkill_mid_delivery_then_restart_delivers_everything_with_the_same_ids(
    hook: tuple[Receiver, list[str]], tmp_path: Path
) -> None:
    server, rejected = hook
    keys = make_keys(SESSIONS, seed=11)
    sim = Simulator(keys, evolve=False)
    for key in keys:
        sim.set(key, status="Scheduled", reviewRequired=False)
    state = tmp_path / "spmon.db"
    config = tmp_path / "spmon.yaml"
    async with serve(sim) as api_url:
        write_config(config, api_url=api_url, hook_url=server.url, sim=sim, state=state)
        first = Spmon(config, tmp_path / "first.log")
        await first.start()
        async with asyncio.timeout(45):
            while sim.requests < 3 * SESSIONS:  # every session has a committed baseline
                await asyncio.sleep(0.05)
        for key in keys:
            sim.set(key, status="Closed")
        await server.until(lambda r: len(r.hits) >= 4, what="a failure, then deliveries")
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        in_flight = server.ids()[-1]
        rows = outbox(state)
        assert len(rows) == SESSIONS
        assert any(row[2] == "pending" for row in rows)

        second = Spmon(config, tmp_path / "second.log")
        await second.start()
        ids = {row[0] for row in rows}
        await server.until(lambda r: set(r.ids()) >= ids, what="every delivery", within=60)
        async with asyncio.timeout(30):
            while any(row[2] != "delivered" for row in outbox(state)):
                await asyncio.sleep(0.05)
        assert await second.stop(signal.SIGTERM) == 0

    received = Counter(server.ids())
    assert set(received) == ids  # nothing lost, no new id
    assert received[in_flight] >= 2  # the interrupted delivery was sent again, same id
    assert [row[0] for row in outbox(state)] == [row[0] for row in rows]  # no new rows
    assert rejected == []  # TZ=Asia/Bangkok: still verifies
    for hit in server.hits:
        assert hit.headers["Authorization"] == f"Bearer {BEARER}"
        assert len(hit.headers["webhook-signature"].split(" ")) == 2
        Webhook(SECRET_OLD).verify(hit.body, dict(hit.headers))
    logs = first.output() + second.output()
    assert "delivery.failed" in logs  # the failure path logged, so the check below means something
    signatures = [part for hit in server.hits for part in hit.headers["webhook-signature"].split()]
    for secret in [PATH_SECRET, BEARER, SECRET, SECRET_OLD, *signatures]:
        assert secret not in logs
    for line in second.output().splitlines():
        json.loads(line)  # JSON logs, one event per line

"""`python -m monitor run` against the simulator and Slack-like receivers on 127.0.0.1, the way
an operator runs it: a first start with reviews already overdue sends one summary per sink,
and a quiet window set with `spmon quiet add` beside the running service holds every alert
through a SIGKILL and a restart, then sends them as one digest."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from monitor.core.events import isoformat
from monitor.simulator import Simulator, make_keys, serve
from tests.e2e.test_delivery_crash import Spmon
from tests.sinks.sinkkit import Hit, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def _ok(_hit: Hit) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


def _overdue_sim(n: int, seed: int) -> Simulator:
    keys = make_keys(n, seed=seed)
    sim = Simulator(keys, evolve=False)
    late = datetime.now(UTC) - timedelta(hours=3)  # the simulator's clock is real
    for i, key in enumerate(keys):
        deadline = isoformat(late - timedelta(minutes=i))
        sim.set(key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=deadline)
    return sim


def _config(path: Path, *, api: str, sim: Simulator, state: Path, sinks: list[Any]) -> Path:
    config = {
        "api": {"base_url": api, "rate_limit": 200, "timeout": "5s", "retries": 0},
        "poll": {"interval": "500ms", "jitter": 0},
        "rules": {"overdue_repeat": 0},
        "state": {"path": str(state)},
        "http": {"listen": "", "public_url": "https://spmon.example.edu"},
        "log": {"format": "json", "level": "info"},
        "watches": [{**k._asdict(), "labels": {"course": "BIO101"}} for k in sim.keys],
        "sinks": sinks,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _states(state: Path) -> list[str]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT state FROM outbox ORDER BY id")]


def _said(hit: Hit) -> str:
    body = hit.json()
    assert isinstance(body, dict)
    return str(body.get("text") or body.get("summary"))


async def test_first_start_with_24_overdue_sends_one_summary_per_sink(tmp_path: Path) -> None:
    slack, teams = Receiver(_ok), Receiver(_ok)
    await slack.start()
    await teams.start()
    sim = _overdue_sim(24, seed=5)
    digest = {"window": "1s", "group_by": ["course"], "max_items": 5}
    sinks = [
        {"name": "slack", "type": "slack", "url": f"{slack.url}/services/T/B/x",
         "allow_private": True, "digest": digest},
        {"name": "teams", "type": "teams", "url": f"{teams.url}/workflows/x",
         "allow_private": True, "digest": digest},
    ]  # fmt: skip
    state = tmp_path / "s.db"
    try:
        async with serve(sim) as api:
            config = _config(tmp_path / "c.yaml", api=api, sim=sim, state=state, sinks=sinks)
            spmon = Spmon(config, tmp_path / "spmon.log")
            await spmon.start()
            try:
                for server in (slack, teams):
                    await server.until(lambda r: len(r.hits) >= 1, what="a summary", within=60)
                async with asyncio.timeout(30):
                    while _states(state).count("delivered") < 48:
                        await asyncio.sleep(0.1)
                await asyncio.sleep(2.0)  # two more windows: nothing else may arrive
            finally:
                assert await spmon.stop(signal.SIGTERM) == 0, spmon.output()[-2000:]
    finally:
        await slack.stop()
        await teams.stop()
    assert len(slack.hits) == 1 and len(teams.hits) == 1
    for server in (slack, teams):
        said = _said(server.hits[0])
        assert "course BIO101: 24 new overdue" in said
    assert "and 19 more" in str(slack.hits[0].json())
    assert "https://spmon.example.edu/sessions?list=overdue" in str(slack.hits[0].json())


async def test_quiet_window_survives_sigkill_then_one_digest(tmp_path: Path) -> None:
    slack = Receiver(_ok)
    await slack.start()
    sim = Simulator(make_keys(6, seed=9), evolve=False)
    for key in sim.keys:
        sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    sinks = [
        {"name": "slack", "type": "slack", "url": f"{slack.url}/services/T/B/x",
         "allow_private": True},
    ]  # fmt: skip
    state = tmp_path / "s.db"
    try:
        async with serve(sim) as api:
            config = _config(tmp_path / "c.yaml", api=api, sim=sim, state=state, sinks=sinks)
            first = Spmon(config, tmp_path / "first.log")
            await first.start()
            async with asyncio.timeout(30):
                while sim.requests < 3 * len(sim.keys) or not state.exists():
                    await asyncio.sleep(0.05)
            quiet = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "quiet", "add", "slack", "--config",
                str(config), "--until", "12s", "--reason", "test",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ},
            )  # fmt: skip
            out, _ = await quiet.communicate()
            assert quiet.returncode == 0, out
            await asyncio.sleep(1.5)  # the dispatcher reads windows every second
            late = isoformat(datetime.now(UTC) - timedelta(hours=1))
            for key in sim.keys:
                sim.set(key, status="Closed", reviewRequired=True, reviewByDate=late)
            async with asyncio.timeout(30):  # each: status, required, deadline changed; overdue
                while len(_states(state)) < 4 * len(sim.keys):
                    await asyncio.sleep(0.05)
            assert slack.hits == []  # held
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
            assert set(_states(state)) == {"pending"}

            second = Spmon(config, tmp_path / "second.log")
            await second.start()
            await slack.until(lambda r: len(r.hits) >= 1, what="the digest", within=40)
            async with asyncio.timeout(20):
                while set(_states(state)) != {"delivered"}:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)
            assert await second.stop(signal.SIGTERM) == 0
    finally:
        await slack.stop()
    assert len(slack.hits) == 1
    assert "6 new overdue, 18 changes" in _said(slack.hits[0])
    assert len(_states(state)) == 24

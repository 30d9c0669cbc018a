"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback: an overdue review on the
fake API becomes an active ExamReviewOverdue alert, stays active through resends, a restart and
a SIGKILLed spmon (the hold), and is resolved (Alertmanager notifies "resolved") only when the
review is done or the session is no longer watched."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.settings import Settings
from monitor.simulator import Simulator, make_keys, serve
from tests.e2e.helpers import in_process, start, write_config
from tests.sinks.sinkkit import Receiver

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed"),
]


@pytest.fixture
def notified() -> Receiver:
    return Receiver()


@pytest.fixture
async def alertmanager(tmp_path: Path, notified: Receiver) -> AsyncIterator[str]:
    """Alertmanager on 127.0.0.1 (port chosen by itself), clustering off, notifying
    `notified` of firing and resolved alerts; yields its base URL."""
    await notified.start()
    config = {
        "route": {
            "receiver": "test",
            "group_by": ["session"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "test",
                "webhook_configs": [{"url": notified.url + "/am", "send_resolved": True}],
            }
        ],
    }
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    log_path = tmp_path / "am.log"
    assert BINARY is not None
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            "--web.listen-address=127.0.0.1:0",
            "--cluster.listen-address=",  # empty: no gossip port, no peers
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = await _listening(log_path, proc)
        await _ready(url)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await notified.stop()


async def _listening(log: Path, proc: asyncio.subprocess.Process) -> str:
    """Alertmanager picked its own port (":0"); it logs which."""
    async with asyncio.timeout(30):
        while True:
            text = await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace")
            found = re.search(r'msg="Listening on" address=([\d.]+:\d+)', text)
            if found:
                return f"http://{found.group(1)}"
            assert proc.returncode is None, f"alertmanager exited:\n{text}"
            await asyncio.sleep(0.05)


async def _ready(url: str) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/-/ready") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)


async def active_alerts(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/v2/alerts") as resp:
        assert resp.status == 200
        found: list[dict[str, Any]] = await resp.json()
        return found


async def wait_for_alert(url: str, session_sid: str, predicate: Any) -> dict[str, Any] | None:
    async with asyncio.timeout(45):
        while True:
            ours = [
                a for a in await active_alerts(url) if a["labels"].get("session") == session_sid
            ]
            if predicate(ours[0] if ours else None):
                return ours[0] if ours else None
            await asyncio.sleep(0.1)


def notifications(receiver: Receiver, session_sid: str) -> list[str]:
    states = []
    for hit in receiver.hits:
        body = json.loads(hit.body)
        states += [a["status"] for a in body["alerts"] if a["labels"].get("session") == session_sid]
    return states


async def test_an_overdue_review_fires_in_alertmanager_and_resolves_when_done(
    alertmanager: str, notified: Receiver, tmp_path: Path
) -> None:
    keys = make_keys(2, seed=3)
    late, fine = keys
    sim = Simulator(keys, evolve=False)
    due = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sim.set(late, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=due)
    sim.set(fine, status="Closed", reviewRequired=False, reviewed=False, reviewByDate=None)
    async with serve(sim) as api_url:
        settings = Settings(
            api={"base_url": api_url, "rate_limit": 50},
            poll={"interval": 0.3},
            rules={"overdue_repeat": 0},
            state={"path": tmp_path / "spmon.db"},
            http={"listen": ""},
            watches=[
                {**k._asdict(), "labels": {"course": "BIO101"}}
                for k in keys  # type: ignore[dict-item]
            ],
            sinks=[
                {
                    "name": "am",
                    "type": "alertmanager",
                    "url": alertmanager,
                    "allow_private": True,
                    "resend_interval": "2s",
                    "alert_labels": {"severity": "page"},
                },
                {"name": "log", "type": "log", "default": True},
            ],
        )
        async with in_process(settings):
            alert = await wait_for_alert(alertmanager, late.session_sid, lambda a: a is not None)
            assert alert is not None
            assert alert["status"]["state"] == "active"
            assert alert["labels"] == {
                "alertname": "ExamReviewOverdue",
                "install": late.install_sid,
                "exam": late.exam_sid,
                "session": late.session_sid,
                "course": "BIO101",
                "severity": "page",
            }
            # The API's exam title and course name the alert (the simulator's are "… (Fall 2026)").
            summary = alert["annotations"]["summary"]
            assert summary.startswith("Exam review overdue: ") and "(Fall 2026)" in summary
            assert alert["startsAt"].startswith(due[:-1])
            assert alert["generatorURL"].endswith(late.session_sid)
            first_end = alert["endsAt"]
            await wait_for_alert(
                alertmanager, late.session_sid, lambda a: a and a["endsAt"] > first_end
            )

        # A restart: the new process re-posts the firing alert from its outbox at once.
        before = (await wait_for_alert(alertmanager, late.session_sid, bool))["endsAt"]  # type: ignore[index]
        async with in_process(settings):
            await wait_for_alert(
                alertmanager, late.session_sid, lambda a: a and a["endsAt"] > before
            )
            assert not [
                a
                for a in await active_alerts(alertmanager)
                if a["labels"]["session"] == fine.session_sid
            ]

            sim.set(late, reviewed=True, reviewCompletedDate=datetime.now(UTC).isoformat())
            await wait_for_alert(alertmanager, late.session_sid, lambda a: a is None)
            await notified.until(
                lambda r: "resolved" in notifications(r, late.session_sid),
                what="Alertmanager's resolved notification",
            )
    assert notifications(notified, late.session_sid)[0] == "firing"


def overdue_sim(count: int) -> tuple[Simulator, list[Any]]:
    keys = make_keys(count, seed=11)
    sim = Simulator(keys, evolve=False)
    due = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for key in keys:
        sim.set(key, status="Closed", reviewRequired=True, reviewed=False, reviewByDate=due)
    return sim, keys


def am_sink(url: str, **extra: Any) -> dict[str, Any]:
    # Alertmanager on loopback is a private address: an explicit opt-in.
    return {"name": "am", "type": "alertmanager", "url": url, "allow_private": True, **extra}


async def test_a_killed_spmon_resolves_nothing_until_a_real_resolve(
    alertmanager: str, notified: Receiver, tmp_path: Path, unused_tcp_port: int
) -> None:
    """resend_interval 1 s: the old endsAt (now + 4 × 1 s) resolved the alert about 4 s after
    spmon stopped. With the hold (1 h) it stays active until the review is really done."""
    sim, (late,) = overdue_sim(1)
    async with serve(sim) as api_url:
        config = write_config(
            tmp_path / "spmon.yaml",
            api_url=api_url,
            watches=[k._asdict() for k in sim.keys],
            state=tmp_path / "spmon.db",
            sinks=[am_sink(alertmanager, resend_interval="1s")],
        )
        log = tmp_path / "spmon.log"
        proc = await start(config, unused_tcp_port, log)
        try:
            await proc.wait_ready()
            await wait_for_alert(alertmanager, late.session_sid, lambda a: a is not None)
            await proc.stop(signal.SIGKILL)  # a node drain: nothing re-posts the alert now
            killed = time.monotonic()
            await asyncio.sleep(10)  # 2.5 × the old validity window
            alert = await wait_for_alert(alertmanager, late.session_sid, lambda a: True)
            held = time.monotonic() - killed
            assert alert is not None and alert["status"]["state"] == "active"
            left = datetime.fromisoformat(alert["endsAt"]) - datetime.now(UTC)
            print(f"alert still active {held:.1f} s after SIGKILL; endsAt in {left}")
            assert left > timedelta(minutes=59)
            assert "resolved" not in notifications(notified, late.session_sid)

            # The review is done while spmon is down; its restart resolves the alert.
            sim.set(late, reviewed=True, reviewCompletedDate=datetime.now(UTC).isoformat())
            restarted = time.monotonic()
            proc = await start(config, unused_tcp_port, log)
            await wait_for_alert(alertmanager, late.session_sid, lambda a: a is None)
            print(f"resolved {time.monotonic() - restarted:.1f} s after the restart")
            await notified.until(
                lambda r: "resolved" in notifications(r, late.session_sid),
                what="Alertmanager's resolved notification",
            )
        finally:
            await proc.stop()


async def test_a_session_no_longer_watched_has_its_alert_ended(
    alertmanager: str, tmp_path: Path
) -> None:
    """Left to expire, the alert of a session removed from the watch list would stay active
    for the whole hold; spmon ends it at its next start."""
    sim, (kept, dropped) = overdue_sim(2)
    async with serve(sim) as api_url:

        def settings(keys: list[Any]) -> Settings:
            return Settings(
                api={"base_url": api_url, "rate_limit": 50},
                poll={"interval": 0.3},
                rules={"overdue_repeat": 0},
                state={"path": tmp_path / "spmon.db"},
                http={"listen": ""},
                watches=[k._asdict() for k in keys],
                # Old endsAt: now + 4 × 30 s, so expiry alone cannot pass the 10 s bound below.
                sinks=[am_sink(alertmanager, resend_interval="30s")],
            )

        async with in_process(settings([kept, dropped])):
            for key in (kept, dropped):
                await wait_for_alert(alertmanager, key.session_sid, lambda a: a is not None)
        async with in_process(settings([kept])):
            async with asyncio.timeout(10):
                await wait_for_alert(alertmanager, dropped.session_sid, lambda a: a is None)
            assert await wait_for_alert(alertmanager, dropped.session_sid, lambda a: True) is None
            assert await wait_for_alert(alertmanager, kept.session_sid, lambda a: True) is not None

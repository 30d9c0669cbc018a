"""A reload's watch set applied to a built service while it polls: removed sessions stop being
scheduled, a session watched again resumes from the store (no new baseline), labels change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitor import service
from monitor.core.watches import Watch
from monitor.settings import Settings
from tests.clockkit import T0, FakeClock
from tests.conftest import watches_of
from tests.storekit import outbox_rows


def settings_for(url: str, keys, path: Path, **labels: str) -> Settings:
    return Settings(
        api={"base_url": url, "rate_limit": 1000, "retries": 0},
        poll={"interval": 60},
        rules={"overdue_repeat": "0s"},
        state={"path": path},
        http={"listen": ""},
        watches=watches_of(list(keys), **labels),
    )


async def test_rewatch_removes_adds_and_relabels_without_rebaselining(
    simulator, state_path: Path
) -> None:
    sim = await simulator(3)
    a, b, c = sim.keys
    for key in sim.keys:
        sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewByDate=None)
    clock = FakeClock(T0)
    first = settings_for(sim.url, [a, b, c], state_path, course="BIO101")
    async with service.build(first, serve_http=False, clock=clock) as svc:
        await svc.poller.poll_all()
        summary = await svc.watching.apply(settings_for(sim.url, [a, b], state_path))
        assert summary == {"watched": 2, "added": 0, "removed": 1, "changed": 2}
        assert c not in svc.watchset.entries and c not in svc.watchset.heap
        assert not svc.watching.watched(c)
        assert dict(svc.watchset.entries[a].labels) == {}

        # Watched again while it changed: the store's snapshot is the baseline, so the change
        # shows, and nothing about it is re-announced as a first sighting.
        sim.sim.set(c, status="Incident")
        again = settings_for(sim.url, [a, b, c], state_path, course="CHEM2")
        summary = await svc.watching.apply(again)
        assert summary["added"] == 1 and summary["removed"] == 0
        entry = svc.watchset.entries[c]
        assert entry.snapshot is not None and entry.snapshot.status == "Scheduled"
        clock.advance(3600)
        await svc.poller.poll_all()
        rows = [json.loads(r.payload) for r in await outbox_rows(svc.store, state=None, limit=99)]
        changed = [e for e in rows if e["type"] == "session.status_changed"]
        assert [e["data"]["session"]["session_sid"] for e in changed] == [c.session_sid]
        assert changed[0]["data"]["session"]["labels"] == {"course": "CHEM2"}
        assert changed[0]["data"]["current"] == "Incident"


async def test_an_api_watch_added_during_a_reload_stays_watched(
    simulator, state_path: Path
) -> None:
    """A reload reads the store, then rewatches: a watch the admin API adds in between must
    not be undone by that rewatch (one change to the watch set at a time)."""
    sim = await simulator(3)
    a, b, c = sim.keys
    async with service.build(settings_for(sim.url, [a, b], state_path), serve_http=False) as svc:
        for _ in range(5):
            await asyncio.gather(
                svc.watching.apply(settings_for(sim.url, [a], state_path)),
                svc.watching.add([Watch(c, {}, None, "api")]),
            )
            assert set(svc.watchset.entries) == {a, c}
            assert set(await svc.store.active_watches()) == {a, c}
            await svc.watching.remove(c.session_sid)

"""Start-up reconciles every source into the store and watches what the store then holds:
removals keep history, a URL that fails keeps its watches, hand-added watches stay; a URL
source is fetched again on its timer while the service runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from structlog.testing import capture_logs

from monitor import service
from monitor.core.keys import SessionKey
from monitor.core.watches import Watch
from monitor.reload import Reloader
from monitor.settings import Settings, load_settings
from monitor.store import SqliteStore, read_watches
from tests.clockkit import FakeClock
from tests.sources.urlkit import EXAM, INSTALL, WatchServer, csv_of, serve_watches


def key(n: int) -> SessionKey:
    return SessionKey(INSTALL, EXAM, f"ES{n:032x}")


def configured(tmp_path: Path, **data: object) -> Settings:
    base = {"api": {"base_url": "http://127.0.0.1:9"}, "state": {"path": str(tmp_path / "s.db")}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**base, **data}), encoding="utf-8")
    return load_settings(path)


async def watched(settings: Settings) -> list[SessionKey]:
    async with service.build(settings, serve_http=False) as svc:
        return list(svc.watchset.entries)


async def test_a_watch_removed_from_a_file_goes_at_the_next_start_with_history(
    tmp_path: Path,
) -> None:
    (tmp_path / "w.csv").write_text(csv_of(1, 2, 3), encoding="utf-8")
    assert await watched(configured(tmp_path, watch_files=["w.csv"])) == [key(1), key(2), key(3)]
    (tmp_path / "w.csv").write_text(csv_of(1, 3), encoding="utf-8")
    with capture_logs() as entries:
        assert await watched(configured(tmp_path, watch_files=["w.csv"])) == [key(1), key(3)]
    assert {"added": 0, "removed": 1, "changed": 0}.items() <= next(
        e for e in entries if e["event"] == "watches.reconciled"
    ).items()
    async with read_watches(tmp_path / "s.db") as reader:
        history = {r.watch.key: r for r in await reader.watch_history()}
    assert history[key(2)].removed_at is not None and history[key(2)].watch.source == "file:w.csv"
    assert history[key(1)].removed_at is None


async def test_a_url_source_that_fails_keeps_the_stores_watches(tmp_path: Path) -> None:
    server = WatchServer(body=csv_of(4, 5))
    async with serve_watches(server):
        source = {"type": "url", "url": server.url, "allow_http": True, "allow_private": True}
        (tmp_path / "w.csv").write_text(csv_of(1, 2), encoding="utf-8")
        settings = configured(tmp_path, watch_files=["w.csv"], sources=[source])
        assert await watched(settings) == [key(1), key(2), key(4), key(5)]
        server.status = 503
        (tmp_path / "w.csv").write_text(csv_of(1), encoding="utf-8")
        with capture_logs() as entries:
            kept = await watched(configured(tmp_path, watch_files=["w.csv"], sources=[source]))
    # Nothing is removed while a source could not be read: it may be the one still listing it.
    assert kept == [key(1), key(2), key(4), key(5)]
    (failed,) = [e for e in entries if e["event"] == "source.unreadable"]
    assert failed["reason"] == "127.0.0.1: answered HTTP 503"
    assert failed["source"].startswith("url:http://127.0.0.1:")


async def test_watches_added_by_hand_survive_every_start_and_keep_their_labels(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        await store.add_watch(Watch(key(7), {"by": "hand"}, 5.0, "cli"), now=1.0)
    (tmp_path / "w.csv").write_text(csv_of(7, 8), encoding="utf-8")
    settings = configured(tmp_path, watch_files=["w.csv"])
    async with service.build(settings, serve_http=False) as svc:
        entries = dict(svc.watchset.entries)
        stored = await svc.store.active_watches()
    assert list(entries) == [key(7), key(8)]
    assert stored[key(7)] == Watch(key(7), {"by": "hand"}, 5.0, "cli")
    assert entries[key(7)].labels == {"by": "hand"}
    assert await watched(configured(tmp_path)) == [key(7)]


async def test_settings_built_in_code_are_inline_watches(tmp_path: Path) -> None:
    settings = Settings(
        api={"base_url": "http://127.0.0.1:9"},
        state={"path": tmp_path / "s.db"},
        watches=[{"install_sid": INSTALL, "exam_sid": EXAM, "session_sid": key(1).session_sid}],
    )
    assert await watched(settings) == [key(1)]
    async with read_watches(tmp_path / "s.db") as reader:
        assert [w.source for w in (await reader.active_watches()).values()] == ["inline"]


async def test_a_url_source_is_fetched_again_on_its_timer_while_running(tmp_path: Path) -> None:
    server = WatchServer(body=csv_of(1, 2))
    async with serve_watches(server):
        source = {"type": "url", "url": server.url, "allow_http": True, "allow_private": True,
                  "refresh": "1m"}  # fmt: skip
        settings = configured(tmp_path, sources=[source])
        clock = FakeClock()
        async with service.build(settings, serve_http=False, clock=clock) as svc:
            assert list(svc.watchset.entries) == [key(1), key(2)]
            reloader = Reloader(config=tmp_path / "c.yaml", settings=settings, metrics=svc.metrics,
                                apply=svc.watching.apply, clock=clock, check_every=5)  # fmt: skip
            stop = asyncio.Event()
            task = asyncio.create_task(reloader.run(stop))
            try:
                fetched = len(server.requests)
                clock.advance(30)  # not due yet: nothing fetched
                await asyncio.sleep(0.05)
                assert len(server.requests) == fetched
                clock.advance(35)  # the refresh is due: an unchanged list costs a 304
                async with asyncio.timeout(10):
                    while len(server.requests) == fetched:
                        await asyncio.sleep(0.01)
                assert server.requests[-1].get("If-None-Match") == '"v1"'
                server.publish(csv_of(2, 3))
                with capture_logs() as entries:
                    clock.advance(65)
                    async with asyncio.timeout(10):
                        while key(3) not in svc.watchset.entries:
                            await asyncio.sleep(0.01)
            finally:
                stop.set()
                await task
            assert list(svc.watchset.entries) == [key(2), key(3)]
    refreshed = [e for e in entries if e["event"] == "sources.refreshed"]
    assert refreshed and refreshed[-1]["added"] == 1 and refreshed[-1]["removed"] == 1

"""Discovery against the simulator as a real server: every session of a list across pages and
under faults, sessions that left a list stay watched, and a walk that fails says so."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import yaml

from monitor import once, service
from monitor.core.discovery import ListSource
from monitor.discoverer import Discoverer, Walk
from monitor.settings import ConfigError, Settings, load_settings
from monitor.simulator import Faults


def settings_for(url: str, state: Path, **extra) -> Settings:
    return Settings(
        api={"base_url": url, "rate_limit": 1000, "retries": 3, "timeout": 2},
        poll={"interval": 60},
        state={"path": state},
        http={"listen": ""},
        **extra,
    )


async def walk(svc: service.Service, source: ListSource) -> Walk:
    walks: list[Walk] = []

    async def keep(found: Walk) -> None:
        walks.append(found)
        await svc.watching.found(found)

    discoverer = Discoverer(api=svc.api, sources=[source], on_walk=keep, clock=svc.clock)
    found = await discoverer.walk(source)
    await keep(found)
    return walks[-1]


async def test_the_appointments_report_is_walked_across_pages_and_its_sessions_watched(
    simulator, state_path: Path
) -> None:
    sim = await simulator(40, faults=Faults(error_rate=0.2, rate_limit_rate=0.1, retry_after=0))
    install = sim.keys[0].install_sid
    listed = {k for k in sim.keys if k.install_sid == install}
    for key in listed:  # none completed, so the report lists every one
        sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False)
    source = ListSource(name=f"discovery:appointments:{install}", install_sid=install, page_size=7)
    settings = settings_for(
        sim.url, state_path, discovery=[{"list": "appointments", "install_sid": install}]
    )
    async with service.build(settings, serve_http=False) as svc:
        found = await walk(svc, source)
        assert found.complete and found.pages == -(-len(listed) // 7)
        assert set(svc.watchset.entries) == listed
        labels = svc.watchset.entries[next(iter(listed))].labels
        assert set(labels) <= {"exam_title", "course"} and labels

        # A session completes and reviewed drops out of the report: it stays watched.
        gone = next(iter(listed))
        sim.sim.set(gone, status="Closed", reviewRequired=False)
        sim.sim.faults = Faults()
        again = await walk(svc, source)
        assert again.complete and gone not in {w.key for w in again.watches}
        assert gone in svc.watchset.entries and svc.watching.watched(gone)

    # And after a restart: the store remembers what discovery found, listed or not.
    async with service.build(settings, serve_http=False) as svc:
        assert set(svc.watchset.entries) == listed


async def test_an_enrollment_list_is_filtered_as_configured(simulator, state_path: Path) -> None:
    sim = await simulator(12)
    key = sim.keys[0]
    enrollment = sim.sim.payload(key)["enrollmentSid"]
    source = ListSource(
        name="discovery:enrollment_sessions",
        install_sid=key.install_sid,
        enrollment_sid=enrollment,
        exam_sid=key.exam_sid,
        include_active=True,
    )
    async with service.build(settings_for(sim.url, state_path), serve_http=False) as svc:
        found = await walk(svc, source)
        assert found.complete and key in {w.key for w in found.watches}
        assert all(w.key.exam_sid == key.exam_sid for w in found.watches)
        assert key in svc.watchset.entries


async def test_a_walk_that_fails_part_way_keeps_what_it_found_and_says_incomplete(
    simulator, state_path: Path
) -> None:
    sim = await simulator(40)
    install = sim.keys[0].install_sid
    source = ListSource(name="d", install_sid=install, page_size=5)
    async with service.build(settings_for(sim.url, state_path), serve_http=False) as svc:
        sim.sim.faults = Faults(malformed_rate=1.0)
        failed = await walk(svc, source)
        assert not failed.complete and failed.watches == () and failed.pages == 0
        assert svc.watchset.entries == {}


async def test_discovery_configured_in_settings_runs_in_spmon_run(
    simulator, state_path: Path
) -> None:
    sim = await simulator(10)
    install = sim.keys[0].install_sid
    listed = {k for k in sim.keys if k.install_sid == install}
    for key in listed:
        sim.sim.set(key, status="Scheduled", reviewRequired=False)
    settings = settings_for(
        sim.url, state_path, discovery=[{"list": "appointments", "install_sid": install}]
    )
    stop = asyncio.Event()
    seen: list[service.Service] = []
    task = asyncio.create_task(service.run(settings, stop=stop, on_ready=seen.append))
    try:
        async with asyncio.timeout(20):
            while not seen or set(seen[0].watchset.entries) != listed:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_a_discovery_entry_without_its_scope_stops_start_up_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "spmon.yaml"
    entry = {"list": "enrollment_sessions", "install_sid": "AI" + "0" * 32}
    config.write_text(yaml.safe_dump({"discovery": [entry], "state": {"path": "s.db"}}))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert caught.value.lines == [
        "discovery[0]: enrollment_sessions needs enrollment_sid and exam_sid"
    ]


async def test_once_walks_the_discovery_lists_before_it_polls(simulator, state_path: Path) -> None:
    sim = await simulator(10)
    install = sim.keys[0].install_sid
    listed = {k for k in sim.keys if k.install_sid == install}
    for key in listed:
        sim.sim.set(key, status="Scheduled", reviewRequired=False)
    settings = settings_for(
        sim.url, state_path, discovery=[{"list": "appointments", "install_sid": install}]
    )
    report = await once.once(settings)
    assert {row.key for row in report.rows} == listed
    assert report.exit == 0


async def test_a_reload_that_adds_a_discovery_list_starts_walking_it(
    simulator, state_path: Path, tmp_path: Path
) -> None:
    """Same process: discovery configured by a reload walks at once; unconfigured, it stops
    and what it found stays watched."""
    sim = await simulator(10)
    install = sim.keys[0].install_sid
    listed = {k for k in sim.keys if k.install_sid == install}
    for key in listed:
        sim.sim.set(key, status="Scheduled", reviewRequired=False)
    config = tmp_path / "spmon.yaml"
    base = {
        "api": {"base_url": sim.url, "rate_limit": 1000, "retries": 0},
        "state": {"path": str(state_path)},
        "http": {"listen": ""},
    }
    config.write_text(yaml.safe_dump(base))
    stop = asyncio.Event()
    seen: list[service.Service] = []
    task = asyncio.create_task(
        service.run(load_settings(config), stop=stop, on_ready=seen.append, reloadable=True,
                    config=config)
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while not seen:
                await asyncio.sleep(0.05)
        assert seen[0].watchset.entries == {}
        entry = {"list": "appointments", "install_sid": install}
        config.write_text(yaml.safe_dump({**base, "discovery": [entry]}))
        os.kill(os.getpid(), signal.SIGHUP)
        async with asyncio.timeout(20):
            while set(seen[0].watchset.entries) != listed:
                await asyncio.sleep(0.05)
        config.write_text(yaml.safe_dump(base))
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert set(seen[0].watchset.entries) == listed  # found sessions stay
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

"""Reload without restart, against a real `spmon run` process: a watch file edited under it,
SIGHUP with a broken config (refused, the running one stays), then a good one again."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
from pathlib import Path

import pytest
import yaml

from tests.conftest import watches_of
from tests.e2e.helpers import Proc, start, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def write_csv(path: Path, keys) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["install_sid", "exam_sid", "session_sid", "course"])
        for key in keys:
            out.writerow([*key, "BIO101"])


def gauge(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def until_metric(proc: Proc, name: str, value: float, within: float = 30.0) -> str:
    async with asyncio.timeout(within):
        while True:
            text = await proc.metrics()
            if gauge(text, name) == value:
                return text
            await asyncio.sleep(0.2)


async def test_a_watch_file_edited_under_a_running_spmon_is_applied_and_a_bad_reload_refused(
    simulator, tmp_path: Path, unused_tcp_port_factory
) -> None:
    sim = await simulator(4)
    for key in sim.keys:
        sim.sim.set(key, status="Scheduled", reviewRequired=False)
    watch_file = tmp_path / "watches.csv"
    write_csv(watch_file, sim.keys[:2])
    config = write_config(
        tmp_path / "spmon.yaml",
        api_url=sim.url,
        watches=watches_of(sim.keys[3:]),
        state=tmp_path / "s.db",
        watch_files=[str(watch_file)],
    )
    proc = await start(config, unused_tcp_port_factory(), tmp_path / "spmon.log")
    try:
        await proc.wait_ready()
        pid = proc.process.pid
        text = await until_metric(proc, "spmon_sessions_watched", 3)
        assert gauge(text, "spmon_config_last_reload_successful") == 1
        started_at = gauge(text, "spmon_config_last_reload_success_timestamp_seconds")

        # The LMS export gains a session and loses one: applied by the file watch, no signal.
        write_csv(watch_file, sim.keys[1:3])
        text = await until_metric(proc, "spmon_sessions_watched", 3)
        await asyncio.sleep(0)
        async with asyncio.timeout(30):
            while "config.reloaded" not in proc.output():
                await asyncio.sleep(0.2)
        assert '"added": 1' in proc.output() and '"removed": 1' in proc.output()
        text = await proc.metrics()
        assert gauge(text, "spmon_config_last_reload_success_timestamp_seconds") > started_at

        # A broken config on SIGHUP: refused with the one-line error, the running set stays.
        good = config.read_text()
        broken = yaml.safe_load(good)
        broken["poll"]["interval"] = "soon"
        config.write_text(yaml.safe_dump(broken))
        proc.process.send_signal(signal.SIGHUP)
        await until_metric(proc, "spmon_config_last_reload_successful", 0)
        assert "poll.interval" in proc.output()
        assert proc.process.returncode is None and proc.process.pid == pid
        assert gauge(await proc.metrics(), "spmon_sessions_watched") == 3

        # Fixed, with one inline watch dropped: applied on the next signal.
        fixed = yaml.safe_load(good)
        fixed["watches"] = []
        config.write_text(yaml.safe_dump(fixed))
        os.kill(pid, signal.SIGHUP)
        await until_metric(proc, "spmon_config_last_reload_successful", 1)
        await until_metric(proc, "spmon_sessions_watched", 2)
    finally:
        assert await proc.stop() == 0, proc.output()
    assert proc.process.pid == pid

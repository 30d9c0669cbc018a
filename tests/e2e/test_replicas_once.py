"""`spmon once` on PostgreSQL beside a running replica: it reports every watch, not "nothing
is watched" (the replica holds every shard), and records and delivers nothing of theirs: a
change it sees first (its commit fenced) is reported as seen and still delivered once, by the
shard's owner."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from tests.e2e.fleetkit import CAP, changes, fleet_of, scene, transition_rows, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SESSIONS = 6


async def test_once_beside_a_replica_reports_every_watch_and_writes_none_of_its_shards(
    simulator: Any, endpoint: Any, postgres_url: SecretStr, tmp_path: Path,
    unused_tcp_port_factory: Any,
) -> None:  # fmt: skip
    handle, rec, config = await scene(simulator, endpoint, tmp_path, SESSIONS)
    sim = handle.sim
    doc = yaml.safe_load(config.read_text())
    for watch in doc["watches"]:  # the replica polls each 10 s: once sees the change first
        watch["interval"] = "10s"
    config.write_text(yaml.safe_dump(doc))
    url = postgres_url.get_secret_value()
    async with fleet_of(config, postgres_url, tmp_path, unused_tcp_port_factory, [None]):
        await until(lambda: transition_rows(postgres_url) == 0, "the replica up")
        await asyncio.sleep(1.5)  # every session baselined by its owner
        changed = sim.keys[0]
        sim.set(changed, status="In Progress")
        once = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "once", "--json", "--config", str(config),
            env={"SPMON_STATE__URL": url, "PATH": ""}, stdout=-1, stderr=-1,
        )  # fmt: skip
        out, err = await asyncio.wait_for(once.communicate(), CAP)
        assert once.returncode == 0, (out, err)
        report = json.loads(out)
        assert report["summary"]["sessions"] == SESSIONS
        assert {s["outcome"] for s in report["sessions"]} == {"ok"}  # fenced is still seen
        seen = {s["session_sid"]: s["status"] for s in report["sessions"]}
        assert seen[changed.session_sid] == "In Progress"
        assert transition_rows(postgres_url) == 0  # once saw it first and recorded nothing
        assert "once.beside_replicas" in err.decode()

        await rec.until(lambda r: changes(r), within=CAP, what="the change delivered")
        await asyncio.sleep(2)  # room for a second delivery, were once to make one
    delivered = [c for c in changes(rec) if c[0] == changed.session_sid]
    assert [c[1] for c in delivered] == ["In Progress"], delivered
    assert transition_rows(postgres_url) == 1  # recorded once, by the replica

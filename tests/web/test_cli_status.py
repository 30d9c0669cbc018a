"""`spmon status|sessions|history` as subprocesses: against a running service's API, then
read-only from the stopped service's state file; `--json` is the API's own document."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from monitor.core.events import isoformat
from tests.web.conftest import ADMIN, RunFactory, Running, call, until

pytestmark = pytest.mark.slow


async def spmon(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config_for(run: Running, tmp_path: Path) -> Path:
    path = tmp_path / "spmon.yaml"
    settings = {
        "api": {"base_url": run.sim.url},
        "http": {"listen": run.svc.address},
        "state": {"path": str(run.svc.settings.state.path)},
        "admin": {"token": ADMIN},
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


async def test_status_sessions_history_from_the_api_then_the_state_file(
    running: RunFactory, tmp_path: Path
) -> None:
    run = await running(3)
    late, *calm = run.sim.keys
    now = datetime.now(UTC)
    run.sim.sim.set(
        late,
        status="Closed",
        reviewRequired=True,
        reviewed=False,
        reviewByDate=isoformat(now - timedelta(hours=2)),
    )
    for key in calm:
        run.sim.sim.set(
            key, status="Closed", reviewRequired=False, reviewed=False, reviewByDate=None
        )

    async def overdue() -> bool:
        _, _, doc = await call("GET", run.base + "/summary", headers=run.headers())
        return doc["overdue"] == 1 and doc["unseen"] == 0

    await until(overdue)
    config = str(config_for(run, tmp_path))

    code, out, err = await spmon("status", "--json", "--config", config)
    assert code == 1, err  # a review is overdue
    assert "running service" in err
    _, _, served = await call("GET", run.base + "/summary", headers=run.headers())
    live = json.loads(out)
    assert live["running"] is True and live["overdue"] == 1
    assert live.keys() == served.keys()

    code, out, err = await spmon(
        "sessions", "--overdue", "--json", "--label", "course=BIO101", "--config", config
    )
    assert code == 0, err
    assert [i["session_sid"] for i in json.loads(out)["items"]] == [late.session_sid]
    code, out, _ = await spmon("sessions", "--config", config)
    assert code == 0 and late.session_sid in out and "3 of 3 sessions" in out
    code, out, _ = await spmon("history", late.session_sid, "--json", "--config", config)
    assert code == 0 and json.loads(out)["session"]["session_sid"] == late.session_sid

    await run.stop()
    code, out, err = await spmon("status", "--json", "--config", config)
    assert code == 1, err
    assert "state file" in err
    offline = json.loads(out)
    assert offline["running"] is False and offline["overdue"] == 1
    assert offline.keys() == live.keys()
    code, out, err = await spmon("sessions", "--overdue", "--json", "--config", config)
    assert code == 0, err
    assert [i["session_sid"] for i in json.loads(out)["items"]] == [late.session_sid]
    code, out, err = await spmon("history", late.session_sid, "--config", config)
    assert code == 0 and "review.overdue" in out, err
    code, _, err = await spmon("history", "ES" + "0" * 32, "--config", config)
    assert code == 1 and "no such session" in err
    code, out, _ = await spmon("status", "--config", config)
    assert code == 1 and "overdue 1" in out


async def test_status_with_nothing_to_read_is_unknown(tmp_path: Path) -> None:
    config = tmp_path / "spmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"base_url": "http://127.0.0.1:9"},
                "http": {"listen": "127.0.0.1:9"},
                "state": {"path": str(tmp_path / "none.db")},
            }
        )
    )
    code, _, err = await spmon("status", "--config", str(config))
    assert code == 3 and "UNKNOWN" in err
    code, _, err = await spmon("sessions", "--phase", "busy", "--config", str(config))
    assert code == 2

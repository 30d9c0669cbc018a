"""The spmon command as users run it: real subprocesses, real exit codes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from monitor.core.events import isoformat
from monitor.store import SqliteStore
from tests.conftest import watches_of

pytestmark = pytest.mark.slow


async def spmon(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def config(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


async def test_check_config_rejects_bad_keys_with_exit_2(tmp_path: Path) -> None:
    bad = config(
        tmp_path / "c.yaml",
        {"api": {"base_url": "http://127.0.0.1:1", "rate_limit": -1}, "polling": {}},
    )
    code, out, err = await spmon("check-config", "--config", bad)
    assert code == 2 and out == ""
    assert "spmon: config error: api.rate_limit: Input should be greater than 0" in err
    assert "spmon: config error: polling: unknown key" in err


async def test_check_config_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    watches = [
        {"install_sid": "AI" + "a" * 32, "exam_sid": "EX" + "b" * 32, "session_sid": f"ES{n:032x}"}
        for n in range(400)
    ]
    path = config(
        tmp_path / "c.yaml",
        {
            "watches": watches,
            "sinks": [
                {
                    "name": "ops",
                    "type": "webhook",
                    "url": "https://hooks.example.com/T/secret-path",
                    "unsigned": True,
                }
            ],
        },
    )
    code, out, err = await spmon(
        "check-config",
        "--config",
        path,
        env={"SPMON_API__TOKEN": "eyJhbGciOi.eyJleHAiOjF9.sig-secret"},
    )
    assert code == 0, err
    assert "**********" in out and "secret-path" not in out and "sig-secret" not in out
    assert "400 watched sessions" in out
    assert "warning: 400 watches need 6.7 requests/s" in err


def once_config(tmp_path: Path, url: str, keys, **extra: object) -> str:
    data: dict = {
        "api": {"base_url": url, "retries": 0, "timeout": "5s"},
        "state": {"path": str(tmp_path / "s.db")},
        "watches": watches_of(keys, course="BIO101"),
        **extra,
    }
    return config(tmp_path / "c.yaml", data)


def overdue_fields(hours: float = 3) -> dict:
    late = isoformat(datetime.now(UTC) - timedelta(hours=hours))
    return {"status": "Closed", "reviewRequired": True, "reviewed": False, "reviewByDate": late}


def no_logs_in(out: str) -> None:
    """stdout is the report only: no JSON log events, no console log lines."""
    for line in out.splitlines():
        assert not line.startswith('{"'), line
        assert "[warning" not in line and "[error" not in line, line


async def once_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    code, out, err = await spmon("once", "--json", *args, env=env)
    return code, json.loads(out), err  # the whole of stdout is one JSON document


def state_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table: the logical content of the state file."""
    db = sqlite3.connect(path)
    try:
        names = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        query = "SELECT * FROM {}"  # table names come from sqlite_master, not from input
        return {name: sorted(db.execute(query.format(name)).fetchall(), key=repr) for name in names}
    finally:
        db.close()


async def test_once_prints_a_table_and_exits_1_on_overdue(simulator, tmp_path: Path) -> None:
    sim = await simulator(2)
    late, fine = sim.keys
    sim.sim.set(late, **overdue_fields())
    sim.sim.set(fine, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    path = once_config(tmp_path, sim.url, sim.keys)
    code, out, _ = await spmon("once", "--config", path)
    assert code == 1
    no_logs_in(out)
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("ES")}
    assert "Closed" in lines[late.session_sid] and "3.0h late" in lines[late.session_sid]
    assert "Scheduled" in lines[fine.session_sid] and " no " in lines[fine.session_sid]
    assert lines[fine.session_sid].endswith(" ok")
    assert out.splitlines()[-1] == "OVERDUE: 1 overdue review among 2 sessions"
    sim.sim.set(late, reviewed=True)
    code, out, _ = await spmon("once", "--config", path)
    assert code == 0 and out.splitlines()[-1] == "OK: 2 sessions polled, 0 overdue reviews"


async def test_once_json_all_ok_exits_0(simulator, tmp_path: Path) -> None:
    sim = await simulator(3)
    for key in sim.keys:
        sim.sim.set(
            key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None
        )
    code, doc, _ = await once_json("--config", once_config(tmp_path, sim.url, sim.keys))
    assert code == 0
    assert (doc["status"], doc["exit_code"]) == ("OK", 0)
    assert doc["summary"] | {"text": None} == {
        "text": None,
        "sessions": 3,
        "polled": 3,
        "failed": 0,
        "overdue": 0,
        "overdue_from_earlier_poll": 0,
        "outcomes": {"ok": 3},
    }
    first = doc["sessions"][0]
    assert first["session_sid"] == sim.keys[0].session_sid
    assert (first["outcome"], first["status"], first["review"], first["overdue"]) == (
        "ok", "Scheduled", "not required", False,
    )  # fmt: skip


async def test_once_json_overdue_carries_deadline_and_lateness(simulator, tmp_path: Path) -> None:
    sim = await simulator(2)
    sim.sim.set(sim.keys[0], **overdue_fields(hours=2))
    sim.sim.set(sim.keys[1], status="Scheduled", reviewRequired=False, reviewByDate=None)
    code, doc, _ = await once_json("--config", once_config(tmp_path, sim.url, sim.keys))
    assert code == 1 and doc["status"] == "OVERDUE" and doc["summary"]["overdue"] == 1
    late = doc["sessions"][0]
    assert late["overdue"] is True and late["review"] == "required"
    assert late["review_by_date"].endswith("Z")
    assert 7190 < late["overdue_seconds"] < 7300


async def test_once_with_the_token_rejected_is_unknown(simulator, tmp_path: Path) -> None:
    sim = await simulator(3, token="the-right-token")
    path = once_config(tmp_path, sim.url, sim.keys)
    code, doc, err = await once_json("--config", path, env={"SPMON_API__TOKEN": "a-wrong-token"})
    assert code == 3 and doc["status"] == "UNKNOWN"
    assert doc["summary"]["polled"] == 0 and doc["summary"]["failed"] == 3
    assert set(doc["summary"]["outcomes"]) <= {"auth_failed", "not_polled"}
    assert "api.auth_failed" in err and "a-wrong-token" not in err
    code, out, _ = await spmon("once", "--config", path, env={"SPMON_API__TOKEN": "a-wrong-token"})
    assert code == 3
    no_logs_in(out)
    assert (
        out.splitlines()[-1]
        == "UNKNOWN: 3 of 3 sessions could not be polled; 0 overdue among the 0 polled"
    )
    # A fixed token: the stored auth failure allows one probe; once it passes, all are polled.
    code, doc, _ = await once_json("--config", path, env={"SPMON_API__TOKEN": "the-right-token"})
    assert doc["summary"]["outcomes"] == {"ok": 3} and code in (0, 1)


async def test_once_with_the_api_down_is_unknown(
    simulator, tmp_path: Path, unused_tcp_port: int
) -> None:
    sim = await simulator(2)
    down = once_config(tmp_path, f"http://127.0.0.1:{unused_tcp_port}", sim.keys)
    code, doc, err = await once_json("--config", down)
    assert code == 3
    assert doc["summary"]["outcomes"] == {"error": 2}
    assert [s["outcome"] for s in doc["sessions"]] == ["error", "error"]
    assert "poll.failed" in err


async def test_once_keeps_an_overdue_review_seen_earlier_when_the_poll_fails(
    simulator, tmp_path: Path
) -> None:
    sim = await simulator(2)
    sim.sim.set(sim.keys[0], **overdue_fields())
    sim.sim.set(sim.keys[1], status="Scheduled", reviewRequired=False, reviewByDate=None)
    path = once_config(tmp_path, sim.url, sim.keys)
    assert (await spmon("once", "--config", path))[0] == 1
    sim.sim.set_status_code(sim.keys[0], 503)
    code, out, _ = await spmon("once", "--config", path)
    assert code == 1
    assert out.splitlines()[-1] == (
        "OVERDUE: 1 overdue review (1 from an earlier poll) among 2 sessions;"
        " 1 of 2 sessions could not be polled"
    )
    assert "error (showing last good)" in out
    sim.sim.set(sim.keys[0], reviewed=True)
    sim.sim.set_status_code(sim.keys[1], 503)
    sim.sim.set_status_code(sim.keys[0], None)
    assert (await spmon("once", "--config", path))[0] == 3


async def test_once_invalid_and_not_found_are_unknown(simulator, tmp_path: Path) -> None:
    sim = await simulator(3)
    sim.sim.set_body(sim.keys[0], b'{"message": "upstream request timeout"}')
    sim.sim.remove(sim.keys[1])
    # The simulator's lifecycle follows the clock: pin the healthy one, or it may be overdue.
    sim.sim.set(sim.keys[2], status="Scheduled", reviewRequired=False, reviewByDate=None)
    code, doc, _ = await once_json("--config", once_config(tmp_path, sim.url, sim.keys))
    assert code == 3
    assert [s["outcome"] for s in doc["sessions"]] == ["invalid", "not_found", "ok"]


async def test_once_dry_run_sends_nothing_and_changes_no_state(
    simulator, endpoint, tmp_path: Path
) -> None:
    sim = await simulator(2)
    late, other = sim.keys
    sim.sim.set(late, **overdue_fields())
    sim.sim.set(other, status="Scheduled", reviewRequired=False, reviewByDate=None)
    rec = await endpoint()
    sinks = [
        {"name": "hook", "type": "webhook", "url": rec.url, "allow_private": True, "unsigned": True}
    ]
    path = once_config(tmp_path, sim.url, sim.keys, sinks=sinks)
    state = tmp_path / "s.db"

    code, doc, _ = await once_json("--dry-run", "--config", path)
    assert code == 1 and doc["summary"]["overdue"] == 1
    assert not state.exists() and rec.hits == []  # a dry run on a first start creates nothing

    assert (await spmon("once", "--config", path))[0] == 1
    assert [body["type"] for body in rec.bodies()] == ["review.overdue"]
    before, raw = state_rows(state), state.read_bytes()
    sim.sim.set(late, reviewed=True)
    sim.sim.set(other, status="Incident")
    code, doc, _ = await once_json("--dry-run", "--config", path)
    assert code == 0 and doc["sessions"][1]["status"] == "Incident"
    assert state_rows(state) == before and state.read_bytes() == raw
    assert sorted(p.name for p in state.parent.iterdir() if p.name.startswith("s.db")) == ["s.db"]
    assert len(rec.hits) == 1

    # What the dry run saw is still news for the real run.
    assert (await spmon("once", "--config", path))[0] == 0
    assert sorted(body["type"] for body in rec.bodies()[1:]) == [
        "review.overdue_resolved", "session.status_changed",
    ]  # fmt: skip


async def test_once_beside_a_running_spmon_needs_dry_run(simulator, tmp_path: Path) -> None:
    sim = await simulator(1)
    sim.sim.set(sim.keys[0], status="Scheduled", reviewRequired=False, reviewByDate=None)
    path = once_config(tmp_path, sim.url, sim.keys)
    async with SqliteStore(tmp_path / "s.db"):  # holds the single-instance lock, as `run` does
        code, out, err = await spmon("once", "--config", path)
        assert code == 3 and out == ""
        assert "UNKNOWN" in err and "--dry-run" in err
        code, doc, _ = await once_json("--dry-run", "--config", path)
        assert code == 0 and doc["summary"]["polled"] == 1


async def test_once_without_watches_is_unknown(tmp_path: Path, unused_tcp_port: int) -> None:
    path = once_config(tmp_path, f"http://127.0.0.1:{unused_tcp_port}", [])
    code, out, _ = await spmon("once", "--config", path)
    assert code == 3 and out.splitlines()[-1] == "UNKNOWN: no sessions are watched"


async def test_once_config_error_exits_2_with_nothing_on_stdout(tmp_path: Path) -> None:
    bad = config(tmp_path / "c.yaml", {"api": {"rate_limit": -1}})
    code, out, err = await spmon("once", "--json", "--config", bad)
    assert code == 2 and out == "" and "api.rate_limit" in err


async def test_healthcheck_fails_when_nothing_listens(unused_tcp_port: int) -> None:
    code, _, err = await spmon(
        "healthcheck", "--url", f"http://127.0.0.1:{unused_tcp_port}/healthz", "--timeout", "1"
    )
    assert code == 1 and "unhealthy" in err


async def test_simulate_writes_a_config_that_run_accepts(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    import os

    out = tmp_path / "shared" / "config.yaml"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "simulate", "--sessions", "4", "--listen", f"127.0.0.1:{unused_tcp_port}",
        "--config-out", str(out), env=os.environ.copy(), stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while not out.exists():
                await asyncio.sleep(0.05)
        code, text, err = await spmon("check-config", "--config", str(out))
    finally:
        proc.terminate()
        await proc.wait()
    assert code == 0, err
    assert "4 watched sessions" in text
    assert f"http://127.0.0.1:{unused_tcp_port}" in text

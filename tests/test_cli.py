"""The spmon command as users run it: real subprocesses, real exit codes."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from monitor.core.events import isoformat
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


async def test_once_prints_a_table_and_exits_1_on_overdue(simulator, tmp_path: Path) -> None:
    sim = await simulator(2)
    late, fine = sim.keys
    sim.sim.set(
        late,
        status="Closed",
        reviewRequired=True,
        reviewed=False,
        reviewByDate=isoformat(datetime.now(UTC) - timedelta(hours=3)),
    )
    sim.sim.set(fine, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)
    path = config(
        tmp_path / "c.yaml",
        {
            "api": {"base_url": sim.url},
            "state": {"path": str(tmp_path / "s.db")},
            "watches": watches_of(sim.keys, course="BIO101"),
        },
    )
    code, out, _ = await spmon("once", "--config", path)
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("ES")}
    assert "Closed" in lines[late.session_sid] and "3.0h late" in lines[late.session_sid]
    assert "Scheduled" in lines[fine.session_sid] and " no " in lines[fine.session_sid]
    assert "2 sessions, 1 overdue reviews" in out
    sim.sim.set(late, reviewed=True)
    code, out, _ = await spmon("once", "--config", path)
    assert code == 0 and "0 overdue" in out


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

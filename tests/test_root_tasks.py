"""The composition root owns its resources: a root task that stops early stops the service, the
committer lives and dies with the service, and secrets learned at run time reach the redactor."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from monitor import aio, logs, service, wiring
from monitor.settings import Settings
from tests.conftest import watches_of


def settings_for(url: str, keys, state: Path, **extra) -> Settings:
    return Settings(
        api={"base_url": url, "rate_limit": 500, "retries": 0, "timeout": 2},
        poll={"interval": 1},
        state={"path": state},
        http={"listen": "127.0.0.1:0"},
        watches=watches_of(keys),
        **extra,
    )


async def test_a_root_task_that_returns_early_is_a_failure() -> None:
    async def quits() -> None:
        return None

    stop = asyncio.Event()
    with capture_logs() as entries, pytest.raises(aio.TaskEnded, match="poller"):
        await aio.guarded("poller", quits(), stop=stop)
    assert {"event": "task.exited", "task": "poller", "log_level": "error"} in entries
    stop.set()
    await aio.guarded("poller", quits(), stop=stop)  # returning once asked to stop is fine


async def test_the_service_stops_with_an_error_when_its_committer_ends(
    simulator, state_path: Path
) -> None:
    sim = await simulator(3)
    settings = settings_for(sim.url, sim.keys, state_path)
    stop = asyncio.Event()
    ended: list[asyncio.Task[None]] = []

    def on_ready(svc: service.Service) -> None:
        # The committer's own exit path, run while the service still runs, as a crash would.
        ended.append(asyncio.ensure_future(svc.committer.__aexit__(None, None, None)))

    with capture_logs() as entries, pytest.raises(service.ServiceFailed, match="committer"):
        await asyncio.wait_for(service.run(settings, stop=stop, on_ready=on_ready), 20)
    await asyncio.gather(*ended)
    assert not stop.is_set()  # nobody asked it to stop: the failure did
    assert any(e["event"] == "task.exited" and e["task"] == "committer" for e in entries)


async def test_a_stopped_committer_refuses_commits_instead_of_hanging(
    simulator, state_path: Path
) -> None:
    sim = await simulator(1)
    async with service.build(settings_for(sim.url, sim.keys, state_path), serve_http=False) as svc:
        await svc.committer.__aexit__(None, None, None)
        with capture_logs() as entries:
            outcomes = await asyncio.wait_for(svc.poller.poll_all(), 10)
        assert set(outcomes.values()) == {"error"}
        assert {
            "event": "store.commit_failed",
            "polls": 1,
            "error": "the committer is not running",
            "log_level": "error",
        } in entries
        assert all(entry.snapshot is None for entry in svc.watchset.entries.values())


async def test_a_token_read_again_from_its_file_is_redacted_before_anyone_logs_it(
    simulator, state_path: Path, tmp_path: Path
) -> None:
    sim = await simulator(1)
    token_file = tmp_path / "token"
    token_file.write_text("first-token-value\n")
    settings = settings_for(sim.url, sim.keys, state_path, **{})
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"token_file": token_file})}
    )
    out = io.StringIO()
    redactor = logs.configure("json", "info", stream=out)
    try:
        wiring.register_secrets(settings, redactor)
        token_file.write_text("rotated-token-value\n")
        assert wiring.token_source(settings, redactor)() == "rotated-token-value"
        structlog.get_logger("t").info("leak", where="rotated-token-value")
        assert "rotated-token-value" not in out.getvalue()
        assert logs.REDACTED in out.getvalue()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()

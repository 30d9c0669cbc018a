"""Run `python -m monitor` as a real subprocess, the way an operator does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from monitor import service
from monitor.settings import Settings


@dataclass
class Proc:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    async def wait_ready(self, within: float = 20.0) -> None:
        url = f"http://127.0.0.1:{self.port}/readyz"
        async with aiohttp.ClientSession() as http, asyncio.timeout(within):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"spmon exited {self.process.returncode}: {self.output()}")
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.port}/metrics") as resp,
        ):
            return await resp.text()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def stop(self, sig: int = signal.SIGTERM, within: float = 30.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(within):
            return await self.process.wait()


@contextlib.asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[service.Service]:
    """`spmon run` in this process until the block ends (then SIGTERM-like: stop and drain)."""
    stop = asyncio.Event()
    ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(service.run(settings, stop=stop, on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(asyncio.shield(ready), 30)
    finally:
        stop.set()
        await task


def write_config(
    path: Path, *, api_url: str, watches: list[dict[str, Any]], state: Path, **extra: Any
) -> Path:
    config: dict[str, Any] = {
        "api": {"base_url": api_url, "rate_limit": 200, "timeout": "5s", "retries": 0},
        "poll": {"interval": "1s", "jitter": 0},
        "rules": {"overdue_repeat": 0},
        "state": {"path": str(state)},
        "log": {"format": "json", "level": "info"},
        "watches": watches,
        **extra,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def start(config: Path, port: int, log: Path, *, env: dict[str, str] | None = None) -> Proc:
    full_env = {**os.environ, "SPMON_HTTP__LISTEN": f"127.0.0.1:{port}", **(env or {})}
    handle = log.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--config", str(config),
        stdout=handle, stderr=handle, env=full_env,
    )  # fmt: skip
    handle.close()
    return Proc(process, port, log)


def outbox_rows(state: Path) -> list[tuple[str, str, str, int]]:
    """Read the outbox as another process would (WAL allows a concurrent reader)."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT event_id, event_type, state, attempts FROM outbox ORDER BY id"
        ).fetchall()

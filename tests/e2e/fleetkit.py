"""Replicas of `spmon run` on one PostgreSQL database, as the fleet tests drive them: start and
stop real processes on one config, read who holds which shard, wait on conditions (never on
wall time), and a TCP proxy that can cut one replica off from the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pydantic import SecretStr

from monitor.core.shards import SHARDS
from tests.conftest import SimFactory, SimHandle, watches_of
from tests.e2e.helpers import Proc, start, write_config
from tests.sinks.sinkkit import Receiver, Respond

LOCAL_UNSIGNED = {"allow_private": True, "unsigned": True}
CAP = 90.0
"""Turns a hang into a failure naming what never happened; no test asserts a duration."""


async def scene(
    simulator: SimFactory, endpoint: Callable[..., Any], tmp_path: Path, n: int,
    respond: Respond | None = None, **hook: Any,
) -> tuple[SimHandle, Receiver, Path]:  # fmt: skip
    """`n` sessions, all "Scheduled" with no review, watched by a config (`c.yaml`) whose one
    sink is a webhook to a fresh receiver (answering with `respond`; `hook`: sink settings)."""
    sim = await simulator(n)
    rec = await (endpoint(respond) if respond is not None else endpoint())
    for key in sim.keys:
        sim.sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False)
    config = write_config(
        tmp_path / "c.yaml", api_url=sim.url, watches=watches_of(sim.keys), state=tmp_path / "x.db",
        sinks=[{"name": "hook", "type": "webhook", "url": rec.url, **LOCAL_UNSIGNED, **hook}],
    )  # fmt: skip
    return sim, rec, config


def leases(url: SecretStr) -> dict[int, int]:
    """pid → shards held unexpired (by the server's clock; the leader row not counted)."""
    with psycopg.connect(url.get_secret_value()) as conn:
        rows = conn.execute(
            "SELECT owner, count(*) FROM shard_lease WHERE shard >= 0 AND expires_at > now()"
            " GROUP BY owner"
        ).fetchall()
    return {int(owner.split(":")[1]): int(n) for owner, n in rows}


def rows_of(url: SecretStr, pid: int) -> int:
    """Rows of shard_lease (the leader's included) naming `pid` as owner, expired or not."""
    with psycopg.connect(url.get_secret_value()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM shard_lease WHERE split_part(owner, ':', 2) = %s", (str(pid),)
        ).fetchone()
    assert row is not None
    return int(row[0])


def transition_rows(url: SecretStr) -> int:
    with psycopg.connect(url.get_secret_value()) as conn:
        row = conn.execute("SELECT count(*) FROM transition").fetchone()
    assert row is not None
    return int(row[0])


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CAP
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}")
        await asyncio.sleep(0.1)


def transitions(rec: Receiver) -> set[tuple[str, str]]:
    return {(sid, current) for sid, current, _ in changes(rec)}


def changes(rec: Receiver) -> list[tuple[str, str, str]]:
    """(session, new status, event id) of every status change delivered, duplicates kept."""
    return [
        (body["data"]["session"]["session_sid"], body["data"]["current"], body["data"]["id"])
        for body in rec.bodies()
        if body["type"] == "session.status_changed"
    ]


def events(proc: Proc, since: int = 0) -> Iterator[dict[str, Any]]:
    """The replica's JSON log lines from character `since` on (a torn last line skipped)."""
    for line in proc.output()[since:].splitlines():
        with contextlib.suppress(ValueError):
            yield json.loads(line)


def all_held_by(url: SecretStr, pids: set[int]) -> Callable[[], bool]:
    def check() -> bool:
        held = leases(url)
        return set(held) == pids and sum(held.values()) == SHARDS

    return check


@dataclass
class Fleet:
    """Replicas on one config and database; `start` one more, `stop_all` at the end."""

    config: Path
    url: SecretStr
    logs: Path
    ports: Callable[[], int]
    procs: list[Proc] = field(default_factory=list)

    async def start(self, url: str | None = None) -> Proc:
        """A replica on `url` (the database's by default), ready (its first lease round done)."""
        env = {"SPMON_STATE__URL": url or self.url.get_secret_value()}
        log = self.logs / f"r{len(self.procs)}.log"
        proc = await start(self.config, self.ports(), log, env=env)
        self.procs.append(proc)
        await proc.wait_ready(within=CAP)
        return proc

    def live(self) -> list[Proc]:
        return [proc for proc in self.procs if proc.process.returncode is None]

    async def split(self) -> None:
        """Until the live replicas, and only they, hold every shard between them."""
        pids = {proc.process.pid for proc in self.live()}
        await until(all_held_by(self.url, pids), f"{len(pids)} replicas share every shard")

    async def stop_all(self) -> None:
        for proc in self.live():
            proc.process.send_signal(signal.SIGCONT)
            await proc.stop(within=CAP)


@contextlib.asynccontextmanager
async def fleet_of(
    config: Path, url: SecretStr, logs: Path, ports: Callable[[], int], urls: list[str | None]
) -> AsyncIterator[Fleet]:
    """One replica per entry of `urls` (None: the database itself), sharing every shard."""
    fleet = Fleet(config, url, logs, ports)
    try:
        for each in urls:
            await fleet.start(each)
        await fleet.split()
        yield fleet
    finally:
        await fleet.stop_all()


class Proxy:
    """Forwards 127.0.0.1:`port` to `target` byte for byte. `cut()` aborts every connection
    through it and refuses (accepts and drops at once) every new one until `restore()`: what
    a replica sees when its database goes away, while its peers still reach it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.is_cut = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def url(self, url: SecretStr) -> str:
        """`url` with its host and port replaced by this proxy's."""
        parts = urlsplit(url.get_secret_value())
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self) -> None:
        self.is_cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._open |= {client_w, server_w}
        for reader, writer in ((client_r, server_w), (server_r, client_w)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._open.discard(writer)
            writer.transport.abort()  # one side gone: end the other at once too

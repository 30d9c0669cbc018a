"""`spmon quiet add|ls|rm`: one-off quiet windows (a platform outage, an exam-day freeze),
written to the state file beside a running service: no lock and no API needed, SQLite's own
locking serialises the one insert or delete, and the dispatcher re-reads the windows every
second. Events of the sink are held meanwhile and go as one digest when the window ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from monitor.store.postgres.store import SharedPostgresStore

from monitor import aio
from monitor.cli_common import CONFIG_OPTION, DB_OPTION, fail, load, run_async
from monitor.core import durations
from monitor.core.events import isoformat
from monitor.settings import Settings
from monitor.store import SharedSqliteStore, Where, describe, exists, open_shared

__all__ = ["quiet"]

T = TypeVar("T")
Shared: TypeAlias = "SharedSqliteStore | SharedPostgresStore"


@click.group()
def quiet() -> None:
    """One-off quiet windows per sink; safe beside a running `spmon run`."""


@quiet.command(name="add")
@CONFIG_OPTION
@DB_OPTION
@click.argument("sink")
@click.option(
    "--until", "until", required=True, help="End: a duration from now (2h) or a time (ISO 8601)."
)
@click.option("--from", "begin", default=None, help="Start (default now); same forms as --until.")
@click.option("--reason", default="", help="Shown by `spmon quiet ls`.")
def quiet_add(
    config: Path | None, db: Path | None, sink: str, until: str, begin: str | None, reason: str
) -> None:
    """Hold SINK's alerts until --until; they go as one digest then."""
    settings = load(config) if db is None or config is not None else None
    zone = _zone(settings, sink)
    now = aio.SYSTEM.now()
    start = _instant(begin, now, zone) if begin else now
    end = _instant(until, now, zone)
    if end <= max(start, now):
        fail([f"--until {until} is not in the future (nor after --from)"])

    async def add(store: Shared) -> int:
        return await store.add_quiet(sink, start=start, end=end, reason=reason, now=now)

    number = _with_store(settings, db, add)
    click.echo(f"quiet window {number}: {sink} from {_shown(start)} until {_shown(end)}")


@quiet.command(name="ls")
@CONFIG_OPTION
@DB_OPTION
def quiet_ls(config: Path | None, db: Path | None) -> None:
    """The one-off windows that have not ended."""
    settings = load(config) if db is None or config is not None else None

    async def read(store: Shared) -> list[str]:
        windows = await store.quiet_windows(now=aio.SYSTEM.now())
        return [
            f"{w.id}\t{w.sink}\t{_shown(w.start)}\t{_shown(w.end)}\t{w.reason}" for w in windows
        ]

    lines = _with_store(settings, db, read)
    click.echo("ID\tSINK\tFROM\tUNTIL\tREASON")
    for line in lines:
        click.echo(line)


@quiet.command(name="rm")
@CONFIG_OPTION
@DB_OPTION
@click.argument("window_id", type=int)
def quiet_rm(config: Path | None, db: Path | None, window_id: int) -> None:
    """End a window now: what it held is sent within a second or two."""
    settings = load(config) if db is None or config is not None else None

    async def remove(store: Shared) -> bool:
        return await store.remove_quiet(window_id)

    if not _with_store(settings, db, remove):
        fail([f"no quiet window {window_id}"])
    click.echo(f"quiet window {window_id} removed")


def _zone(settings: Settings | None, sink: str) -> ZoneInfo:
    if settings is None:
        return ZoneInfo("UTC")
    zones = {entry.name: entry.timezone for entry in settings.sinks} or {"log": None}
    if sink not in zones:
        fail([f"no sink named {sink!r} (configured: {', '.join(sorted(zones))})"])
    return ZoneInfo(zones[sink] or "UTC")


def _instant(text: str, now: float, zone: ZoneInfo) -> float:
    """`2h` / `+2h` from now, or an ISO 8601 time (without an offset: the sink's zone)."""
    try:
        return now + durations.seconds(text.removeprefix("+"))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail([f"{text!r} is neither a duration (2h) nor a time (2026-12-24T18:00)"])
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


def _shown(at: float) -> str:
    return isoformat(datetime.fromtimestamp(round(at), UTC))


def _with_store(
    settings: Settings | None, db: Path | None, use: Callable[[Shared], Awaitable[T]]
) -> T:
    where: Where | None = db or (settings.state.where() if settings is not None else None)
    if where is None or not exists(where):
        fail([f"no state at {describe(where) if where is not None else 'None'}"])

    async def run() -> T:
        async with open_shared(where) as store:
            return await use(store)

    return run_async(run())

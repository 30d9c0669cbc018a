"""`spmon outbox`: list, retry and purge deliveries; safe beside a running `spmon run`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from monitor.cli_common import CONFIG_OPTION, DB_OPTION, fail, load, run_async
from monitor.core import checkup
from monitor.core.events import ALERT_TYPES, isoformat
from monitor.core.outbox import SETTLED, OutboxState
from monitor.settings import parse_duration
from monitor.store import OutboxAdmin, exists, open_shared
from monitor.store.base import OutboxEntry, SinkState

__all__ = ["outbox"]

T = TypeVar("T")

# -- spmon outbox: pending and dead deliveries -------------------------------------------------


@click.group()
def outbox() -> None:
    """Inspect and repair alert deliveries; safe to run beside a running `spmon run`."""


@outbox.command(name="list")
@CONFIG_OPTION
@DB_OPTION
@click.option(
    "--state",
    "states",
    type=click.Choice(
        [str(state) for state in (OutboxState.PENDING, OutboxState.DEAD, OutboxState.DELIVERED)]
    ),
    multiple=True,
    help="Rows in this state (repeatable; default: pending and dead).",
)
@click.option("--sink", default=None, help="Only this sink.")
@click.option("--limit", default=100, show_default=True, help="Rows per state at most.")
def outbox_list(
    config: Path | None, db: Path | None, states: tuple[str, ...], sink: str | None, limit: int
) -> None:
    """Show deliveries, oldest first, with attempts, next attempt and last error."""

    async def read(store: OutboxAdmin) -> list[OutboxEntry]:
        found: list[OutboxEntry] = []
        for state in states or (OutboxState.PENDING, OutboxState.DEAD):
            found += await store.entries(state=OutboxState(state), sink=sink, limit=limit)
        _print_disabled(await store.sink_states())
        return sorted(found, key=lambda entry: entry.id)

    entries = _with_store(config, db, read)
    for line in _outbox_table(entries, datetime.now(UTC).timestamp()):
        click.echo(line)
    click.echo(f"{len(entries)} deliveries")


@outbox.command(name="retry")
@CONFIG_OPTION
@DB_OPTION
@click.option("--sink", default=None, help="Re-queue this sink's dead deliveries.")
@click.option("--id", "ids", type=int, multiple=True, help="Re-queue this row (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Re-queue every dead delivery.")
@click.option("--pending", is_flag=True, help="Instead: make waiting (pending) deliveries due now.")
def outbox_retry(
    config: Path | None,
    db: Path | None,
    sink: str | None,
    ids: tuple[int, ...],
    everything: bool,
    pending: bool,
) -> None:
    """Put dead deliveries back in the queue: same event id, a fresh retry schedule. With
    --pending, send the deliveries that wait for a later retry now instead (after fixing a
    receiver): same event ids, in order per session."""
    if not (sink or ids or everything):
        fail(["outbox retry: name --sink, --id or --all"])
    now = datetime.now(UTC).timestamp()
    if pending:
        _retry_pending(config, db, sink=sink, ids=ids, now=now)
        return

    async def requeue(store: OutboxAdmin) -> int:
        if ids:
            return await store.requeue_rows(list(ids), now=now)
        return await store.requeue_dead(sink=sink, now=now)

    count = _with_store(config, db, requeue)
    click.echo(f"re-queued {count} dead deliveries (a running spmon sends them within a second)")


def _retry_pending(
    config: Path | None, db: Path | None, *, sink: str | None, ids: tuple[int, ...], now: float
) -> None:
    if ids:
        fail(["outbox retry --pending: name --sink or --all, not --id"])

    async def expedite(store: OutboxAdmin) -> int:
        return await store.make_due(sink=sink, now=now)

    count = _with_store(config, db, expedite)
    click.echo(
        f"made {count} pending deliveries due now (a running spmon sends them within a second;"
        " to a sink it counts as down, at its next probe)"
    )


@outbox.command(name="purge")
@CONFIG_OPTION
@DB_OPTION
@click.option(
    "--state",
    type=click.Choice([str(state) for state in SETTLED]),
    default=str(OutboxState.DELIVERED),
    show_default=True,
)
@click.option("--sink", default=None, help="Only this sink.")
@click.option("--older-than", default=None, help="Only rows created longer ago, e.g. 7d.")
def outbox_purge(
    config: Path | None, db: Path | None, state: str, sink: str | None, older_than: str | None
) -> None:
    """Delete delivered (or dead) rows. Each session's latest overdue/resolved row is kept:
    it tells the Alertmanager resend loop which alerts are still firing."""
    before = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            fail([f"outbox purge: --older-than: {exc}"])
        assert isinstance(age, float)  # parse_duration turns every string into seconds
        before = datetime.now(UTC).timestamp() - age
    keep = sorted(ALERT_TYPES)

    async def purge(store: OutboxAdmin) -> int:
        return await store.purge_settled(
            state=OutboxState(state), sink=sink, before=before, keep=keep
        )

    click.echo(f"purged {_with_store(config, db, purge)} {state} deliveries")


def _with_store(
    config: Path | None, db: Path | None, use: Callable[[OutboxAdmin], Awaitable[T]]
) -> T:
    where = db or load(config).state.where()
    if not exists(where):
        fail([f"no state file at {where}"])

    async def run() -> T:
        async with open_shared(where) as store:
            return await use(store)

    return run_async(run())


def _print_disabled(states: Mapping[str, SinkState]) -> None:
    for state in states.values():
        when = isoformat(datetime.fromtimestamp(state.disabled_at, UTC))
        click.echo(f"sink {state.sink} DISABLED since {when}: {state.reason}", err=True)


def _outbox_table(entries: list[OutboxEntry], now: float) -> Iterator[str]:
    header = ("ID", "STATE", "SINK", "TYPE", "SESSION", "EVENT", "TRIES", "AGE", "NEXT", "ERROR")
    rows = [header, *(_outbox_row(entry, now) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        yield "  ".join([*cells, row[-1]]).rstrip()


def _outbox_row(entry: OutboxEntry, now: float) -> tuple[str, ...]:
    due = entry.next_attempt_at - now
    upcoming = ("in " + checkup.human(due)) if due > 0 else "now"
    return (
        str(entry.id),
        entry.state,
        entry.sink,
        entry.event_type,
        entry.session_sid or "-",
        entry.event_id,
        str(entry.attempts),
        checkup.human(max(0.0, now - entry.created_at)),
        upcoming if entry.state is OutboxState.PENDING else "-",
        entry.last_error or "",
    )

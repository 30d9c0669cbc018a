"""`spmon watch`: list and edit the watch set in the state file; `check-config`'s source report.

`ls` reads beside a running service. `add`, `rm` and `import` take the store's lock, so they
work offline only: a running service's watches change through the admin API (`/api/v1/watches`).
Watches added here have source "cli": no reconcile removes them, and no file takes them over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor import aio, watchsync, wiring
from monitor.cli_common import CONFIG_OPTION, DB_OPTION, fail, load, run_async
from monitor.core import durations, watchcsv
from monitor.core.events import isoformat
from monitor.core.keys import SESSION_SID, SessionKey
from monitor.core.watches import NO_LABELS, REMOVING_KINDS, Changes, Watch, kind_of
from monitor.logs import Redactor
from monitor.settings import Settings
from monitor.sources import SourceError
from monitor.store import (
    StateFileError,
    Store,
    StoreLocked,
    WatchRecord,
    Where,
    describe,
    exists,
    open_store,
    read_watches,
)

__all__ = ["source_report", "watch"]

T = TypeVar("T")


@click.group()
def watch() -> None:
    """List and edit the watch set in the state file (add/rm/import: with spmon stopped)."""


@watch.command(name="ls")
@CONFIG_OPTION
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--all", "everything", is_flag=True, help="Also watches removed, and when.")
def watch_ls(config: Path | None, db: Path | None, as_json: bool, everything: bool) -> None:
    """Show the watched sessions with their source, interval and labels."""
    where = db or load(config).state.where()
    records = run_async(_history(where)) if exists(where) else []
    shown = records if everything else [r for r in records if r.removed_at is None]
    if as_json:
        click.echo(json.dumps({"watches": [_document(r) for r in shown]}, indent=2))
        return
    for line in _table(shown):
        click.echo(line)
    active = sum(r.removed_at is None for r in shown)
    click.echo(f"{active} watched" + (f", {len(shown) - active} removed" if everything else ""))


@watch.command(name="add")
@CONFIG_OPTION
@DB_OPTION
@click.argument("install_sid")
@click.argument("exam_sid")
@click.argument("session_sid")
@click.option("--label", "labels", multiple=True, help="key=value, carried on alerts (repeatable).")
@click.option("--interval", default=None, help="Poll interval for this session, e.g. 5m.")
def watch_add(
    config: Path | None,
    db: Path | None,
    install_sid: str,
    exam_sid: str,
    session_sid: str,
    labels: tuple[str, ...],
    interval: str | None,
) -> None:
    """Watch one session (or change its labels and interval)."""
    key = SessionKey(install_sid, exam_sid, session_sid)
    if problems := key.problems():
        fail([f"watch add: {problem}" for problem in problems])
    added = Watch(key, _labels(labels), _interval(interval), watchsync.CLI)
    held = _locked(_path(config, db), lambda store: store.add_watch(added, now=aio.SYSTEM.now()))
    was = f" (was from {held.source})" if held is not None and held.source != added.source else ""
    click.echo(f"{'updated' if held else 'added'} {session_sid}{was}")


@watch.command(name="rm")
@CONFIG_OPTION
@DB_OPTION
@click.argument("session_sid")
def watch_rm(config: Path | None, db: Path | None, session_sid: str) -> None:
    """Stop watching one session; its history stays (`ls --all`)."""
    if not SESSION_SID.fullmatch(session_sid):
        fail([f"watch rm: session sid must match {SESSION_SID.pattern}"])
    path = _path(config, db)
    now = aio.SYSTEM.now()
    held = _locked(path, lambda store: store.remove_watch(session_sid, now=now))
    if held is None:
        fail([f"watch rm: {session_sid} is not watched in {describe(path)}"], 1)
    click.echo(f"removed {session_sid}")
    if kind_of(held.source) in REMOVING_KINDS:
        click.echo(
            f"spmon: note: it came from {held.source}; the next start watches it again "
            "unless it is removed there",
            err=True,
        )


@watch.command(name="import")
@CONFIG_OPTION
@DB_OPTION
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def watch_import(config: Path | None, db: Path | None, file: Path) -> None:
    """Watch every session of a CSV file (all or nothing: a file with problems adds none)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail([f"watch import: {file}: cannot read ({getattr(exc, 'strerror', None) or exc})"])
    parsed = watchcsv.parse(text, watchsync.CLI)
    if parsed.problems:
        fail([f"watch import: {file}: {problem}" for problem in parsed.problems])

    async def merge(store: Store) -> Changes:
        stored = await store.active_watches()
        added = [w for key, w in parsed.watches.items() if key not in stored]
        changed = [w for key, w in parsed.watches.items() if key in stored and stored[key] != w]
        changes = Changes(added=tuple(added), changed=tuple(changed))
        await store.apply_watches(changes, now=aio.SYSTEM.now())
        return changes

    done = _locked(_path(config, db), merge)
    same = len(parsed.watches) - len(done.added) - len(done.changed)
    click.echo(
        f"imported {file}: {len(done.added)} added, {len(done.changed)} updated, {same} same"
    )


def source_report(settings: Settings) -> list[str]:
    """`check-config`: each source with its watches, and what a start or reload would change
    in the state file, if there is one (read-only: beside a running service too)."""
    desired, unread = asyncio.run(_read_sources(settings))
    lines = [
        f"# source {name}: {_count(len(listed))}"
        + (f" (cannot read: {unread[name]})" if name in unread else "")
        for name, listed in desired.listed.items()
    ]
    path = settings.state.where()
    if exists(path):
        try:
            stored = asyncio.run(_active(path))
        except StateFileError as exc:
            return [*lines, f"# {exc}"]
        changes = watchsync.plan(stored, desired)
        lines.append(
            f"# against {settings.state.shown()}: {len(changes.added)} added, {len(changes.removed)} removed, "
            f"{len(changes.changed)} changed"
        )
    return lines


async def _read_sources(settings: Settings) -> tuple[watchsync.Desired, dict[str, str]]:
    """Like start-up's read, with failures kept as text rather than logged."""
    readers = wiring.url_readers(settings, Redactor())
    local = settings.listings()
    listed: dict[str, Mapping[SessionKey, Watch]] = {}
    unread: dict[str, str] = {}
    for name in settings.source_names():
        reader = readers.get(name)
        try:
            found = await reader.read() if reader else None
        except SourceError as exc:
            unread[name] = str(exc)
            found = None
        if found is not None and found.problems:
            unread[name] = "; ".join(found.problems)
        listed[name] = found.watches if found is not None else local.get(name, {})
    return watchsync.Desired(listed, frozenset(listed) - frozenset(unread)), unread


async def _active(path: Where) -> dict[SessionKey, Watch]:
    async with read_watches(path) as store:
        return await store.active_watches()


async def _history(path: Where) -> list[WatchRecord]:
    async with read_watches(path) as store:
        return await store.watch_history()


def _path(config: Path | None, db: Path | None) -> Where:
    return db or load(config).state.where()


def _locked(path: Where, use: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_store(path) as store:
            return await use(store)

    try:
        return asyncio.run(run())
    except StoreLocked as exc:
        what = "state file" if isinstance(exc.path, Path) else "state database"
        fail([f"{what} {exc.path}: in use by a running spmon; stop it to edit its watches"])
    except StateFileError as exc:
        fail([str(exc)])


def _labels(pairs: Sequence[str]) -> Mapping[str, str]:
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not (sep and name.strip()):
            fail(["watch add: --label expects key=value"])
        labels[name.strip()] = value.strip()
    return labels or NO_LABELS


def _interval(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = durations.seconds(text)
    except ValueError as exc:
        fail([f"watch add: --interval: {exc}"])
    if seconds <= 0:
        fail(["watch add: --interval: must be positive"])
    return seconds


def _count(n: int) -> str:
    return "1 watch" if n == 1 else f"{n} watches"


def _when(at: float | None) -> str:
    return isoformat(datetime.fromtimestamp(at, UTC)) if at is not None else ""


def _document(record: WatchRecord) -> dict[str, Any]:
    w = record.watch
    return {
        **w.key._asdict(),
        "labels": dict(w.labels),
        "interval": w.interval,
        "source": w.source,
        "added_at": _when(record.added_at),
        "removed_at": _when(record.removed_at) or None,
    }


def _table(records: Sequence[WatchRecord]) -> Iterator[str]:
    header = ("SESSION", "SOURCE", "INTERVAL", "ADDED", "REMOVED", "LABELS")
    rows = [header, *(_row(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        yield "  ".join([*cells, row[-1]]).rstrip()


def _row(record: WatchRecord) -> tuple[str, ...]:
    w = record.watch
    interval = f"{w.interval:g}s" if w.interval is not None else "-"
    labels = ",".join(f"{k}={v}" for k, v in sorted(w.labels.items()))
    removed = _when(record.removed_at) or "-"
    return (w.key.session_sid, w.source, interval, _when(record.added_at), removed, labels)

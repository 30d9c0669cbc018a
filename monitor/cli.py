"""The `spmon` command line: the only place that reads argv, prints tables or calls sys.exit."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import tempfile
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import structlog
import yaml

from monitor import __version__, logs, service
from monitor.core import checkup, render, routing
from monitor.core.events import isoformat
from monitor.settings import ConfigError, Settings, load_settings, parse_duration
from monitor.simulator import Faults, Simulator, make_keys, serve
from monitor.store import OutboxAdmin, StateFileError, StoreLocked, open_shared
from monitor.store.base import OutboxEntry, SinkState

__all__ = ["main"]

T = TypeVar("T")
log = structlog.get_logger("spmon.cli")
EXIT_CONFIG = 2
CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML configuration file (default: $SPMON_CONFIG).",
)


def _fail(lines: list[str], code: int = EXIT_CONFIG) -> NoReturn:
    for line in lines:
        click.echo(f"spmon: {line}", err=True)
    sys.exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        _fail([f"config error: {line}" for line in exc.lines])


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except StateFileError as exc:  # locked, unreadable, empty, foreign: one line, exit 2
        _fail([str(exc)])


@click.group()
@click.version_option(__version__, prog_name="spmon")
def main() -> None:
    """Watch SmarterProctoring exam sessions; export metrics; deliver alerts."""


@main.command()
@CONFIG_OPTION
def run(config: Path | None) -> None:
    """Poll the watched sessions until SIGTERM/SIGINT."""
    settings = _settings(config)
    logs.configure(settings.log.format, settings.log.level)
    _run(service.run(settings))


@main.command(name="check-config")
@CONFIG_OPTION
def check_config(config: Path | None) -> None:
    """Validate the configuration and print it with secrets masked (exit 2 when invalid)."""
    settings = _settings(config)
    click.echo(yaml.safe_dump(settings.redacted(), sort_keys=False), nl=False)
    click.echo(f"# {len(settings.watches)} watched sessions, {len(settings.sinks)} sinks")
    if warning := settings.capacity_warning():
        click.echo(f"spmon: warning: {warning}", err=True)
    for line in routing.warnings([sink.route() for sink in settings.sinks]):
        click.echo(f"spmon: warning: {line}", err=True)
    for line in (notice for sink in settings.sinks for notice in sink.notices()):
        click.echo(f"spmon: warning: {line}", err=True)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option(
    "--dry-run", is_flag=True, help="Poll and print, but send nothing and change no state."
)
def once(config: Path | None, as_json: bool, dry_run: bool) -> None:
    """Poll every watch once and report, for cron and monitoring systems.

    Exit 0 OK, 1 a review is overdue, 2 configuration error, 3 unknown (some watch could not
    be polled OK in this run). Logs go to stderr; stdout carries only the report.
    """
    settings = _settings(config)
    logs.configure(settings.log.format, "warning")
    try:
        report = asyncio.run(service.once(settings, dry_run=dry_run))
    except StoreLocked as exc:
        _fail([f"UNKNOWN: {exc}", "`spmon once --dry-run` works beside a running spmon"], 3)
    except StateFileError as exc:  # unreadable, empty, foreign: one line, exit 2
        _fail([str(exc)])
    except sqlite3.Error as exc:
        _fail([f"state file {settings.state.path}: {exc}"])
    except Exception:
        # Exit 1 would claim an overdue review: a crash is unknown, never "overdue" or "OK".
        log.exception("once.crashed")
        _fail(["UNKNOWN: internal error (see the log above)"], checkup.Exit.UNKNOWN)
    if as_json:
        click.echo(json.dumps(report.document(), indent=2))
    else:
        for line in report.table():
            click.echo(line)
        click.echo(report.summary())
    sys.exit(report.exit)


@main.command()
@click.option("--sessions", default=20, show_default=True, help="Simulated sessions to watch.")
@click.option("--change-every", default=30.0, show_default=True, help="Seconds per lifecycle.")
@click.option("--interval", default=5.0, show_default=True, help="Poll interval in seconds.")
def demo(sessions: int, change_every: float, interval: float) -> None:
    """Run spmon against the built-in simulator; alerts appear here within a minute."""
    logs.configure("auto", "info")
    asyncio.run(_demo(sessions, change_every, interval))


async def _demo(sessions: int, change_every: float, interval: float) -> None:
    sim = Simulator(make_keys(sessions, seed=7), seed=7, change_every=change_every)
    with tempfile.TemporaryDirectory(prefix="spmon-demo-") as tmp:
        async with serve(sim) as url:
            settings = Settings(
                api={"base_url": url, "rate_limit": 50},
                poll={"interval": interval},
                rules={"overdue_repeat": 0},
                state={"path": Path(tmp) / "spmon.db"},
                http={"listen": "127.0.0.1:0"},
                watches=_watches(sim),
            )

            def announce(svc: service.Service) -> None:
                click.echo(
                    f"spmon demo: watching {sessions} simulated sessions at {url}; "
                    f"metrics on http://{svc.address}/metrics; Ctrl-C to stop",
                    err=True,
                )

            await service.run(settings, on_ready=announce)


def _watches(sim: Simulator) -> list[dict[str, Any]]:
    courses = ("BIO101", "CHEM201", "HIST110", "MATH150")
    return [
        {
            "install_sid": key.install_sid,
            "exam_sid": key.exam_sid,
            "session_sid": key.session_sid,
            "labels": {"course": courses[i % len(courses)]},
        }
        for i, key in enumerate(sim.keys)
    ]


@main.command()
@click.option("--sessions", default=20, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--listen", default="127.0.0.1:8080", show_default=True, help="host:port to serve on."
)
@click.option("--change-every", default=30.0, show_default=True)
@click.option("--static", is_flag=True, help="Sessions never change (benchmarks).")
@click.option("--token", default=None, help="Require this token header (default: none).")
@click.option("--error-rate", default=0.0, help="Fraction of 5xx answers.")
@click.option("--rate-limit-rate", default=0.0, help="Fraction of 429 answers.")
@click.option("--slow-rate", default=0.0, help="Fraction of slow answers.")
@click.option("--malformed-rate", default=0.0, help="Fraction of malformed bodies.")
@click.option("--config-out", type=click.Path(path_type=Path), help="Write a spmon config here.")
@click.option("--public-url", default=None, help="Base URL spmon should use (in --config-out).")
def simulate(**opts: Any) -> None:
    """Serve the fake SmarterProctoring API (for demos, load tests and compose stacks)."""
    asyncio.run(_simulate(opts))


async def _simulate(opts: dict[str, Any]) -> None:
    faults = Faults(
        error_rate=opts["error_rate"],
        rate_limit_rate=opts["rate_limit_rate"],
        slow_rate=opts["slow_rate"],
        malformed_rate=opts["malformed_rate"],
    )
    keys = make_keys(opts["sessions"], seed=opts["seed"])
    sim = Simulator(
        keys,
        seed=opts["seed"],
        evolve=not opts["static"],
        change_every=opts["change_every"],
        faults=faults,
        token=opts["token"],
    )
    host, _, port = opts["listen"].rpartition(":")
    async with serve(sim, host=host or "0.0.0.0", port=int(port)) as url:  # noqa: S104  # an empty host means all interfaces
        if opts["config_out"]:
            _write_config(opts["config_out"], opts["public_url"] or url, sim)
        click.echo(f"spmon simulate: {len(keys)} sessions at {url}", err=True)
        await _until_signal()


def _write_config(path: Path, url: str, sim: Simulator) -> None:
    config = {
        "api": {"base_url": url, "rate_limit": 50},
        "poll": {"interval": "10s"},
        "rules": {"overdue_repeat": "1h"},
        "watches": _watches(sim),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    tmp.replace(path)  # atomic: a container waiting for the file never reads half of it


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


@main.command()
@click.option("--url", default="http://127.0.0.1:10317/healthz", show_default=True)
@click.option("--timeout", default=3.0, show_default=True)
def healthcheck(url: str, timeout: float) -> None:
    """Exit 0 when the running service's liveness probe answers 200 (Docker HEALTHCHECK)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310  # operator-given local URL
            sys.exit(0 if resp.status == 200 else 1)
    except OSError as exc:
        click.echo(f"spmon: unhealthy: {exc}", err=True)
        sys.exit(1)


# -- spmon outbox: pending and dead deliveries -------------------------------------------------

DB_OPTION = click.option(
    "--db",
    "db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="State file (default: state.path from the configuration).",
)


@main.group()
def outbox() -> None:
    """Inspect and repair alert deliveries; safe to run beside a running `spmon run`."""


@outbox.command(name="list")
@CONFIG_OPTION
@DB_OPTION
@click.option(
    "--state",
    "states",
    type=click.Choice(["pending", "dead", "delivered"]),
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
        for state in states or ("pending", "dead"):
            found += await store.entries(state=state, sink=sink, limit=limit)
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
        _fail(["outbox retry: name --sink, --id or --all"])
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
        _fail(["outbox retry --pending: name --sink or --all, not --id"])

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
    "--state", type=click.Choice(["delivered", "dead"]), default="delivered", show_default=True
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
            _fail([f"outbox purge: --older-than: {exc}"])
        assert isinstance(age, float)  # parse_duration turns every string into seconds
        before = datetime.now(UTC).timestamp() - age
    keep = sorted(render.ALERT_TYPES)

    async def purge(store: OutboxAdmin) -> int:
        return await store.purge_settled(state=state, sink=sink, before=before, keep=keep)

    click.echo(f"purged {_with_store(config, db, purge)} {state} deliveries")


def _with_store(
    config: Path | None, db: Path | None, use: Callable[[OutboxAdmin], Awaitable[T]]
) -> T:
    path = db or _settings(config).state.path
    if not path.exists():
        _fail([f"no state file at {path}"])

    async def run() -> T:
        async with open_shared(path) as store:
            return await use(store)

    return _run(run())


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
        upcoming if entry.state == "pending" else "-",
        entry.last_error or "",
    )

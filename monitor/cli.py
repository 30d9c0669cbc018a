"""The `spmon` command line: the only place that reads argv, prints tables or calls sys.exit."""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import urllib.request
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml

from monitor import __version__, logs, service
from monitor.core import rules
from monitor.core.events import isoformat
from monitor.poller import Entry
from monitor.settings import ConfigError, Settings, load_settings
from monitor.simulator import Faults, Simulator, make_keys, serve
from monitor.store import StoreLocked

__all__ = ["main"]

T = TypeVar("T")
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
    except StoreLocked as exc:
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


@main.command()
@CONFIG_OPTION
def once(config: Path | None) -> None:
    """Poll every watch once, print a table, exit 1 if any review is overdue (for cron)."""
    settings = _settings(config)
    logs.configure(settings.log.format, "warning")
    done = _run(service.once(settings))
    now = datetime.now(UTC)
    rows = list(done.index.entries.values())
    for line in _table(rows, now):
        click.echo(line)
    overdue = sum(1 for e in rows if e.snapshot and rules.is_overdue(e.snapshot, now))
    click.echo(f"{len(rows)} sessions, {overdue} overdue reviews")
    sys.exit(1 if overdue else 0)


def _table(entries: list[Entry], now: datetime) -> Iterator[str]:
    header = ("SESSION", "LABELS", "STATUS", "REVIEW", "REVIEW BY", "OVERDUE", "LAST POLL")
    rows = [header, *(_row(entry, now) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _row(entry: Entry, now: datetime) -> tuple[str, ...]:
    snap = entry.snapshot
    labels = ",".join(f"{k}={v}" for k, v in sorted(entry.labels.items())) or "-"
    outcome = "ok" if entry.failures == 0 and snap else ("not found" if entry.missing else "failed")
    if snap is None:
        return (entry.key.session_sid, labels, "-", "-", "-", "-", outcome)
    review = "done" if snap.reviewed else ("required" if snap.review_required else "not required")
    deadline = isoformat(snap.review_by_date) if snap.review_by_date else "-"
    late = ""
    if rules.is_overdue(snap, now) and snap.review_by_date is not None:
        late = _human((now - snap.review_by_date).total_seconds()) + " late"
    return (
        entry.key.session_sid,
        labels,
        snap.status or "-",
        review,
        deadline,
        late or "no",
        outcome,
    )


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@main.command()
@click.option("--sessions", default=20, show_default=True, help="Simulated sessions to watch.")
@click.option("--change-every", default=30.0, show_default=True, help="Seconds per lifecycle.")
@click.option("--interval", default=5.0, show_default=True, help="Poll interval in seconds.")
def demo(sessions: int, change_every: float, interval: float) -> None:
    """Run spmon against the built-in simulator; alerts appear here within a minute."""
    logs.configure("console" if sys.stdout.isatty() else "json", "info")
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

"""The `spmon` command line: the only place that reads argv, prints tables or calls sys.exit."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog
import yaml

from monitor import __version__, logs, malloc, service
from monitor import once as checking
from monitor.cli_common import CONFIG_OPTION, fail, load, run_async
from monitor.cli_demo import DEMO_ADMIN, DEMO_METRICS, STATUS_EVERY, demo_watches, run_demo
from monitor.cli_outbox import outbox
from monitor.cli_quiet import quiet
from monitor.cli_sink import test_sink
from monitor.cli_watch import source_report, watch
from monitor.core import checkup, routing
from monitor.store import StateFileError, StoreLocked, database_errors, migrate

if TYPE_CHECKING:
    from monitor.simulator import Simulator

__all__ = ["main"]

log = structlog.get_logger("spmon.cli")


_TABLES = ("status", "sessions", "history")
"""Commands of `cli_status`, imported when one of them is asked for (or listed by --help):
with it comes tabulate, which no other command, `spmon run` least of all, needs."""


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_TABLES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _TABLES:
            command: click.Command = getattr(
                importlib.import_module("monitor.cli_status"), cmd_name
            )
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="spmon")
def main() -> None:
    """Watch SmarterProctoring exam sessions; export metrics; deliver alerts."""


@main.command()
@CONFIG_OPTION
def run(config: Path | None) -> None:
    """Poll the watched sessions until SIGTERM/SIGINT."""
    malloc.pin_mmap_threshold()  # before the watch files are read: their blocks are the first
    settings = load(config)
    redactor = logs.configure(settings.log.format, settings.log.level)
    path = config or (Path(os.environ["SPMON_CONFIG"]) if os.environ.get("SPMON_CONFIG") else None)
    run_async(service.run(settings, redactor=redactor, reloadable=True, config=path))


@main.command(name="check-config")
@CONFIG_OPTION
def check_config(config: Path | None) -> None:
    """Validate the configuration and print it with secrets masked (exit 2 when invalid)."""
    settings = load(config)
    click.echo(yaml.safe_dump(settings.redacted(), sort_keys=False), nl=False)
    click.echo(f"# {settings.watch_count} watched sessions, {len(settings.sinks)} sinks")
    for line in source_report(settings):
        click.echo(line)
    if warning := settings.capacity_warning():
        click.echo(f"spmon: warning: {warning}", err=True)
    for line in routing.warnings([sink.route() for sink in settings.sinks]):
        click.echo(f"spmon: warning: {line}", err=True)
    for line in (notice for sink in settings.sinks for notice in sink.notices()):
        click.echo(f"spmon: warning: {line}", err=True)


@main.command(name="migrate")
@CONFIG_OPTION
def migrate_command(config: Path | None) -> None:
    """Create or upgrade the state's schema (SQLite file or PostgreSQL database), then exit.
    `spmon run` migrates too; this is for a deploy step or an init container."""
    settings = load(config)
    logs.configure(settings.log.format, "warning")
    version = run_async(migrate(settings.state.where()))
    click.echo(f"spmon: {settings.state.shown()} is at schema {version}")


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
    settings = load(config)
    redactor = logs.configure(settings.log.format, "warning")
    try:
        report = asyncio.run(checking.once(settings, dry_run=dry_run, redactor=redactor))
    except StoreLocked as exc:
        fail([f"UNKNOWN: {exc}", "`spmon once --dry-run` works beside a running spmon"], 3)
    except StateFileError as exc:  # unreadable, empty, foreign: one line, exit 2
        fail([str(exc)])
    except database_errors() as exc:
        what = "state file" if settings.state.url is None else "state database"
        fail([f"{what} {settings.state.shown()}: {exc}"])
    except Exception:
        # Exit 1 would claim an overdue review: a crash is unknown, never "overdue" or "OK".
        log.exception("once.crashed")
        fail(["UNKNOWN: internal error (see the log above)"], checkup.Exit.UNKNOWN)
    if as_json:
        click.echo(json.dumps(report.document(), indent=2))
    else:
        for line in report.table():
            click.echo(line)
        click.echo(report.summary())
    sys.exit(report.exit)


@main.command()
@click.option("--sessions", default=20, show_default=True, help="Simulated sessions to watch.")
@click.option(
    "--change-every",
    default=1800.0,
    show_default=True,
    help="Seconds a simulated session takes from booking to its review deadline.",
)
@click.option("--interval", default=5.0, show_default=True, help="Poll interval in seconds.")
@click.option(
    "--status-every", default=STATUS_EVERY, show_default=True, help="Seconds between status lines."
)
def demo(sessions: int, change_every: float, interval: float, status_every: float) -> None:
    """Run spmon against the built-in simulator: one line per alert, a status line every 10 s."""
    # Console lines even into a file or a pipe (colour only on a terminal): the demo is read.
    logs.configure("console", "info")
    asyncio.run(run_demo(sessions, change_every, interval, status_every=status_every))


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
    # Imported here: `spmon run`, which imports this module, has no use for the simulator.
    from monitor.simulator import Faults, Simulator, make_keys, serve

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
        "metrics": DEMO_METRICS,
        "admin": DEMO_ADMIN,
        "watches": demo_watches(sim),
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


main.add_command(outbox)
main.add_command(watch)
main.add_command(test_sink)
main.add_command(quiet)

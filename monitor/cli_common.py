"""What every `spmon` command shares: the --config option, one-line failures, loading settings,
and running a coroutine whose state-file errors become one line and exit 2."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from monitor.service import ServiceFailed
from monitor.settings import ConfigError, Settings, load_settings
from monitor.store import StateFileError

__all__ = ["CONFIG_OPTION", "DB_OPTION", "EXIT_CONFIG", "fail", "load", "run_async"]

T = TypeVar("T")
EXIT_CONFIG = 2
EXIT_FAILED = 1
CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML configuration file (default: $SPMON_CONFIG).",
)
DB_OPTION = click.option(
    "--db",
    "db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="State file (default: state.path from the configuration).",
)


def fail(lines: list[str], code: int = EXIT_CONFIG) -> NoReturn:
    for line in lines:
        click.echo(f"spmon: {line}", err=True)
    sys.exit(code)


def load(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail([f"config error: {line}" for line in exc.lines])


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except StateFileError as exc:  # locked, unreadable, empty, foreign: one line, exit 2
        fail([str(exc)])
    except ServiceFailed as exc:  # the crash itself is in the log, with its traceback
        fail([str(exc)], EXIT_FAILED)

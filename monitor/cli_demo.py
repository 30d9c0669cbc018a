"""`spmon demo`: spmon against the built-in simulator, alerts as one line each on the console.

The simulated sessions move at a pace a person can follow (a session's life, booked to
reviewed, takes `change_every` seconds: 30 minutes by default, a milestone every few
minutes), and every 10 s a status line says how many are watched and overdue and where the
status page and metrics are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from monitor import service
from monitor.core import console
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.simulator import Simulator

__all__ = ["DEMO_ADMIN", "DEMO_METRICS", "STATUS_EVERY", "demo_watches", "local_zone", "run_demo"]

DEMO_METRICS: Final = {"by_labels": ["course"]}
"""The demo's watches carry a course each: the dashboard's "Overdue by course" shows them."""
DEMO_ADMIN: Final = {"read": "open"}
"""The demo's status page and API reads need no token: simulated sessions, on loopback."""
STATUS_EVERY: Final = 10.0


def demo_watches(sim: Simulator) -> list[dict[str, Any]]:
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


def local_zone() -> str:
    """The machine's zone by name (TZ, else /etc/localtime's link), UTC when neither names one:
    the demo shows the person at the terminal their own clock."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(str(Path("/etc/localtime").resolve()).partition("zoneinfo/")[2])
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return name
    return "UTC"


async def run_demo(
    sessions: int, change_every: float, interval: float, *, status_every: float = STATUS_EVERY
) -> None:
    from monitor.simulator import Simulator, make_keys, serve  # not for `spmon run`

    sim = Simulator(make_keys(sessions, seed=7), seed=7, change_every=change_every)
    ready: asyncio.Queue[service.Service] = asyncio.Queue(maxsize=1)
    with tempfile.TemporaryDirectory(prefix="spmon-demo-") as tmp:
        async with serve(sim) as url:
            settings = Settings(
                api={"base_url": url, "rate_limit": 50},
                poll={"interval": interval},
                rules={"overdue_repeat": 0},
                state={"path": Path(tmp) / "spmon.db"},
                http={"listen": "127.0.0.1:0"},
                display={"timezone": local_zone()},
                metrics=DEMO_METRICS,
                admin=DEMO_ADMIN,
                watches=demo_watches(sim),
            )

            def announce(svc: service.Service) -> None:
                click.echo(
                    f"spmon demo: watching {sessions} simulated sessions at {url}; "
                    f"status page on http://{svc.address}/; Ctrl-C to stop",
                    err=True,
                )
                ready.put_nowait(svc)

            async with asyncio.TaskGroup() as group:
                status = group.create_task(
                    _status_lines(ready, settings.display.zone, status_every)
                )
                try:
                    await service.run(settings, on_ready=announce)
                finally:
                    status.cancel()


async def _status_lines(ready: asyncio.Queue[service.Service], zone: tzinfo, every: float) -> None:
    svc = await ready.get()
    page = f"http://{svc.address}/" if svc.address else None
    while True:
        await svc.clock.sleep(every)
        summary = await svc.views.summary()
        at = datetime.fromtimestamp(svc.clock.now(), UTC)
        line = console.status_line(
            at,
            zone,
            watched=summary.watched,
            overdue=summary.overdue,
            due_soon=summary.due_soon,
            page=page,
        )
        click.echo(line, err=True)

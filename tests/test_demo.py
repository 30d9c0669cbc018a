"""`spmon demo` as a person sees it: one line per alert, a status line, nothing wrapped."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from monitor.core import console

ALERT = re.compile(
    r"\d\d:\d\d:\d\d (STATUS|REVIEW|DEADLINE|OVERDUE|RESOLVED|DUE SOON|NOT FOUND|API AUTH) +\S.*"
)
STATUS = re.compile(r"\d\d:\d\d:\d\d ·+ \d+ watched, \d+ overdue, \d+ due soon · http://\S+/ .*")


async def test_the_demo_prints_one_short_line_per_alert_and_status_lines(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:  # a file, not a pipe: an unread pipe would stall the demo
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "demo", "--sessions", "20", "--interval", "1",
            "--change-every", "120", "--status-every", "1",
            stdout=asyncio.subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while True:
                lines = log.read_text().splitlines()
                alerts = [line for line in lines if ALERT.fullmatch(line)]
                if len(alerts) >= 3 and any(STATUS.fullmatch(line) for line in lines):
                    break
                assert process.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
    finally:
        process.terminate()
        await process.wait()
    assert all(len(line) <= console.WIDTH for line in alerts)
    assert "\x1b[" not in log.read_text()  # not a terminal: no colour codes
    # An alert is its line alone: no key=value tail, no JSON record.
    assert not any("event_id=" in line or line.startswith("{") for line in lines)

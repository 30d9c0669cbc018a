"""The reloader notices what an operator changes on disk: a new export dropped into a directory
source reloads, and the new settings reach `apply`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from monitor.reload import Reloader
from monitor.settings import Settings, load_settings

HEADER = "install_sid,exam_sid,session_sid\n"


def row(n: int) -> str:
    return f"AI{'1' * 32},EX{'2' * 32},ES{n:032x}\n"


async def test_a_csv_dropped_into_a_directory_source_is_reloaded(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "a.csv").write_text(HEADER + row(1))
    config = tmp_path / "spmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"base_url": "http://127.0.0.1:9"},
                "state": {"path": str(tmp_path / "s.db")},
                "sources": [{"type": "dir", "path": "exports"}],
            }
        )
    )
    applied: list[Settings] = []

    async def apply(new: Settings) -> dict[str, int]:
        applied.append(new)
        return {"watched": len(new.listings().get("dir:exports", {}))}

    metrics = Metrics(CollectorRegistry(), sinks=["log"])
    reloader = Reloader(
        config=config, settings=load_settings(config), apply=apply, metrics=metrics,
        check_every=0.05,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(reloader.run(stop))
    try:
        await asyncio.sleep(0.2)
        assert applied == []  # nothing changed, nothing reloaded
        (exports / "b.csv").write_text(HEADER + row(2))
        async with asyncio.timeout(10):
            while not applied:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    names = {w.key.session_sid for ws in applied[-1].listings().values() for w in ws.values()}
    assert names == {f"ES{1:032x}", f"ES{2:032x}"}


async def test_a_sinks_digest_quiet_or_escalation_change_waits_for_a_restart(
    tmp_path: Path, log_events: list[dict[str, object]]
) -> None:
    """Reload applies watches only: the sinks (their digest, quiet windows and escalation
    plans among them) are built once, so a change to them is logged as needing a restart."""
    slack = {"name": "slack", "type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}
    config = tmp_path / "spmon.yaml"

    def write(**timing: object) -> None:
        body = {
            "api": {"base_url": "http://127.0.0.1:9"},
            "state": {"path": str(tmp_path / "s.db")},
            "sinks": [{**slack, **timing}],
        }
        config.write_text(yaml.safe_dump(body))

    async def apply(new: Settings) -> dict[str, int]:
        return {}

    write()
    reloader = Reloader(
        config=config, settings=load_settings(config), apply=apply,
        metrics=Metrics(CollectorRegistry(), sinks=["slack"]),
    )  # fmt: skip
    for timing in (
        {"digest": {"window": "2m"}},
        {"quiet": [{"from": "22:00", "to": "07:00"}]},
        {"escalate": [{"after": "4h", "to": "slack"}]},
    ):
        log_events.clear()
        write(**timing)
        assert await reloader.reload()
        (said,) = [e for e in log_events if e["event"] == "config.restart_required"]
        assert said["settings"] == ["sinks"]

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

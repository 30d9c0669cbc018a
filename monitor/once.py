"""`spmon once`: poll every watch once, deliver what that caused, report what was seen.

On PostgreSQL beside running replicas the run is one more replica: its first lease round
finds the shards held, so it writes and delivers nothing for them (the commits are fenced;
their owners poll, record and deliver). It still polls and reports every watch, at the whole
`api.rate_limit` on top of the fleet's polls, so a cron check sees the whole fleet's sessions
rather than "nothing is watched".
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import structlog

from monitor import wiring
from monitor.core import checkup
from monitor.core.shards import LEADER, SHARDS
from monitor.discoverer import Discoverer
from monitor.logs import Redactor
from monitor.service import Service, build
from monitor.settings import Settings
from monitor.store import StateFileError, copy_state

__all__ = ["once"]

log = structlog.get_logger("spmon.once")


async def once(
    settings: Settings, *, dry_run: bool = False, redactor: Redactor | None = None
) -> checkup.Report:
    """Poll every watch once, deliver what that caused, and report what was seen.

    `dry_run` polls against a private copy of the state file and delivers nothing, so the
    real state (snapshots, review states, outbox, meta) is left exactly as it was; it takes
    no lock on the real file, so it also works beside a running `spmon run`.
    """
    if not dry_run:
        return await _once(settings, deliver=True, redactor=redactor)
    if settings.state.url is not None:
        # A private copy of a database is not a file copy away; until it is, say so.
        raise StateFileError(settings.state.shown(), "--dry-run needs a SQLite state file")
    with tempfile.TemporaryDirectory(prefix="spmon-dry-run-") as scratch:
        copy = Path(scratch) / settings.state.path.name
        await asyncio.to_thread(copy_state, settings.state.path, copy)
        state = settings.state.model_copy(update={"path": copy})
        dry = settings.model_copy(update={"state": state})
        return await _once(dry, deliver=False, redactor=redactor)


async def _once(settings: Settings, *, deliver: bool, redactor: Redactor | None) -> checkup.Report:
    async with build(settings, serve_http=False, redactor=redactor) as service:
        await _watch_every_shard(service)
        # Discovery lists first, once each: what they name now is checked in this run too.
        sources = wiring.list_sources(settings)
        discoverer = Discoverer(api=service.api, sources=sources, on_walk=service.watching.found)
        for source in sources:
            await service.watching.found(await discoverer.walk(source))
        outcomes = await service.poller.poll_all()
        if len(outcomes) < len(service.watchset.entries) and not service.poller.auth_failing:
            # The token was failing at the last run, so only a probe went out; it passed,
            # so the rest can be polled now rather than reported as unknown.
            outcomes |= await service.poller.poll_all()
        if deliver:
            await service.dispatcher.drain(deadline=min(10.0, settings.api.timeout))
        rows = [
            checkup.Row(key, entry.labels, outcomes.get(key, checkup.NOT_POLLED), entry.snapshot)
            for key, entry in service.watchset.entries.items()
        ]
        return checkup.Report(rows, datetime.fromtimestamp(service.clock.now(), UTC))


async def _watch_every_shard(service: Service) -> None:
    """A replica keeps only its shards' watches in memory; a check reports on all of them."""
    leaser = service.fleet.leaser
    if leaser is None:
        return
    held = len(set(leaser.owned()) - {LEADER})
    if held < SHARDS:
        # Said at warning, the level `once` logs at: this run records and delivers nothing
        # for those shards (their commits are fenced), which a reader of its output must know.
        log.warning("once.beside_replicas", shards_held_by_others=SHARDS - held)
    service.watching.mine = None
    await service.watching.reshard()
    # Its budget share is its shards' (none): the floor rate would take minutes for a few
    # hundred sessions. A check is short; a 429 it meets still pauses the whole fleet.
    service.api.set_share(1.0)

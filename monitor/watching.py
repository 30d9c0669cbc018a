"""What is watched right now: the configured watches (inline and watch files, as of the last
good reload) plus every session discovery has found, applied to the running poller.

Configured watches win: a session both listed and discovered keeps the labels and interval
its list gives. Discovered sessions stay watched when they drop out of a list.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from monitor.core.keys import SessionKey
from monitor.core.watches import Watch
from monitor.discoverer import Walk
from monitor.poll_step import PollStep
from monitor.settings import Settings

__all__ = ["Watching"]

log = structlog.get_logger("spmon.watching")

Wanted = tuple[SessionKey, dict[str, str], float | None]
"""A watch as the poller takes it: key, labels, its own interval (None: by phase)."""


class Watching:
    def __init__(self, settings: Settings, step: PollStep) -> None:
        self.settings = settings
        """The configuration whose watches apply (the last one a reload accepted)."""
        self.step = step
        self.discovered: dict[SessionKey, Watch] = {}
        self.watched: set[str] = {w.session_sid for w in settings.watches}
        """Session SIDs watched now; the resender ends the alerts of the others."""

    def wanted(self) -> Sequence[Wanted]:
        settings = self.settings
        out = {w.key: (w.key, dict(w.labels), settings.interval_of(w)) for w in settings.watches}
        for key, watch in self.discovered.items():
            interval = watch.interval if watch.interval is not None else settings.poll.fixed
            out.setdefault(key, (key, dict(watch.labels), interval))
        return list(out.values())

    async def apply(self, settings: Settings) -> dict[str, int]:
        """A reload's watches, applied while polls run."""
        self.settings = settings
        return await self._rewatch()

    async def found(self, walk: Walk) -> None:
        """A discovery walk's sessions: new ones are watched from now on."""
        new = [w for w in walk.watches if w.key not in self.discovered]
        for watch in new:
            self.discovered[watch.key] = watch
        if new:
            summary = await self._rewatch()
            log.info("discovery.added", source=walk.source, sessions=len(new), **summary)

    async def _rewatch(self) -> dict[str, int]:
        wanted = self.wanted()
        added, removed, changed = await self.step.rewatch(wanted)
        self.watched.clear()
        self.watched.update(key.session_sid for key, _, _ in wanted)
        watched = len(self.step.watchset.entries)
        return {"watched": watched, "added": added, "removed": removed, "changed": changed}

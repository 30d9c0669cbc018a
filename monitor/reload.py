"""Reload without restart: on SIGHUP, or when the config file or a watch file changes, read
the configuration again, and apply it if it is valid; a bad one is refused with the usual
one-line errors while the running one stays (Prometheus' convention, and its two metrics).

URL sources are also fetched again every `refresh` (5 min by default; a conditional GET, so an
unchanged list costs a 304), and what they list applied the same way.

What a reload applies: the watch set (added, removed, labels and intervals changed; polls in
flight finish and commit). Other settings are read but take effect at the next restart, and
the log says which ones: the API client, the store and the sinks are long-lived resources.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from monitor import aio
from monitor.metrics import Metrics
from monitor.settings import ConfigError, Settings, load_settings

__all__ = ["CHECK_EVERY", "Reloader", "needs_restart"]

log = structlog.get_logger("spmon.reload")

CHECK_EVERY = 5.0
"""Seconds between looks at the files' modification times: a ConfigMap update lands within
this (plus the kubelet's own sync delay)."""

Fingerprint = tuple[tuple[str, int, int] | tuple[str], ...]
Apply = Callable[[Settings], Awaitable[dict[str, Any]]]

_APPLIED = frozenset({"watches", "watch_files", "sources", "discovery"})


def needs_restart(old: Settings, new: Settings) -> list[str]:
    """The top-level settings that changed but only apply at the next start."""
    return sorted(
        name
        for name in type(new).model_fields
        if name not in _APPLIED and getattr(old, name) != getattr(new, name)
    )


class Reloader:
    """One root task: waits for SIGHUP or a file change, then reloads once."""

    def __init__(
        self,
        *,
        config: Path | None,
        settings: Settings,
        apply: Apply,
        metrics: Metrics,
        clock: aio.Clock = aio.SYSTEM,
        check_every: float = CHECK_EVERY,
    ) -> None:
        self.config, self.settings, self.apply = config, settings, apply
        self.metrics, self.clock, self.check_every = metrics, clock, check_every
        self._wake = asyncio.Event()
        self._requested = False
        self._seen = self._fingerprint(settings)
        self._refresh_at = self._next_refresh(settings)

    def request(self) -> None:
        """Reload at once (the SIGHUP handler)."""
        self._requested = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.request)
        stopper = asyncio.create_task(self._wake_on(stop), name="reload-stop")
        try:
            while not stop.is_set():
                await self.clock.sleep(self.check_every, self._wake)
                self._wake.clear()
                if stop.is_set():
                    return
                if self._requested or self._fingerprint(self.settings) != self._seen:
                    reason = "signal" if self._requested else "file_changed"
                    self._requested = False
                    await self.reload(reason)
                elif self._refresh_at is not None and self.clock.now() >= self._refresh_at:
                    await self.refresh()
        finally:
            stopper.cancel()
            loop.remove_signal_handler(signal.SIGHUP)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def refresh(self) -> None:
        """URL sources fetched again on their timer (nothing on disk changed): the running
        configuration applied once more, so what a URL adds or drops is watched or not."""
        self._refresh_at = self._next_refresh(self.settings)
        summary = await self.apply(self.settings)
        changed = any(summary.get(what) for what in ("added", "removed", "changed"))
        (log.info if changed else log.debug)("sources.refreshed", **summary)

    def _next_refresh(self, settings: Settings) -> float | None:
        every = [source.refresh for source in settings.sources if source.type == "url"]
        return self.clock.now() + min(every) if every else None

    async def reload(self, reason: str = "signal") -> bool:
        """Read, validate, apply; True when the new configuration is running."""
        try:
            new = await asyncio.to_thread(load_settings, self.config)
        except ConfigError as exc:
            self.metrics.reload_ok.set(0)
            log.error("config.reload_failed", reason=reason, errors=exc.lines)
            # The same broken files are not retried until they change again.
            self._seen = self._fingerprint(self.settings)
            return False
        summary = await self.apply(new)
        restart = needs_restart(self.settings, new)
        self.settings, self._seen = new, self._fingerprint(new)
        self._refresh_at = self._next_refresh(new)
        self.metrics.reload_ok.set(1)
        self.metrics.reload_time.set(self.clock.now())
        log.info("config.reloaded", reason=reason, **summary)
        if restart:
            log.warning("config.restart_required", settings=restart)
        return True

    def _fingerprint(self, settings: Settings) -> Fingerprint:
        return tuple(_stat(path) for path in self._files(settings))

    def _files(self, settings: Settings) -> Sequence[Path]:
        """The config file and every local watch list: watch files, file sources, and each
        CSV in a directory source (a new export dropped in is a change too)."""
        base = self.config.parent if self.config is not None else Path.cwd()
        paths = [*settings.watch_files]
        dirs: list[Path] = []
        for source in settings.sources:
            if source.path is not None:
                (dirs if source.type == "dir" else paths).append(source.path)
        files = [
            *([self.config] if self.config is not None else []),
            *(_under(base, p) for p in paths),
        ]
        for folder in dirs:
            files.append(_under(base, folder))
            files.extend(sorted(_under(base, folder).glob("*.csv")))
        return files


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _stat(path: Path) -> tuple[str, int, int] | tuple[str]:
    try:
        st = os.stat(path)
    except OSError:
        return (str(path),)
    return (str(path), st.st_mtime_ns, st.st_size)

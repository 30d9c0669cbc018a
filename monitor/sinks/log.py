"""Alerts written to the log: the default destination, and what `spmon demo` shows."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from monitor.core import digest, digest_messages, render
from monitor.core.events import Event
from monitor.sinks.base import SERIAL, Delivered, Limits, Outcome

__all__ = ["LogSink"]

log = structlog.get_logger("spmon.alert")


class LogSink:
    host = "log"

    def __init__(self, name: str = "log", *, limits: Limits = SERIAL) -> None:
        self.name = name
        self.limits = limits
        self.fingerprint = ""

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        # The summary comes first: it is what a person watching `spmon demo` reads.
        log.info(
            "alert",
            summary=render.text(event, datetime.fromtimestamp(now, UTC)),
            type=str(event.type),
            session_sid=event.key.session_sid if event.key else None,
            labels=dict(event.labels) or None,
            event_id=event.id,
        )
        return Delivered()

    async def deliver_digest(
        self, found: digest.Group, *, now: float, status_url: str | None
    ) -> Outcome:
        moment = datetime.fromtimestamp(now, UTC)
        summary = digest_messages.text(found, moment, status_url)
        log.info("alert.digest", summary=summary, events=len(found.events))
        return Delivered()

    async def aclose(self) -> None:
        return None

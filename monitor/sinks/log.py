"""Alerts written to the log: the default destination, and what `spmon demo` shows.

On a console the log renderer prints the event's `line` alone (core.console: one line, at
most 100 columns, its tag in the severity's colour on a terminal); JSON logs keep the
structured fields and the `summary` sentence instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import structlog

from monitor.core import console, digest, digest_messages, render
from monitor.core.events import Event
from monitor.sinks.base import SERIAL, Delivered, Limits, Outcome

__all__ = ["LogSink"]

log = structlog.get_logger("spmon.alert")


class LogSink:
    host = "log"

    def __init__(self, name: str = "log", *, limits: Limits = SERIAL, zone: tzinfo = UTC) -> None:
        self.name = name
        self.limits = limits
        self.fingerprint = ""
        self.zone = zone

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        at = datetime.fromtimestamp(now, UTC)
        log.info(
            "alert",
            line=console.line(event, at, self.zone),
            severity=str(render.severity(event)),
            summary=render.text(event, at, self.zone),
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
        summary = digest_messages.text(found, moment, status_url, zone=self.zone)
        log.info("alert.digest", summary=summary, events=len(found.events))
        return Delivered()

    async def aclose(self) -> None:
        return None

"""Alerts written to the log: the default destination, and what `spmon demo` shows."""

from __future__ import annotations

import structlog

from monitor.core.events import Event
from monitor.sinks.base import Delivered, Outcome

__all__ = ["LogSink"]

log = structlog.get_logger("spmon.alert")


class LogSink:
    concurrency = 1

    def __init__(self, name: str = "log") -> None:
        self.name = name

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        data = event.data
        log.info(
            "alert",
            type=str(event.type),
            event_id=event.id,
            session_sid=event.key.session_sid if event.key else None,
            labels=dict(event.labels) or None,
            field=data.get("field"),
            previous=data.get("previous"),
            current=data.get("current"),
            review_by_date=data.get("review_by_date"),
            overdue_seconds=data.get("overdue_seconds") or None,
        )
        return Delivered()

    async def aclose(self) -> None:
        return None

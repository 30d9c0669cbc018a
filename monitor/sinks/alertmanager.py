"""Alertmanager v2: overdue reviews become `ExamReviewOverdue` alerts, resolved when done.

Alertmanager expects clients to re-post active alerts: each post is valid until endsAt, and an
alert not renewed by then resolves by itself. Like Prometheus, posts carry endsAt = now +
4 × resend_interval, the dispatcher re-posts every firing alert each resend_interval (firing
alerts are derived from the outbox, so this survives restarts), and a resolve is a post with
endsAt = now. Labels are the alert's identity, so grouping, silences and inhibition apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aiohttp.abc import AbstractResolver

from monitor.core import render
from monitor.core.events import Event
from monitor.sinks.base import SERIAL, Delivered, Limits, Outcome, RetryLater
from monitor.sinks.http import HttpClient, classify

__all__ = ["AlertmanagerSink", "alerts_url"]

RESEND_BATCH = 500
"""Alerts per resend POST: Prometheus batches too; one alert per POST would be 100k posts."""


def alerts_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"


class AlertmanagerSink:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        resend_interval: float = 60.0,
        labels: Mapping[str, str] | None = None,
        limits: Limits = SERIAL,
        fingerprint: str = "",
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        self.fingerprint = fingerprint
        self.resend_interval = resend_interval
        self._labels = dict(labels or {})
        self._headers = {**(headers or {}), "content-type": "application/json"}
        self._http = HttpClient(
            alerts_url(url),
            timeout=timeout,
            concurrency=limits.concurrency,
            allow_private=allow_private,
            resolver=resolver,
        )
        self.host = self._http.host

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        if str(event.type) not in render.ALERT_TYPES:
            # Routing never sends other types here; if config did, there is no alert to make.
            return Delivered()
        return await self._post([event], now)

    async def resend(self, events: Sequence[Event], *, now: float) -> Outcome:
        for start in range(0, len(events), RESEND_BATCH):
            outcome = await self._post(events[start : start + RESEND_BATCH], now)
            if not isinstance(outcome, Delivered):
                return outcome
        return Delivered()

    async def _post(self, events: Sequence[Event], now: float) -> Outcome:
        moment = datetime.fromtimestamp(now, UTC)
        valid_for = 4 * self.resend_interval
        alerts = [render.alert(e, moment, valid_for=valid_for, labels=self._labels) for e in events]
        body = json.dumps(alerts, separators=(",", ":")).encode()
        reply = await self._http.post(body, self._headers)
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now, detail=True)

    async def aclose(self) -> None:
        await self._http.aclose()

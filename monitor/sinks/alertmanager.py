"""Alertmanager v2: overdue reviews become `ExamReviewOverdue` alerts, resolved when done.

Alertmanager expects clients to re-post active alerts: each post is valid until endsAt, and an
alert not renewed by then resolves by itself. Prometheus sets endsAt = now + 4 × its resend
interval; for spmon that would announce every overdue review resolved a few minutes into a
rollout or node drain, before SpmonDown even fires. So a firing post is valid for `hold` plus
one resend_interval: spmon stopped for up to `hold` (1 h) resolves nothing, and a stopped spmon
is signalled by SpmonDown, never by all-clears. Resolution is always explicit: the
review.overdue_resolved row from the outbox posts endsAt = now. The dispatcher re-posts every
firing alert each resend_interval (derived from the outbox, so this survives restarts), and
resolves, once per start, the alerts of sessions no longer watched. Labels are the alert's
identity, so grouping, silences and inhibition apply.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aiohttp.abc import AbstractResolver

from monitor.core import render
from monitor.core.events import ALERT_TYPES, Event, EventType
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
        hold: float = 3600.0,
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
        self.valid_for = hold + resend_interval
        """The last post before a stop may be a whole resend_interval old."""
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
        if str(event.type) not in ALERT_TYPES:
            # Routing never sends other types here; if config did, there is no alert to make.
            return Delivered()
        return await self._post([event], now)

    async def resend(
        self, events: Sequence[Event], *, now: float, retired: Sequence[Event] = ()
    ) -> Outcome:
        # A retired alert (its session is no longer watched) is posted as resolved: left to
        # expire it would stay active for the whole hold.
        ended = [dataclasses.replace(e, type=EventType.REVIEW_OVERDUE_RESOLVED) for e in retired]
        posts = [*events, *ended]
        for start in range(0, len(posts), RESEND_BATCH):
            outcome = await self._post(posts[start : start + RESEND_BATCH], now)
            if not isinstance(outcome, Delivered):
                return outcome
        return Delivered()

    async def _post(self, events: Sequence[Event], now: float) -> Outcome:
        moment = datetime.fromtimestamp(now, UTC)
        valid_for, labels = self.valid_for, self._labels
        alerts = [render.alert(e, moment, valid_for=valid_for, labels=labels) for e in events]
        body = json.dumps(alerts, separators=(",", ":")).encode()
        reply = await self._http.post(body, self._headers)
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now, detail=True)

    async def aclose(self) -> None:
        await self._http.aclose()

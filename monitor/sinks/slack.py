"""Slack incoming webhooks: one Block Kit message per event, at most one post at a time.

The URL is the credential (never logged). Slack allows about one message per second per
webhook; the dispatcher paces this sink (its Limits) together with every other sink entry
that posts to the same URL, and pauses them on a 429's Retry-After.
Slack has no idempotency key, so a crash between Slack's 200 and our commit shows a duplicate:
the window is one SQLite commit wide, and documented.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo

from aiohttp.abc import AbstractResolver

from monitor.core import render
from monitor.core.events import Event
from monitor.sinks.base import SLACK, Limits, Outcome, RetryLater
from monitor.sinks.http import HttpClient, classify

__all__ = ["SlackSink"]

# 404 channel_not_found / no_service and 410 channel_is_archived: every later post would fail
# too, so the sink is disabled; 400 invalid_payload and 403 action_prohibited are per message.
_GONE = frozenset({404, 410})


class SlackSink:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout: float = 15.0,
        limits: Limits = SLACK,
        fingerprint: str = "",
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self.name = name
        self.limits = limits
        self.fingerprint = fingerprint
        self.destination = url  # a secret: only compared (shared pacing), never logged
        self._http = HttpClient(
            url, timeout=timeout, concurrency=1, allow_private=allow_private, resolver=resolver
        )
        self.host = self._http.host
        self.zone = zone

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        message = render.slack_message(event, datetime.fromtimestamp(now, UTC), self.zone)
        payload = json.dumps(message, separators=(",", ":")).encode()
        reply = await self._http.post(payload, {"content-type": "application/json"})
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now, gone=_GONE, detail=True)

    async def aclose(self) -> None:
        await self._http.aclose()

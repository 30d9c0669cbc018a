"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"):
one Adaptive Card per event, at most one post at a time.

The URL carries its own signature (`sig=`) and is the credential: never logged. Workflows
answer 202 once the flow run is queued; 429 and 5xx are retried (Retry-After honoured), a
410 (or a 404: the flow was deleted or turned off) disables the sink, any other 4xx
dead-letters that one message. Teams has no idempotency key: like Slack, a crash between the
202 and our commit shows a duplicate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp.abc import AbstractResolver

from monitor.core import digest, digest_messages, messages
from monitor.core.events import Event
from monitor.sinks.base import TEAMS, Limits, Outcome, RetryLater
from monitor.sinks.http import HttpClient, classify

__all__ = ["TeamsSink"]

_GONE = frozenset({404, 410})


class TeamsSink:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout: float = 15.0,
        limits: Limits = TEAMS,
        fingerprint: str = "",
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        self.fingerprint = fingerprint
        self.destination = url  # a secret: only compared (shared pacing), never logged
        self._http = HttpClient(
            url, timeout=timeout, concurrency=1, allow_private=allow_private, resolver=resolver
        )
        self.host = self._http.host

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        return await self._post(
            messages.teams_message(event, datetime.fromtimestamp(now, UTC)), now
        )

    async def deliver_digest(
        self, found: digest.Group, *, now: float, status_url: str | None
    ) -> Outcome:
        moment = datetime.fromtimestamp(now, UTC)
        return await self._post(digest_messages.teams_message(found, moment, status_url), now)

    async def _post(self, message: dict[str, Any], now: float) -> Outcome:
        payload = json.dumps(message, separators=(",", ":")).encode()
        reply = await self._http.post(payload, {"content-type": "application/json"})
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now, gone=_GONE, detail=True)

    async def aclose(self) -> None:
        await self._http.aclose()

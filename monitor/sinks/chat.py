"""A chat webhook (Slack, Microsoft Teams): one JSON message per event or digest, at most one
post at a time, the URL the credential (only compared for shared pacing, never logged).

Neither has an idempotency key, so a crash between the receiver's 2xx and our commit shows a
duplicate: the window is one store commit wide, and documented. 404 and 410 disable the sink
(the channel or flow is gone: every later post would fail too); any other 4xx dead-letters
that one message; 429 and 5xx are retried, Retry-After honoured.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from aiohttp.abc import AbstractResolver

from monitor.core import digest
from monitor.core.events import Event
from monitor.sinks.base import Limits, Outcome, RetryLater
from monitor.sinks.http import HttpClient, classify

__all__ = ["ChatSink", "Message"]

_GONE = frozenset({404, 410})
Message = dict[str, Any]


class ChatSink:
    """What a chat sink posts is its two builders; the rest is the same for every chat."""

    default_limits: ClassVar[Limits]

    def message(self, event: Event, now: datetime) -> Message:
        raise NotImplementedError

    def digest_message(self, found: digest.Group, now: datetime, status_url: str | None) -> Message:
        raise NotImplementedError

    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout: float = 15.0,
        limits: Limits | None = None,
        fingerprint: str = "",
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self.name = name
        self.zone = zone
        """The display time zone of what people read."""
        self.limits = limits if limits is not None else self.default_limits
        self.fingerprint = fingerprint
        self.destination = url  # a secret: only compared (shared pacing), never logged
        self._http = HttpClient(
            url, timeout=timeout, concurrency=1, allow_private=allow_private, resolver=resolver
        )
        self.host = self._http.host

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        return await self._post(self.message(event, datetime.fromtimestamp(now, UTC)), now)

    async def deliver_digest(
        self, found: digest.Group, *, now: float, status_url: str | None
    ) -> Outcome:
        moment = datetime.fromtimestamp(now, UTC)
        return await self._post(self.digest_message(found, moment, status_url), now)

    async def _post(self, message: Message, now: float) -> Outcome:
        payload = json.dumps(message, separators=(",", ":")).encode()
        reply = await self._http.post(payload, {"content-type": "application/json"})
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now, gone=_GONE, detail=True)

    async def aclose(self) -> None:
        await self._http.aclose()

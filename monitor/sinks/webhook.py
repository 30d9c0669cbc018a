"""Generic JSON webhooks, signed per Standard Webhooks (webhook-id / -timestamp / -signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from aiohttp.abc import AbstractResolver

from monitor.core.events import Event
from monitor.sinks.base import Limits, Outcome, RetryLater
from monitor.sinks.http import HttpClient, classify

__all__ = ["WebhookSink", "sign"]


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one `v1,<base64 HMAC-SHA256>` per secret (rotation).

    The timestamp is integer Unix seconds, so there is no time zone to get wrong (the
    reference library relabels aware non-UTC datetimes instead of converting them).
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


class WebhookSink:
    """POST the stored envelope bytes with Standard Webhooks headers; never follow redirects.

    `webhook-id` is the event id, the same on every attempt and after every restart, so the
    receiver can de-duplicate; `webhook-timestamp` is this attempt's, so it can reject replays.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secrets: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        limits: Limits | None = None,
        fingerprint: str = "",
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.name = name
        self.limits = limits = limits or Limits()
        self.fingerprint = fingerprint
        self.destination = url  # a secret: only compared (shared pacing), never logged
        self._secrets = tuple(secrets)
        self._headers = dict(headers or {})
        self._http = HttpClient(
            url,
            timeout=timeout,
            concurrency=limits.concurrency,
            allow_private=allow_private,
            resolver=resolver,
        )
        self.host = self._http.host

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        reply = await self._http.post(body, self.headers(event.id, int(now), body))
        if isinstance(reply, RetryLater):
            return reply
        return classify(reply, now=now)

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """Configured extras first, so none can override the signature headers."""
        headers = {
            **self._headers,
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secrets:
            headers["webhook-signature"] = sign(self._secrets, msg_id, timestamp, body)
        return headers

    async def aclose(self) -> None:
        await self._http.aclose()

"""Generic JSON webhooks, signed per Standard Webhooks (webhook-id / -timestamp / -signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

import aiohttp

from monitor.core.backoff import parse_retry_after
from monitor.core.events import Event
from monitor.sinks.base import Delivered, Outcome, Rejected, RetryLater

__all__ = ["WebhookSink", "classify", "sign"]

_READ_CAP = 64 * 1024


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


def classify(status: int, retry_after: str | None, *, now: float) -> Outcome:
    """Map a receiver's status to what the dispatcher does next (Standard Webhooks semantics)."""
    from datetime import UTC, datetime

    if 200 <= status < 300:
        return Delivered()
    reason = f"HTTP {status}"
    if 300 <= status < 400:
        return RetryLater(f"{reason}: redirects are not followed, fix the URL")
    if status in (408, 429) or status >= 500:
        wait = parse_retry_after(retry_after, datetime.fromtimestamp(now, UTC), cap=3600.0)
        return RetryLater(reason, wait)
    if status == 410:
        return Rejected(f"{reason}: receiver is gone")
    return Rejected(reason)


class WebhookSink:
    """POST the event envelope with Standard Webhooks headers; never follow redirects."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secrets: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        concurrency: int = 4,
    ) -> None:
        self.name = name
        self.concurrency = concurrency
        self._url = url
        self._secrets = tuple(secrets)
        self._headers = dict(headers or {})
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
            connector=aiohttp.TCPConnector(limit=concurrency),
            trust_env=False,
        )

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        timestamp = int(now)
        headers = {
            **self._headers,
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secrets:
            headers["webhook-signature"] = sign(self._secrets, event.id, timestamp, body)
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                await resp.content.read(_READ_CAP)
                return classify(resp.status, resp.headers.get("Retry-After"), now=now)
        except TimeoutError:
            return RetryLater("timed out")
        except aiohttp.ClientError as exc:
            # Only the class name: aiohttp's message would carry the URL, which is a secret.
            return RetryLater(f"connection failed ({type(exc).__name__})")

    async def aclose(self) -> None:
        await self._session.close()

"""The HTTP part every network sink shares: one bounded POST, and what its answer means.

Each sink owns its own ClientSession (a bulkhead: one receiver's slow connections cannot take
another's pool). Redirects are never followed, the response body is read up to a cap, and no
error message carries the URL: aiohttp's exception strings do, and URLs are credentials.
Unless the sink sets allow_private, it reaches public addresses only (`monitor.sinks.guard`).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from monitor.core import addresses
from monitor.core.backoff import parse_retry_after
from monitor.sinks.base import Delivered, Gone, Outcome, Rejected, RetryLater
from monitor.sinks.guard import AddressRefused, GuardedResolver

__all__ = ["HttpClient", "Reply", "classify", "host_of"]

READ_CAP = 64 * 1024
"""Bytes of a response body read at most; the rest is dropped with the connection."""
RETRY_AFTER_CAP = 3600.0
_SNIPPET = 120


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    retry_after: str | None
    snippet: str
    """The start of the body, printable characters only (Slack's `channel_not_found`)."""


def host_of(url: str) -> str:
    """The one part of a sink URL that may appear in logs."""
    return urlsplit(url).hostname or "?"


class HttpClient:
    """POST bytes to one URL with a hard time budget; answer a Reply or a transport failure.

    Without `allow_private`, names resolve through the guard (`resolver` is what it wraps,
    aiohttp's default unless given) and an IP literal that the guard would refuse is never
    connected to: aiohttp does not ask a resolver about literals."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        concurrency: int,
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._url = url
        self.host = host_of(url)
        self._refused = None if allow_private else addresses.host_refusal(self.host)
        self._guard = None if allow_private else GuardedResolver(resolver)
        self._session = aiohttp.ClientSession(
            # The configured timeout is the whole budget: no hidden read cap under it (a
            # receiver that answers in 12 s of a 15 s budget is delivered to).
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
            connector=aiohttp.TCPConnector(limit=concurrency, resolver=self._guard or resolver),
            trust_env=False,  # a proxy from the environment would bypass the URL checks
        )

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Reply | RetryLater:
        if self._refused is not None:
            # Retried like any failure rather than dead-lettered: a fixed config or DNS entry
            # recovers the backlog, and the breaker keeps attempts to one per cooldown.
            return RetryLater(_refused(self._refused))
        try:
            async with self._session.post(
                self._url, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                # Read a bounded prefix only: leaving the rest unread closes the connection
                # instead of buffering a hostile 50 MB answer.
                head = await resp.content.read(READ_CAP)
                return Reply(resp.status, resp.headers.get("Retry-After"), _snippet(head))
        except TimeoutError:
            return RetryLater("timed out")
        except aiohttp.ClientError as exc:
            return RetryLater(_transport(exc))

    async def aclose(self) -> None:
        await self._session.close()
        if self._guard is not None:
            await self._guard.close()  # the connector closes only a resolver it made itself


def _transport(exc: aiohttp.ClientError) -> str:
    """A reason naming the failure class, never the URL (aiohttp's own message has it)."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressRefused):
        return _refused(exc.os_error.reason)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls failed (certificate or handshake)"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns lookup failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed (connect)"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection dropped by the receiver"
    if isinstance(exc.__cause__, ssl.SSLError):
        return "tls failed"
    return f"connection failed ({type(exc).__name__})"


def _refused(why: str) -> str:
    return f"address refused: {why} (set allow_private: true if intended)"


def _snippet(raw: bytes) -> str:
    text = raw[:_SNIPPET].decode("utf-8", "replace")
    return "".join(ch for ch in text if ch.isprintable()).strip()


def classify(
    reply: Reply, *, now: float, gone: frozenset[int] = frozenset({410}), detail: bool = False
) -> Outcome:
    """Standard Webhooks semantics: 2xx delivered; 3xx a failure (never followed); 408, 429
    and 5xx retried, Retry-After honoured; `gone` statuses disable the sink; any other 4xx is
    permanent for this request. `detail` appends the body snippet (Slack's error words)."""
    status = reply.status
    if 200 <= status < 300:
        return Delivered()
    reason = f"HTTP {status}" + (f" {reply.snippet}" if detail and reply.snippet else "")
    if 300 <= status < 400:
        return RetryLater(f"{reason}: redirects are not followed, fix the URL")
    if status in gone:
        return Gone(f"{reason}: the receiver is gone")
    if status in (408, 429) or status >= 500:
        moment = datetime.fromtimestamp(now, UTC)
        return RetryLater(reason, parse_retry_after(reply.retry_after, moment, cap=RETRY_AFTER_CAP))
    return Rejected(reason)

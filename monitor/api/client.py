"""The SmarterProctoring API client: one ClientSession, polite by construction.

Politeness: a global rate limit, a bounded connector, explicit timeouts, full-jitter retries on
transient failures, and a 429 pauses *every* request until Retry-After, not only the one that
got it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import aiohttp
import structlog
from aiolimiter import AsyncLimiter

from monitor import aio
from monitor.api.credentials import Credentials, Header, StaticToken
from monitor.api.errors import (
    ApiError,
    AuthFailed,
    BadResponse,
    NotFound,
    RateLimited,
    RequestRejected,
    ServerError,
    Unreachable,
)
from monitor.core.backoff import Backoff, parse_retry_after
from monitor.core.keys import SessionKey

__all__ = ["ApiClient", "ClientOptions"]

log = structlog.get_logger("spmon.api")

MAX_BODY = 1 << 20
MIN_RATE = 0.2
"""Requests per second a replica keeps with no shard of the fleet's budget (probes)."""
"""A session document is a few KB; anything past 1 MiB is not one and is not read."""


@dataclass(frozen=True, slots=True)
class ClientOptions:
    base_url: str
    token: str | None
    """A static token (unused when the client is given other `credentials`)."""
    header: Header = Header.TOKEN
    timeout: float = 20.0
    connect_timeout: float = 10.0
    concurrency: int = 32
    rate_limit: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)


class ApiClient:
    """`async with ApiClient(options, on_response=count) as api: body = await api.fetch(key)`;
    `on_response` is told each answer's status code (or error kind) for the metrics."""

    def __init__(
        self,
        options: ClientOptions,
        *,
        on_response: Callable[[str], None],
        rng: random.Random | None = None,
        clock: aio.Clock = aio.SYSTEM,
        credentials: Credentials | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        """The poller's clock: a 429 pause ends by the same clock that reschedules the session."""
        self._on_response = on_response
        self._rng = rng or random.Random()
        self._limiter = AsyncLimiter(
            max(options.rate_limit, 1.0), max(options.rate_limit, 1.0) / options.rate_limit
        )
        self._paused_until = 0.0
        self.on_pause: Callable[[float], None] = lambda seconds: None
        """Told the seconds of each 429 pause this client saw (with replicas: the fleet's)."""
        self.credentials: Credentials = credentials or StaticToken(options.token, options.header)
        self.renews_tokens = not isinstance(self.credentials, StaticToken)
        """OAuth client credentials: a refused token is replaced by asking, not by a person."""
        """Whatever authenticates requests: each one carries its `headers` of the moment."""
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        headers = {"Accept": "application/json", "User-Agent": "spmon"}
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(
                limit=self.options.concurrency,
                limit_per_host=self.options.concurrency,
                ttl_dns_cache=300,
            ),
            # total bounds a slow drip too; a sock_read timer as well would cost one more
            # timer per read for no extra protection.
            timeout=aiohttp.ClientTimeout(
                total=self.options.timeout, connect=self.options.connect_timeout
            ),
            raise_for_status=False,
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await asyncio.shield(self._session.close())
            self._session = None

    def set_token(self, token: str | None) -> None:
        """Use static `token` from the next request on (a rotated token file, no restart)."""
        static = self.credentials
        # OAuth credentials renew themselves; nothing reads a token file for them.
        assert isinstance(static, StaticToken), "set_token is for a static token"
        static.set(token)

    @property
    def token(self) -> str | None:
        return self.credentials.token

    async def fetch(self, key: SessionKey, *, retries: int | None = None) -> bytes:
        """The session document's raw bytes; raises an ApiError subclass on failure.

        `retries` overrides the configured retries on transient failures (a breaker's probe
        makes one attempt: its cooldown is the retry)."""
        # A plain string: joining against a base_url costs a yarl parse per request.
        return await self.get(self.options.base_url + key.path, retries=retries)

    async def get(self, url: str, *, retries: int | None = None) -> bytes:
        """Any API URL's raw body (a list page), under the same token, rate limit, 429 pause
        and retries as a session's; the caller makes sure `url` is the API's."""
        attempts = (self.options.backoff.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:
                return await self._attempt(url)
            except ApiError as exc:
                if not exc.retryable or attempt + 1 >= attempts:
                    raise
                delay = self.options.backoff.delay(attempt, self._rng.random())
                log.info(
                    "api.attempt_failed",
                    attempt=f"{attempt + 1}/{attempts}",
                    error=str(exc),
                    retry_in=round(delay, 3),
                )
                await self.clock.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, url: str) -> bytes:
        await self._wait_pause()
        await self._acquire()
        await self._wait_pause()
        try:
            return await self._get(url)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            self._on_response("timeout")
            raise Unreachable("request timed out") from exc
        except aiohttp.ClientError as exc:
            self._on_response("connection_error")
            # str(exc) of a connector error names host:port only; never the headers.
            raise Unreachable(f"connection failed ({type(exc).__name__})") from exc

    async def _acquire(self) -> None:
        """A slot from the limiter of the moment. `set_share` swaps it; whoever was queued on
        the old one still gets released by it at the old rate, so goes round again on the new
        one, or a replica would spend its old share and its new one at once after a reshare."""
        while True:
            limiter = self._limiter
            await limiter.acquire()
            if limiter is self._limiter:
                return

    async def _get(self, url: str) -> bytes:
        assert self._session is not None  # fetch outside `async with` is a bug
        credentials = self.credentials
        token, headers = credentials.token, credentials.headers
        async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
            self._on_response(str(resp.status))
            if resp.status == 200:
                return await _read_capped(resp)
            error = self._error_for(resp)
        if isinstance(error, AuthFailed):
            credentials.rejected(token)
        raise error

    def _error_for(self, resp: aiohttp.ClientResponse) -> ApiError:
        status = resp.status
        if status == 404:
            return NotFound("session not found", status=status)
        # A 403 is what the API answers to an expired JWT (AUTHENTICATIONFAILED): as 401.
        if status in (401, 403):
            return AuthFailed(f"API refused the token ({status})", status=status)
        if (status in (429, 503) and "Retry-After" in resp.headers) or status == 429:
            now = datetime.fromtimestamp(self.clock.now(), UTC)
            wait = parse_retry_after(resp.headers.get("Retry-After"), now)
            wait = 5.0 if wait is None else wait
            self._pause(wait)
            self.on_pause(wait)
            return RateLimited(
                f"API asked to slow down ({status})", status=status, retry_after=wait
            )
        if status >= 500 or status in (408, 425):
            return ServerError(f"API answered {status}", status=status)
        return RequestRejected(f"API answered {status}", status=status)

    def pause_for(self, seconds: float) -> None:
        """Another replica's API answered 429: pause here too (the budget is the fleet's)."""
        self._pause(seconds)

    def set_share(self, fraction: float) -> None:
        """With replicas: this one's part of `rate_limit`, the fleet's (its share of shards).
        A replica with none keeps a trickle for its breakers' probes."""
        rate = max(self.options.rate_limit * fraction, MIN_RATE)
        self._limiter = AsyncLimiter(max(rate, 1.0), max(rate, 1.0) / rate)
        log.info("api.rate_share", rate=round(rate, 2), share=round(fraction, 3))

    def _pause(self, seconds: float) -> None:
        until = self.clock.now() + seconds * (1.0 + 0.1 * self._rng.random())
        if until > self._paused_until:
            self._paused_until = until
            log.warning("api.paused", seconds=round(seconds, 1))

    async def _wait_pause(self) -> None:
        if not self._paused_until:  # the common case: never paused
            return
        delay = self._paused_until - self.clock.now()
        if delay > 0:
            await self.clock.sleep(delay)


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    length = resp.content_length
    if length is not None and length > MAX_BODY:
        raise BadResponse(f"body of {length} bytes is larger than {MAX_BODY}")
    if length is not None:
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadResponse(f"body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

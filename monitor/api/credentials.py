"""What the API client authenticates with: a static token, or OAuth 2.0 client credentials.

The client sends the `headers` its credentials hold at that moment and reports each token the
API refused (`rejected`). A `StaticToken` changes only when the auth episode re-reads the token
file. An `OAuthToken` trades the client id and secret for a token at the token endpoint before
the first poll, and one background task it owns (`async with`) asks for the next token before
the current one expires; there is no refresh token. When the endpoint fails while the token
is still good, the task retries with backoff, never waiting past half the time left; when the
API refuses the token, it asks at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import Final, Protocol, Self

import aiohttp
import structlog

from monitor import aio
from monitor.core import grant
from monitor.core.backoff import Backoff

__all__ = [
    "Credentials",
    "Header",
    "OAuthOptions",
    "OAuthToken",
    "StaticToken",
    "TokenRequestFailed",
]

log = structlog.get_logger("spmon.api")

_NONE: Final[Mapping[str, str]] = MappingProxyType({})
_MAX_ANSWER = 1 << 16
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}")


class Header(StrEnum):
    """Where a token travels: the docs' `token` header, or `Authorization: Bearer`."""

    TOKEN = "token"  # noqa: S105  # a header's name, not a secret
    BEARER = "bearer"

    def carrying(self, token: str | None) -> Mapping[str, str]:
        if not token:
            return _NONE
        if self is Header.BEARER:
            return MappingProxyType({"Authorization": f"Bearer {token}"})
        return MappingProxyType({"token": token})


class Credentials(Protocol):
    @property
    def token(self) -> str | None: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """What every request carries now."""
        ...

    def rejected(self, token: str | None) -> None:
        """The API refused a request that carried `token`."""
        ...


class StaticToken:
    """A token from the configuration or a token file."""

    def __init__(self, token: str | None, header: Header = Header.TOKEN) -> None:
        self.header = header
        self.token: str | None = None
        self.headers: Mapping[str, str] = _NONE
        self.set(token)

    def set(self, token: str | None) -> None:
        self.token = token or None
        self.headers = self.header.carrying(self.token)

    def rejected(self, token: str | None) -> None:
        """Nothing to renew: the auth episode re-reads the token file before each probe."""


def _ignore(_grant: grant.Grant) -> None:
    return None


@dataclass(frozen=True, slots=True)
class OAuthOptions:
    token_url: str
    client: Callable[[], tuple[str, str] | None]
    """The client id and secret as they are now (None if unreadable); called for every
    request, so a rotated secret file is used without a restart."""
    header: Header = Header.TOKEN
    renew_before: float = 600.0
    """Ask for the next token this long before expiry (at most half the token's lifetime)."""
    timeout: float = 20.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=30.0, retries=2))
    """Between failed requests; `retries` more attempts at start-up on a transient failure."""


class TokenRequestFailed(Exception):
    """The token endpoint gave no token. The message names the status and the OAuth error
    code only: never the id, the secret or anything the endpoint sent back beyond that."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class OAuthToken:
    """`async with OAuthToken(options) as credentials:` a token before the first request,
    renewed in the background until the block ends. `on_token` sees each grant before any
    request carries it (the redactor and the expiry gauge)."""

    def __init__(
        self,
        options: OAuthOptions,
        *,
        on_token: Callable[[grant.Grant], None] = _ignore,
        clock: aio.Clock = aio.SYSTEM,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.token: str | None = None
        self.headers: Mapping[str, str] = _NONE
        self.grant: grant.Grant | None = None
        self.issued = 0
        """Tokens obtained so far."""
        self._on_token = on_token
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._due = 0.0
        self._failures = 0
        self._last_error: str | None = None
        self._rejected = False
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.options.timeout), trust_env=False
        )
        try:
            await self._first()
        except BaseException:
            await asyncio.shield(self._session.close())
            raise
        self._task = asyncio.create_task(self._run(), name="oauth-token-renewal")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await asyncio.shield(self._session.close())
            self._session = None

    def rejected(self, token: str | None) -> None:
        """Ask for a new token now, once per token: polls in flight together are refused
        together, and a token already replaced needs nothing."""
        if token != self.token or self._rejected:
            return
        self._rejected = True
        if token is not None:
            log.warning("api.token_rejected", hint="asking the token endpoint for a new one now")
        self._due = min(self._due, self.clock.now())
        self._wake.set()

    async def _first(self) -> None:
        """Polls should not start without a token: a token endpoint that fails for a moment
        gets a few tries; refused credentials get one, and polling shows the auth failure."""
        for _ in range(self.options.backoff.retries):
            if not await self._renew():  # a token, or a failure that retrying will not mend
                return
            await self.clock.sleep(max(0.0, self._due - self.clock.now()))
        await self._renew()

    async def _run(self) -> None:
        while True:
            delay = self._due - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay, self._wake)
                self._wake.clear()
                if self.clock.now() < self._due:
                    continue
            try:
                await self._renew()
            except Exception:  # a bug here must not end renewal: the token would run out
                log.exception("api.token_renewal_crashed")
                self._due = self.clock.now() + self.options.backoff.cap

    async def _renew(self) -> bool | None:
        """One request: None when it got a token, else whether the failure was transient."""
        sent_at = self.clock.now()
        try:
            got = await self._request(sent_at)
        except TokenRequestFailed as exc:
            self._failed(exc, sent_at)
            return exc.retryable
        self._obtained(got)
        return None

    async def _request(self, sent_at: float) -> grant.Grant:
        assert self._session is not None  # used outside `async with` is a bug
        client = self.options.client()
        if client is None:
            raise TokenRequestFailed("the OAuth client id or secret is unreadable", retryable=False)
        form = {"grant_type": "client_credentials"}
        try:
            async with self._session.post(
                self.options.token_url,
                data=form,
                headers={"Accept": "application/json", "Authorization": _basic(*client)},
                allow_redirects=False,
            ) as resp:
                raw = await _read_capped(resp)
                status = resp.status
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TokenRequestFailed("token request timed out", retryable=True) from None
        except aiohttp.ClientError as exc:
            failed = f"token request failed ({type(exc).__name__})"
            raise TokenRequestFailed(failed, retryable=True) from None
        if status != 200:
            raise _refusal(status, raw)
        try:
            return grant.parse(json.loads(raw), sent_at=sent_at)
        except (ValueError, grant.GrantError) as exc:
            message = (
                str(exc)
                if isinstance(exc, grant.GrantError)
                else "token endpoint answer is not JSON"
            )
            raise TokenRequestFailed(message, retryable=True) from None

    def _obtained(self, got: grant.Grant) -> None:
        self._on_token(got)
        renewal = self.grant is not None
        self.grant, self.token = got, got.token
        self.headers = self.options.header.carrying(got.token)
        self.issued += 1
        self._rejected = False
        self._due = got.renew_at(self.options.renew_before)
        log.info(
            "api.token_renewed" if renewal else "api.token_obtained",
            expires_in=round(got.lifetime, 1),
            renew_in=round(self._due - got.obtained_at, 1),
            **({"after_failures": self._failures} if self._failures else {}),
        )
        self._failures, self._last_error = 0, None

    def _failed(self, exc: TokenRequestFailed, now: float) -> None:
        backoff = self.options.backoff
        delay = backoff.delay(self._failures, 0.5 + 0.5 * self._rng.random())
        left = (self.grant.expires_at - now) if self.grant is not None else 0.0
        if left > 0:  # several tries before the token runs out, however long the backoff
            delay = min(delay, max(left / 2, backoff.base / 2))
        self._failures += 1
        self._due = now + delay
        fields = {
            "error": str(exc),
            "attempt": self._failures,
            "retry_in": round(delay, 2),
            "token_valid_for": round(max(left, 0.0), 1),
        }
        if str(exc) == self._last_error:  # the same failure again: said already
            log.debug("api.token_request_failed", **fields)
        elif exc.retryable:
            log.warning("api.token_request_failed", **fields)
        else:
            log.error("api.token_request_failed", **fields)
        self._last_error = str(exc)


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > _MAX_ANSWER:
            raise TokenRequestFailed("token endpoint answer is too large", retryable=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _basic(client_id: str, secret: str) -> str:
    # Not form-encoded first (RFC 6749 2.3.1 asks for it, few servers undo it): a secret's
    # `+`, `/` and `=` go as they are, as curl -u and most clients send them.
    if ":" in client_id:
        raise TokenRequestFailed("the OAuth client id contains ':'", retryable=False)
    pair = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _refusal(status: int, raw: bytes) -> TokenRequestFailed:
    code = ""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = json.loads(raw)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str) and _OAUTH_ERROR.fullmatch(error):
            code = f" {error}"
    if status in (400, 401) and code == " invalid_client":
        message = f"the token endpoint refused the client id or secret ({status}{code})"
    else:
        message = f"token endpoint answered {status}{code}"
    retryable = status >= 500 or status in (408, 425, 429)
    return TokenRequestFailed(message, retryable=retryable)

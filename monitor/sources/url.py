"""A watch list served over HTTPS: a conditional GET, an auth header from a file, SSRF care.

The list may be large (past a ConfigMap's 1 MiB) and re-read often, so the validators of the
last good answer (ETag, Last-Modified) go with the next request and a 304 reuses its listing.
A failed read raises `SourceError`: the caller keeps the store's watches of this source (it is
incomplete this time), since a list that could not be read says nothing about what left it.
Errors name the host only: a URL may carry a credential in its path or query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from monitor.core import addresses
from monitor.netguard import AddressRefused, GuardedResolver
from monitor.sources.listing import Format, Listing, parse

__all__ = ["SourceError", "UrlOptions", "UrlReader"]

MAX_BYTES = 256 * 1024 * 1024
"""A body larger than this is refused: 100,000 CSV rows with labels are about 15 MB."""


class SourceError(Exception):
    """A source could not be read this time; `str()` is one line with no secret in it."""


@dataclass(frozen=True, slots=True)
class UrlOptions:
    url: str
    name: str
    """The source name the watches are stored under ("url:https://host/path")."""
    fmt: Format = "csv"
    timeout: float = 30.0
    allow_private: bool = False
    auth_header: str = "Authorization"
    auth: Callable[[], str | None] | None = None
    """The header's value as it is now (a rotated secret file); None sends no header."""
    max_bytes: int = MAX_BYTES


@dataclass(frozen=True, slots=True)
class _Good:
    """The last answer that parsed without a problem, with what validates it."""

    listing: Listing
    etag: str | None
    last_modified: str | None


class UrlReader:
    """Reads one URL source; remembers the last good answer between reads."""

    def __init__(
        self, options: UrlOptions, *, resolver: aiohttp.abc.AbstractResolver | None = None
    ):
        self.options = options
        self.host = urlsplit(options.url).hostname or "?"
        self._refused = None if options.allow_private else addresses.host_refusal(self.host)
        self._resolver = resolver
        self._good: _Good | None = None

    async def read(self) -> Listing:
        """The source's watches now: the answer's, or the last good ones on a 304. A body with
        problems is returned with them (the caller says so and counts the source incomplete)."""
        try:
            if self._refused is not None:
                raise SourceError(f"a {self._refused} address (allow_private is off)")
            return await self._get()
        except SourceError as exc:
            raise SourceError(f"{self.host}: {exc}") from None
        except AddressRefused as exc:
            raise SourceError(f"{self.host}: {exc.reason} address refused") from None
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.host}: {_describe(exc)}") from None

    async def _get(self) -> Listing:
        options = self.options
        guard = None if options.allow_private else GuardedResolver(self._resolver)
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=options.timeout),
                connector=aiohttp.TCPConnector(resolver=guard or self._resolver),
                trust_env=False,  # a proxy from the environment would bypass the address checks
            ) as session,
            session.get(options.url, headers=self._headers(), allow_redirects=False) as resp,
        ):
            if resp.status == 304 and self._good is not None:
                return self._good.listing
            if resp.status != 200:
                raise SourceError(f"answered HTTP {resp.status}")
            body = await _capped(resp, options.max_bytes)
            listing = parse(body.decode("utf-8-sig"), options.fmt, name=options.name, where="")
            if not listing.problems:
                etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
                self._good = _Good(listing, etag, modified)
            return listing

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/csv" if self.options.fmt == "csv" else "application/yaml"}
        if self.options.auth is not None:
            value = self.options.auth()
            if value is None:
                raise SourceError("the auth file cannot be read")
            headers[self.options.auth_header] = value
        if self._good is not None:
            if self._good.etag:
                headers["If-None-Match"] = self._good.etag
            if self._good.last_modified:
                headers["If-Modified-Since"] = self._good.last_modified
        return headers


async def _capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if (resp.content_length or 0) > limit:
        raise SourceError(f"answer larger than {limit} bytes")
    body = await resp.content.read(limit + 1)
    if len(body) > limit:
        raise SourceError(f"answer larger than {limit} bytes")
    return body


def _describe(exc: BaseException) -> str:
    """The failure's kind, not aiohttp's message: those carry the URL."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, UnicodeDecodeError):
        return "answer is not UTF-8 text"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    return type(exc).__name__

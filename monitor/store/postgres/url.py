"""The database URL of `state.url`: shown only with its password masked, never in full."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_postgres", "masked", "password"]

SCHEMES = ("postgresql", "postgres")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def password(url: str) -> str | None:
    """The password in the URL, if it holds one (libpq's own PGPASSWORD is never in it)."""
    return urlsplit(url).password


def masked(url: str) -> str:
    """The URL as logs, errors and `check-config` may show it: the password is `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))

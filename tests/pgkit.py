"""A PostgreSQL database of its own for each test that needs one, or a clear skip.

The server is $SPMON_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test, trust
authentication, as on the CI machine). Each test gets `CREATE DATABASE spmon_test_<random>`,
dropped after it, so tests run in parallel without meeting. Where the server cannot be
reached the tests skip with the reason, unless SPMON_REQUIRE_POSTGRES=1 (set by .ci/run): then
they fail, so CI cannot pass without them.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pydantic import SecretStr

__all__ = ["admin_url", "postgres_database", "require_postgres"]

DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("SPMON_TEST_POSTGRES", DEFAULT)


@functools.cache
def _unreachable() -> str | None:
    try:
        with psycopg.connect(admin_url(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL not reachable at {admin_url()} ({first}); set SPMON_TEST_POSTGRES"
    return None


def require_postgres() -> None:
    """Skip (or, under SPMON_REQUIRE_POSTGRES=1, fail) where there is no server."""
    if (why := _unreachable()) is not None:
        if os.environ.get("SPMON_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SPMON_REQUIRE_POSTGRES=1 but {why}")
        pytest.skip(why)


def postgres_database() -> Iterator[SecretStr]:
    """A fresh database's URL (as `state.url` holds it), dropped afterwards."""
    require_postgres()
    name = f"spmon_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url())
    try:
        yield SecretStr(urlunsplit(parts._replace(path=f"/{name}")))
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

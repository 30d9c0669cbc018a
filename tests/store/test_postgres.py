"""What only the PostgreSQL store has: its migrations, several processes on one database (no
process lock: replicas share it through shard leases), read-only readers, the shard column,
and a password that never shows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from monitor.core.keys import SessionKey
from monitor.core.watches import Watch
from monitor.store import (
    StateFileError,
    migrate,
    open_shared,
    open_store,
    read_state,
    read_watches,
)
from monitor.store.postgres import masked
from tests.store.test_sqlite import record
from tests.storekit import query

KEY = SessionKey("AI" + "a" * 32, "EX" + "b" * 32, "ES" + "c" * 32)


def with_password(url: SecretStr, secret: str) -> SecretStr:
    text = url.get_secret_value().replace("postgres@", f"postgres:{secret}@")
    return SecretStr(text)


async def test_two_processes_share_the_database_with_one_deployment_id(
    postgres_url: SecretStr,
) -> None:
    """The rule with replicas: a second `spmon run` is legal (the shard leases split the
    sessions between them); both see the same deployment, so event ids agree."""
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        await first.ping()
        await second.ping()
        assert first.deployment_id == second.deployment_id
        async with open_shared(postgres_url) as shared:  # operator commands beside them
            assert shared.deployment_id == first.deployment_id


async def test_migrations_are_numbered_recorded_and_idempotent(postgres_url: SecretStr) -> None:
    assert await migrate(postgres_url) == 4
    assert await migrate(postgres_url) == 4
    versions = query(postgres_url, "SELECT version FROM spmon_schema ORDER BY version")
    assert versions == [(1,), (2,), (3,), (4,)]
    leases = query(postgres_url, "SELECT min(shard), max(shard), count(*) FROM shard_lease")
    assert leases == [(-1, 255, 257)]


async def test_a_schema_from_a_newer_spmon_is_refused(postgres_url: SecretStr) -> None:
    await migrate(postgres_url)
    with psycopg.connect(postgres_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("INSERT INTO spmon_schema (version) VALUES (99)")
    with pytest.raises(StateFileError, match="newer spmon"):
        async with open_store(postgres_url):
            pass


async def test_readers_refuse_writes_and_an_unmigrated_database(postgres_url: SecretStr) -> None:
    with pytest.raises(StateFileError, match="run `spmon migrate` first"):
        async with read_state(postgres_url):
            pass
    async with read_watches(postgres_url) as watches:  # nothing watched yet, nothing created
        assert await watches.active_watches() == {}
    assert query(postgres_url, "SELECT to_regclass('spmon_schema')") == [(None,)]
    async with open_store(postgres_url) as store:
        await store.add_watch(Watch(KEY, source="cli"), now=1.0)
        async with read_state(postgres_url) as reader:  # beside the lock holder
            assert [row.key for row in await reader.session_rows()] == [KEY]
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await reader.enable_sink("a")


async def test_the_shard_is_the_one_python_computes(postgres_url: SecretStr) -> None:
    async with open_store(postgres_url) as store:
        await store.add_watch(Watch(KEY, source="cli"), now=1.0)
        await store.set_meta("x", "y")
        await store.commit([record(KEY)])
    ((shard,),) = query(postgres_url, "SELECT shard FROM session")
    assert shard == int(hashlib.md5(KEY.session_sid.encode()).hexdigest()[:4], 16) % 256  # noqa: S324


async def test_a_password_is_masked_in_every_error(postgres_url: SecretStr) -> None:
    secret = "s3cret-pass"
    url = with_password(postgres_url, secret)
    unreachable = SecretStr(url.get_secret_value().replace(":5432/", ":1/"))
    with pytest.raises(StateFileError) as refused:
        async with open_store(unreachable):
            pass
    assert secret not in str(refused.value) and "postgres:***@" in str(refused.value)
    async with open_store(url):
        query(postgres_url, "INSERT INTO spmon_schema (version) VALUES (99) RETURNING 1")
    with pytest.raises(StateFileError) as newer:
        async with open_store(url):
            pass
    assert secret not in str(newer.value)
    assert masked("postgresql://u:p%40ss@h:5/d?sslmode=require") == (
        "postgresql://u:***@h:5/d?sslmode=require"
    )
    assert masked("postgresql://u@h/d") == "postgresql://u@h/d"
    assert isinstance(refused.value.path, str) and not isinstance(refused.value.path, Path)


async def test_the_store_survives_the_server_dropping_its_connections(
    postgres_url: SecretStr,
) -> None:
    """A database restart or failover ends every session: the next commit gets a fresh
    connection."""
    async with open_store(postgres_url) as store:
        await store.commit([record(KEY)])
        ended = query(
            postgres_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        assert ended[0][0] >= 1  # the pool's
        await store.commit([record(KEY)])
        assert [r.key for r in await store.load()] == [KEY]
        await store.ping()

"""The store contract runs on both stores: `where` is a SQLite file or a PostgreSQL database
(skipped, with the reason, where no server is reachable; see tests/pgkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import Where
from tests.pgkit import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def where(store_kind: str, state_path: Path) -> Iterator[Where]:
    if store_kind == "sqlite":
        yield state_path
    else:
        yield from postgres_database()

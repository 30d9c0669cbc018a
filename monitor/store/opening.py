"""How every store and reader, of either database, is opened and closed.

`async with` runs the kind's `_start` (connect, check, lock, migrate) on its connection's
thread and `_close` there on exit; a kind supplies only those two. A store adds the
deployment id it read when it opened and the schema version it migrates to.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from monitor.store.sqlite.connection import Connection

__all__ = ["Opening", "StoreOpening"]


class Opening(Connection):
    """`async with kind(...) as it:` opens by `_start`, closes by `_close`."""

    async def __aenter__(self) -> Self:
        await self._open_with(self._start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_with(self._close)

    def _start(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class StoreOpening(Opening):
    """A store's own: `_start` sets `_deployment`; `_migrations` are the kind's scripts."""

    _deployment = ""

    @property
    def deployment_id(self) -> str:
        """128 random bits made with the state: every event id is scoped to it."""
        if not self._deployment:
            raise RuntimeError("store is not open")
        return self._deployment

    @property
    def schema_version(self) -> int:
        """The migrations this store has (all of them, once open)."""
        return len(self._migrations())

    async def ping(self) -> None:
        await self._read(lambda db: db.execute("SELECT 1").fetchone())

    def _migrations(self) -> tuple[str, ...]:
        raise NotImplementedError

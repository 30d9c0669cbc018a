"""The database read-only (`ReadStore`, and the watch set for `spmon watch ls`): beside a
running `spmon run` or with none. Its own pool, of sessions with
`default_transaction_read_only`, so nothing it runs can write; no lock, no migration."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from monitor.core.keys import SessionKey
from monitor.core.watches import Watch
from monitor.store.base import StateFileError, WatchRecord
from monitor.store.opening import Opening
from monitor.store.postgres.connection import PgConnection, connect, database_error
from monitor.store.postgres.store import schema_version
from monitor.store.sqlite.history import History
from monitor.store.sqlite.outbox import Outbox
from monitor.store.sqlite.watches import Watches

__all__ = ["PgStateReader", "PgWatchReader"]


class _ReadOnly(Opening, PgConnection):
    def __init__(self, url: str) -> None:
        super().__init__(url, read_only=True)
        self.version = 0

    def _start(self) -> None:
        try:
            with connect(self.url, read_only=True) as conn:
                self.version = schema_version(conn)
            self._check()
            self._open_pool()
        except BaseException as exc:
            self._close_pool()
            if isinstance(exc, psycopg.Error | TimeoutError):
                raise database_error(self.url, exc) from None
            raise

    def _close(self) -> None:
        self._close_pool()

    def _check(self) -> None:
        """Refuse what cannot be read (a subclass's choice)."""


class PgStateReader(_ReadOnly, History, Outbox):
    """`async with PgStateReader(url) as reader:` reads sessions, history and the outbox's
    backlog (it inherits the outbox's writes too, for its `stats`: the session refuses them)."""

    def _check(self) -> None:
        if self.version == 0:
            raise StateFileError(self.where, "holds no spmon state: run `spmon migrate` first")


class PgWatchReader(_ReadOnly, Watches):
    """The watch set, read-only; a database spmon never opened reads as empty, like a state
    file that does not exist yet."""

    async def active_watches(
        self, like: Callable[[SessionKey], Watch | None] | None = None
    ) -> dict[SessionKey, Watch]:
        return await super().active_watches(like) if self.version else {}

    async def watch_history(self) -> list[WatchRecord]:
        return await super().watch_history() if self.version else []

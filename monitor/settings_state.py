"""`state:` where snapshots, the outbox and history live: a SQLite file (the default) or a
PostgreSQL database (`state.url`, or `state.url_file` for a mounted Secret). The URL is a
secret from end to end: its password is shown masked, never in full."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, SecretStr, field_validator, model_validator

from monitor.settings_files import read_setting_file
from monitor.settings_types import STRICT
from monitor.store.postgres.url import is_postgres, masked, password

__all__ = ["StateSettings", "read_state_url"]

_SCHEME = "must be a postgresql:// URL (e.g. postgresql://spmon@db:5432/spmon)"


class StateSettings(BaseModel):
    model_config = STRICT
    path: Path = Path("spmon.db")
    """SQLite file (-wal/-shm sit beside it; keep it on a local disk). Unused with `url`."""
    url: SecretStr | None = None
    """A PostgreSQL database instead of the file: postgresql://user[:password]@host[:port]/db
    (libpq options such as ?sslmode=require allowed). Without a password in it, libpq's
    PGPASSWORD or ~/.pgpass supplies one."""
    url_file: Path | None = None
    """A file holding `state.url` (a mounted Secret); relative paths are under the config's
    folder."""

    @field_validator("url")
    @classmethod
    def _postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_postgres(value.get_secret_value()):
            raise ValueError(_SCHEME)
        return value

    @model_validator(mode="after")
    def _one_url(self) -> StateSettings:
        if self.url is not None and self.url_file is not None:
            raise ValueError("set state.url or state.url_file, not both")
        return self

    def where(self) -> Path | SecretStr:
        """The SQLite file, or the database URL (still a SecretStr)."""
        return self.url if self.url is not None else self.path

    def shown(self) -> str:
        """Where state lives, as check-config and logs may show it."""
        return str(self.path) if self.url is None else masked(self.url.get_secret_value())

    def secrets(self) -> list[str]:
        """What the log redactor must mask: the URL's password."""
        found = password(self.url.get_secret_value()) if self.url is not None else None
        return [found] if found else []


def read_state_url(state: StateSettings, base: Path) -> tuple[StateSettings, list[str]]:
    """`state.url_file` read into `state.url` (once, at load); the problems, one line each,
    naming the key and the path, never the value."""
    if state.url_file is None:
        return state, []
    path, url, problem = read_setting_file(state.url_file, base, "state.url_file")
    if url is None:
        return state, [problem]
    if not is_postgres(url):
        return state, [f"state.url_file: {path} {_SCHEME}"]
    return state.model_copy(update={"url": SecretStr(url), "url_file": None}), []

"""Configuration: one YAML file plus SPMON_* environment overrides, validated once at start-up.

Every problem becomes one line naming the key (`watches[3].session_sid: ...`), never echoing the
value: a mistyped token must not end up in a terminal scroll-back or a CI log.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor import settings_secrets, settings_sources
from monitor.core import watches as core_watches
from monitor.core.keys import SessionKey
from monitor.settings_admin import AdminSettings, read_admin_token
from monitor.settings_api import DEFAULT_API_URL, ApiSettings, read_api_token
from monitor.settings_auth import read_secret
from monitor.settings_digest import escalation_problem
from monitor.settings_discovery import DiscoverySettings
from monitor.settings_display import DisplaySettings
from monitor.settings_http import HttpSettings
from monitor.settings_metrics import MetricsSettings
from monitor.settings_poll import PollSettings
from monitor.settings_sinks import SinkSettings
from monitor.settings_sources import SourceSettings, Watch
from monitor.settings_state import StateSettings, read_state_url
from monitor.settings_types import STRICT, Seconds, parse_duration

__all__ = [
    "DEFAULT_API_URL",
    "ConfigError",
    "Settings",
    "SinkSettings",
    "Watch",
    "load_settings",
    "parse_duration",
]


class ConfigError(Exception):
    """Invalid configuration: `lines` holds one message per offending key."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


class RuleSettings(BaseModel):
    model_config = STRICT
    overdue_repeat: Annotated[Seconds, Field(ge=0)] = 86400.0
    """Repeat review.overdue this often while a review stays overdue; 0 = never."""
    due_soon: Annotated[Seconds, Field(ge=0)] = 0.0
    """Send review.due_soon this long before reviewByDate; 0 = off."""


class OutboxSettings(BaseModel):
    model_config = STRICT
    retention: Annotated[Seconds, Field(ge=0)] | None = None
    """Delivered and dead deliveries older than this are deleted (hourly); 0 keeps them all;
    unset, they are kept as long as `history.retention` keeps the transitions they deliver.
    Pending ones never are, nor the latest overdue/resolved row a sink still resends."""


class HistorySettings(BaseModel):
    model_config = STRICT
    retention: Annotated[Seconds, Field(ge=0)] = 180 * 86400.0
    """Transitions (every event observed for a session) older than this are deleted
    (hourly); 0 keeps them forever. Accreditation reviews and appeals look back months."""

    def deliveries(self, outbox: OutboxSettings) -> float:
        """How long settled deliveries are kept: `outbox.retention` when set, else as long as
        the history they belong to."""
        return self.retention if outbox.retention is None else outbox.retention


class LogSettings(BaseModel):
    model_config = STRICT
    format: Literal["auto", "json", "console"] = "auto"
    """auto = console on a terminal, JSON otherwise."""
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    """Everything spmon reads at start-up. Environment (SPMON_*, `__` for nesting) beats YAML."""

    model_config = SettingsConfigDict(
        env_prefix="SPMON_", env_nested_delimiter="__", extra="forbid", frozen=True
    )
    api: ApiSettings = Field(default_factory=ApiSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    """The JSON API's bearer token and whether reads need it (settings_admin)."""
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    """Time zone and session links for what people read (settings_display)."""
    watches: list[Watch] = Field(default_factory=list)
    """Sessions listed inline."""
    watch_files: list[Path] = Field(default_factory=list)
    """YAML (a list of watches) or CSV (install_sid,exam_sid,session_sid[,label columns]) files."""
    sources: list[SourceSettings] = Field(default_factory=list)
    """More watch sources: files, directories of CSV exports, an HTTPS URL (settings_sources)."""
    sinks: list[SinkSettings] = Field(default_factory=list)
    """Alert destinations; with none, alerts go to the log only."""
    discovery: list[DiscoverySettings] = Field(default_factory=list)
    """API lists whose sessions are watched too (added, never removed by a list)."""

    _base: Path = PrivateAttr(default_factory=Path.cwd)
    """The config file's directory: relative watch files and source paths are under it."""
    _listed: int = PrivateAttr(default=0)
    _demand: float = PrivateAttr(default=0.0)
    """Sessions the local sources listed at load, and the requests/s they need at their fixed
    intervals (poll.interval where none): counted at load, so the 100,000 watches of a big
    export are not held for the life of the process."""
    _validated: list[dict[str, dict[SessionKey, core_watches.Watch]]] = PrivateAttr(
        default_factory=list
    )
    """The local listings `load_settings` read and validated, for the first `listings()` (the
    start's or the reload's apply) to take instead of reading every file again; held until
    then only. One list shared by copies of these settings, so taking it drops it for all."""

    def model_post_init(self, context: Any, /) -> None:
        self._count([settings_sources.local_listings(self.watches, ())["inline"]])

    def _count(self, listed: Iterable[Mapping[SessionKey, core_watches.Watch]]) -> None:
        fixed, default = self.poll.fixed, self.poll.interval
        self._listed, self._demand = 0, 0.0
        for watches in listed:
            self._listed += len(watches)
            intervals = (w.interval if w.interval is not None else fixed for w in watches.values())
            self._demand += sum(1.0 / (interval or default) for interval in intervals)

    @field_validator("display")
    @classmethod
    def _old_zone(cls, display: DisplaySettings, info: ValidationInfo) -> DisplaySettings:
        http = info.data.get("http")
        old = http.page_timezone if isinstance(http, HttpSettings) else None
        if old is None or display.timezone == old:
            return display
        if display.timezone is not None:
            raise ValueError("set display.timezone only (http.page_timezone is its old name)")
        return display.model_copy(update={"timezone": old})

    @field_validator("sinks")
    @classmethod
    def _unique_names(cls, sinks: list[SinkSettings]) -> list[SinkSettings]:
        names = [sink.name for sink in sinks]
        if len(names) != len(set(names)):
            raise ValueError("sink names must be unique")
        escalation_problem(sinks)
        return sinks

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML arrives as init kwargs; the environment must override it, not the reverse.
        return env_settings, init_settings

    def source_names(self) -> list[str]:
        """Every configured watch source, in config order (the first listing a session wins);
        discovery lists last: they add sessions as they find them and never remove one."""
        return [
            "inline",
            *(f"file:{name}" for name in self.watch_files),
            *(source.name for source in self.sources),
            *(entry.name for entry in self.discovery),
        ]

    @property
    def watch_count(self) -> int:
        """Sessions listed inline and by the local sources, as read at load."""
        return self._listed

    def listings(self) -> dict[str, dict[SessionKey, core_watches.Watch]]:
        """The watches of the inline list and every local source (files, directories), read
        now, in config order; a session listed by several is under the first only. A file
        that has gone bad since load raises ConfigError, as it would at start-up. The first
        call takes what load read (it is not read twice at start)."""
        if self._validated:
            return self._validated.pop()
        found = settings_sources.read_local(self.watch_files, self.sources, self._base)
        if problems := [line for _, listing in found for line in listing.problems]:
            raise ConfigError(problems)
        return settings_sources.local_listings(self.watches, found)

    def interval_of(self, watch: Watch | core_watches.Watch) -> float | None:
        """The watch's fixed interval: its own, else poll.interval if set; None: by phase."""
        return watch.interval if watch.interval is not None else self.poll.fixed

    def token(self) -> str | None:
        return self.api.token.get_secret_value() if self.api.token else None

    def fresh_token(self) -> str | None:
        """The token file as it is now (a rotated Kubernetes secret), or None if unreadable.
        JWTs expire: reading the file again on an auth failure saves a restart."""
        return read_secret(None, self.api.token_file)

    def capacity_warning(self, needed: float | None = None) -> str | None:
        """A line when the watch set cannot be polled at its intervals within the rate limit.

        `needed` is requests/s at the sessions' phases as the running service knows them;
        without it (check-config), each watch counts at its fixed interval or poll.interval."""
        if needed is None:
            needed = self._demand
        if needed <= self.api.rate_limit:
            return None
        return (
            f"{self._listed} watches need {needed:.1f} requests/s at their intervals, "
            f"above api.rate_limit={self.api.rate_limit:g}: polls will run late "
            "(raise api.rate_limit, poll.interval or the poll.phases intervals)"
        )

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for check-config."""
        dumped = self.model_dump(mode="json")
        dumped["watches"] = f"{len(self.watches)} listed inline"
        if self.state.url is not None:
            dumped["state"]["url"] = self.state.shown()
        if self.poll.fixed is None:  # the default value is no interval anyone polls at
            dumped["poll"]["interval"] = "unset: by phase (poll.phases)"
        return dumped


def load_settings(config: Path | None = None) -> Settings:
    """Read YAML + environment + watch files + token file; raise ConfigError on any problem."""
    from_env = os.environ.get("SPMON_CONFIG")
    path = config or (Path(from_env) if from_env else None)
    raw = _read_yaml(path) if path else {}
    base = path.parent if path else Path.cwd()
    if "sinks" in raw:
        raw["sinks"], problems = settings_secrets.resolve_sinks(
            raw["sinks"], base=base, environ=os.environ
        )
        if problems:
            raise ConfigError(problems)
    try:
        settings = Settings(**raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    problems = settings_sources.check_names(settings.source_names())
    listings = settings_sources.read_local(settings.watch_files, settings.sources, base)
    problems += [line for _, listing in listings for line in listing.problems]
    token, token_problems = read_api_token(settings.api, base)
    if token_problems:
        raise ConfigError(token_problems)
    admin, admin_problems = read_admin_token(settings.admin, base)
    state, state_problems = read_state_url(settings.state, base)
    problems += admin_problems + state_problems
    found = [settings_sources.resolved(s, base, i) for i, s in enumerate(settings.sources)]
    problems += [line for _, line in found if line]
    if problems:
        raise ConfigError(problems)
    loaded = settings.model_copy(
        update={"api": token, "admin": admin, "state": state, "sources": [s for s, _ in found]}
    )
    loaded._base = base
    local = settings_sources.local_listings(settings.watches, listings)
    del listings
    loaded._count(local.values())
    loaded._validated.append(local)
    return loaded


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"config: cannot read {path} ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"config: {path}{where} is not valid YAML"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"config: {path} must hold a mapping of settings"])
    return loaded


def _describe(exc: pydantic.ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _loc(error["loc"])
        unknown = error["type"] in {"extra_forbidden", "unexpected_keyword_argument"}
        message = "unknown key" if unknown else error["msg"]
        lines.append(f"{loc}: {message.removeprefix('Value error, ')}")
    return lines


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"

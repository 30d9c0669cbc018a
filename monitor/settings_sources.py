"""Settings of the watch sources listed under `sources:` (besides `watches:` and `watch_files:`).

    sources:
      - {type: file, path: lms.csv}                  # one YAML or CSV file
      - {type: dir, path: exports/}                  # every *.csv in it, in name order
      - {type: url, url: https://lms.example/watches.csv, auth_file: /run/secrets/lms}

Each source's watches are stored under its `name` (default "file:lms.csv", "dir:exports/",
"url:https://lms.example/watches.csv"): a reload removes the watches a source stops listing,
and only those.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from monitor import sources
from monitor.core import addresses
from monitor.core import watches as core_watches
from monitor.core.keys import EXAM_SID, INSTALL_SID, SESSION_SID, SessionKey
from monitor.settings_types import STRICT, Seconds

__all__ = ["SourceSettings", "Watch", "check_names", "local_listings", "read_local", "resolved"]


_OWN = {"file": {"path"}, "dir": {"path"}, "url": {"url", *["format", "auth_header", "auth_file"]}}
_URL_ONLY = {"timeout", "refresh", "allow_http", "allow_private"}


_NO_LABELS: dict[str, str] = {}


def _compact_labels(labels: dict[str, str]) -> dict[str, str]:
    # 100,000 watches mostly share a few label keys and values; one copy of each string and one
    # empty dict keep the watch list small.
    if not labels:
        return _NO_LABELS
    return core_watches.shared_labels(labels)


@pydantic.dataclasses.dataclass(slots=True, frozen=True, config=ConfigDict(extra="forbid"))
class Watch:
    """One watched exam session.

    A slotted pydantic dataclass rather than a BaseModel: a process may hold 100,000 of these,
    and a model instance costs about ten times the memory.
    """

    # A few installs and exams hold 100,000 sessions: one copy of each of their SIDs.
    install_sid: Annotated[str, Field(pattern=INSTALL_SID.pattern), AfterValidator(sys.intern)]
    exam_sid: Annotated[str, Field(pattern=EXAM_SID.pattern), AfterValidator(sys.intern)]
    session_sid: Annotated[str, Field(pattern=SESSION_SID.pattern)]
    labels: Annotated[dict[str, str], AfterValidator(_compact_labels)] = Field(default_factory=dict)
    """Free-form labels carried on every alert, e.g. {course: BIO101}."""
    interval: Annotated[Seconds, Field(gt=0)] | None = None
    """Poll interval for this session, over its phase's (and over poll.interval)."""

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.install_sid, self.exam_sid, self.session_sid)


class SourceSettings(BaseModel):
    model_config = STRICT
    type: Literal["file", "dir", "url"]
    """file: one YAML or CSV file; dir: every *.csv in a directory; url: a CSV or YAML list
    fetched over HTTPS (conditional GET: an unchanged list costs a 304)."""
    name: str = ""
    """What its watches are stored under; default: type and path or URL ("file:lms.csv")."""
    path: Path | None = None
    """file, dir: relative to the config file's directory."""
    url: str | None = None
    """url: https only (unless allow_http); no userinfo, and no secret in it (it is logged)."""
    format: Literal["csv", "yaml"] = "csv"
    """url: how the body is read."""
    auth_header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")] = "Authorization"
    """url: the header carrying the contents of auth_file."""
    auth_file: Path | None = None
    """url: file holding the header's value (e.g. "Bearer …"), read again at every fetch."""
    timeout: Annotated[Seconds, Field(gt=0, le=600)] = 30.0
    """url: the whole fetch's time budget."""
    refresh: Annotated[Seconds, Field(ge=10)] = 300.0
    """url: how often the list is fetched again (an unchanged one costs a 304)."""
    allow_http: bool = False
    """url: permit plain http:// (tests, an in-cluster server)."""
    allow_private: bool = False
    """url: permit loopback, private and link-local addresses; refused otherwise."""

    @pydantic.model_validator(mode="after")
    def _type_rules(self) -> SourceSettings:
        given = self.model_fields_set - {"type", "name"}
        misplaced = sorted(given - _OWN[self.type] - (_URL_ONLY if self.type == "url" else set()))
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} do not apply to a {self.type} source")
        if self.type == "url":
            self._check_url()
        elif self.path is None:
            raise ValueError(f"a {self.type} source needs a path")
        if not self.name:
            shown = _shown(self.url) if self.url is not None else str(self.path)
            object.__setattr__(self, "name", f"{self.type}:{shown}")  # frozen: set once, here
        return self

    def _check_url(self) -> None:
        if self.url is None:
            raise ValueError("a url source needs a url")
        parts = urlsplit(self.url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("url must be an https URL with a host")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; use auth_file")
        if parts.scheme == "http" and not self.allow_http:
            raise ValueError("url is plain http; use https or set allow_http: true")
        refused = addresses.host_refusal(parts.hostname)
        if refused and not self.allow_private:
            raise ValueError(
                f"url is a {refused} address; set allow_private: true if that is intended"
            )


def _shown(url: str) -> str:
    """The URL without its query and fragment: what logs and `spmon watch ls` may show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_names(names: list[str]) -> list[str]:
    """One line per source name configured twice (two sources would fight over watches)."""
    twice = sorted({name for name in names if names.count(name) > 1})
    return [f"sources: {name} is configured twice" for name in twice]


def read_local(
    watch_files: Sequence[Path], configured: Sequence[SourceSettings], base: Path
) -> list[tuple[str, sources.Listing]]:
    """Every watch file and local source, in config order, under its source name."""
    found = [
        (f"file:{name}", sources.read_file(_under(base, name), name=f"file:{name}", where=where))
        for name, where in ((n, f"watch_files[{i}] ({n})") for i, n in enumerate(watch_files))
    ]
    for index, source in enumerate(configured):
        if source.type == "url" or source.path is None:
            continue
        path, shown, name = _under(base, source.path), str(source.path), source.name
        if source.type == "file":
            listing = sources.read_file(path, name=name, where=f"sources[{index}] ({shown})")
        else:
            listing = sources.read_dir(path, name=name, where=f"sources[{index}]", shown=shown)
        found.append((name, listing))
    return found


def resolved(source: SourceSettings, base: Path, index: int) -> tuple[SourceSettings, str]:
    """The source with its paths under the config's directory, and what is wrong, if anything."""
    update = {
        field: _under(base, path)
        for field in ("path", "auth_file")
        if (path := getattr(source, field)) is not None
    }
    found = source.model_copy(update=update)
    if found.auth_file is not None and not os.access(found.auth_file, os.R_OK):
        return found, f"sources[{index}].auth_file: cannot read {source.auth_file}"
    return found, ""


def local_listings(
    inline: Sequence[Watch], listings: Sequence[tuple[str, sources.Listing]]
) -> dict[str, dict[SessionKey, core_watches.Watch]]:
    """The watches of the inline list and every local source, by source in config order; a
    session listed by several is under the first only."""
    found: dict[str, dict[SessionKey, core_watches.Watch]] = {"inline": {}}
    for w in inline:
        key = w.key  # one key object per session, shared by every structure after
        labels = w.labels or core_watches.NO_LABELS
        found["inline"].setdefault(key, core_watches.Watch(key, labels, w.interval, "inline"))
    seen = set(found["inline"])
    for name, listing in listings:
        found[name] = {key: w for key, w in listing.watches.items() if key not in seen}
        seen.update(listing.watches)
    return found


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path

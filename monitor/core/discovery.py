"""API list pages (the appointments report, an enrollment's sessions) turned into watches.

Every list answers with one envelope, `{total, next, results, …}`. A page that is not that
envelope is a `PageError` naming the field, never an empty list: an empty list would read as
"no sessions" and a gateway's error page must not look like a quiet term. Inside a good
envelope a bad row is skipped and counted (`Found.skipped`), not the whole page: one odd row
in a report of thousands must not blind discovery to the rest, and the sessions it does name
stay watched (discovery never removes).

Labels come from the exam only (`exam.title`, `exam.courseName`): rows also carry the
enrollment, i.e. a student, and no personal data may reach an alert.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

from monitor.core.keys import EXAM_SID, SESSION_SID, SessionKey
from monitor.core.watches import NO_LABELS, Watch

__all__ = [
    "Found",
    "ListSource",
    "Page",
    "PageError",
    "appointments",
    "appointments_path",
    "enrollment_sessions",
    "parse_page",
    "resolve_next",
    "sessions_path",
]

_LABELS: Final = (("exam_title", "title"), ("course", "courseName"))
"""Watch label ← field of the row's `exam` object."""
_PORTS: Final = {"http": 80, "https": 443}
_KINDS: Final[Mapping[type, str]] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}

_Scope = Callable[[Mapping[str, object]], tuple[str, object]]
"""Where a row's install and exam SIDs come from: the request, the path, the row."""


class PageError(ValueError):
    """A list page that cannot be read; the message is one line naming the field."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its rows as they came, the link to the next page, the total."""

    results: tuple[object, ...]
    next: str | None = None
    """The raw link (absolute or relative); `resolve_next` makes it a URL safe to follow."""
    total: int | None = None

    @property
    def more(self) -> bool:
        """Whether to follow `next`. A page without rows ends the walk even if it names a next
        one: the API guide's own loop stops there, and a looping server cannot keep us paging."""
        return self.next is not None and bool(self.results)


@dataclass(frozen=True, slots=True)
class Found:
    """The watches a page names, and the rows left out for not naming a session."""

    watches: tuple[Watch, ...]
    skipped: int = 0
    first_skip: str | None = None
    """Why the first skipped row was, e.g. "results[3].sid: missing or not a session SID"."""


@dataclass(frozen=True, slots=True)
class ListSource:
    """One list that discovery pages through: the appointments report of an install, or one
    enrollment's sessions of one exam (with the API's `status[]` and `includeActive`)."""

    name: str
    install_sid: str
    enrollment_sid: str | None = None
    exam_sid: str | None = None
    statuses: tuple[str, ...] = ()
    include_active: bool = True
    params: tuple[tuple[str, str], ...] = ()
    """Other query parameters, passed through as configured (the report's filters)."""
    interval: float = 900.0
    page_size: int = 100

    @property
    def per_enrollment(self) -> bool:
        return self.enrollment_sid is not None

    def first_url(self, base_url: str) -> str:
        """The first page's URL: the path, the filters, and the page size."""
        if self.enrollment_sid is not None and self.exam_sid is not None:
            path = sessions_path(self.install_sid, self.enrollment_sid, self.exam_sid)
            query = [("status[]", status) for status in self.statuses]
            query.append(("includeActive", "true" if self.include_active else "false"))
        else:
            path, query = appointments_path(self.install_sid), []
        query += [*self.params, ("limit", str(self.page_size))]
        return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"

    def found(self, page: Page) -> Found:
        if self.enrollment_sid is not None and self.exam_sid is not None:
            return enrollment_sessions(
                page, install_sid=self.install_sid, exam_sid=self.exam_sid, source=self.name
            )
        return appointments(page, install_sid=self.install_sid, source=self.name)


def appointments_path(install_sid: str) -> str:
    return f"/v1/installs/{install_sid}/reports/appointments"


def sessions_path(install_sid: str, enrollment_sid: str, exam_sid: str) -> str:
    return f"/v1/installs/{install_sid}/enrollments/{enrollment_sid}/exams/{exam_sid}/sessions"


def parse_page(body: bytes | str) -> Page:
    """The envelope of one list answer; PageError when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise PageError("body: not JSON") from None
    if not isinstance(data, dict):
        raise PageError(f"body: expected an object, got {_kind(data)}")
    if "results" not in data:
        raise PageError("results: missing")
    results = data["results"]
    if not isinstance(results, list):
        raise PageError(f"results: expected a list, got {_kind(results)}")
    link = data.get("next")
    if link is not None and not isinstance(link, str):
        raise PageError(f"next: expected a link or null, got {_kind(link)}")
    total = data.get("total")
    if total is not None and type(total) is not int:
        raise PageError(f"total: expected a count or null, got {_kind(total)}")
    if total is not None and total < 0:
        raise PageError("total: negative")
    return Page(results=tuple(results), next=link or None, total=total)


def resolve_next(link: str | None, *, request_url: str, base_url: str) -> str | None:
    """The URL of the next page, or None at the end.

    A relative link is resolved against the page just read. The result must stay on the API's
    scheme, host and port: the token goes with every request, and a page must not be able to
    send it anywhere else."""
    if link is None:
        return None
    url, _, _ = urljoin(request_url, link).partition("#")
    parts = urlsplit(url)
    base = urlsplit(base_url)
    if _origin(parts) != _origin(base) or parts.username is not None:
        raise PageError(f"next: leads to {_shown(parts)}, not the API at {_shown(base)}")
    if url == request_url:
        raise PageError("next: points back at the page just read")
    return url


def appointments(page: Page, *, install_sid: str, source: str) -> Found:
    """Watches from "List Appointments" rows: the install from the request, exam and session
    from each row, labels from its exam."""
    return _found(page, source, lambda row: (install_sid, row.get("examSid")))


def enrollment_sessions(page: Page, *, install_sid: str, exam_sid: str, source: str) -> Found:
    """Watches from an enrollment's session list: install and exam come from the path."""
    return _found(page, source, lambda row: (install_sid, exam_sid))


def _found(page: Page, source: str, scope: _Scope) -> Found:
    watches: list[Watch] = []
    skips: list[str] = []
    for index, row in enumerate(page.results):
        watch = _watch(row, scope, source)
        if isinstance(watch, str):
            skips.append(f"results[{index}]{watch}")
        else:
            watches.append(watch)
    return Found(tuple(watches), skipped=len(skips), first_skip=skips[0] if skips else None)


def _watch(row: object, scope: _Scope, source: str) -> Watch | str:
    """The row's watch, or where it went wrong (".sid: …") when it names no session."""
    if not isinstance(row, dict):
        return f": expected an object, got {_kind(row)}"
    install_sid, exam_sid = scope(row)
    if not isinstance(exam_sid, str) or not EXAM_SID.fullmatch(exam_sid):
        return ".examSid: missing or not an exam SID"
    sid = row.get("sid")
    if not isinstance(sid, str) or not SESSION_SID.fullmatch(sid):
        return ".sid: missing or not a session SID"
    return Watch(SessionKey(install_sid, exam_sid, sid), _labels(row.get("exam")), None, source)


def _labels(exam: object) -> Mapping[str, str]:
    """Exam title and course name, when the row has them; anything else in it is not read."""
    if not isinstance(exam, dict):
        return NO_LABELS
    labels = {
        label: sys.intern(value.strip())
        for label, field in _LABELS
        if isinstance(value := exam.get(field), str) and value.strip()
    }
    return labels or NO_LABELS


def _origin(parts: SplitResult) -> tuple[str, str | None, int | None]:
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1  # an unreadable port matches no base URL
    return scheme, parts.hostname, port if port is not None else _PORTS.get(scheme)


def _shown(parts: SplitResult) -> str:
    # Scheme and host only: the rest of a link (its query) is nobody's business in a log line.
    return f"{parts.scheme}://{parts.hostname or ''}"


def _kind(value: object) -> str:
    return _KINDS.get(type(value), "a value")

"""The status page: `/` (what is overdue, what is due, can spmon see), `/sessions` (the
long lists, a page at a time) and `/sessions/{sid}` (one session and its history).

Server-rendered HTML from Jinja2 templates with autoescaping on: labels come from CSV exports
anyone may have written, so every value is escaped, and the Content-Security-Policy allows
no script at all. It shows no token, credential or sink URL, but it does show session SIDs
and labels, which the metrics carry not: reads are open for now, so `http.listen` should stay
on loopback or a cluster-internal address until the page follows the API's read rule.
Each handler reads the `ReadModel` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from monitor.core.views import DUE_SOON, SessionQuery, Sort
from monitor.views import ReadModel
from monitor.web import present
from monitor.web.auth import Auth, Handler

__all__ = ["HEADERS", "PageOptions", "add_page_routes"]

HEADERS: Mapping[str, str] = {
    # No script, no frames, no forms elsewhere; styles are inline in the one document.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CAP = 25
"""Rows of a list on `/`; the rest are a link away."""
PER_PAGE = 100
LISTS: Mapping[str, tuple[str, SessionQuery]] = {
    "overdue": ("Reviews overdue", SessionQuery(overdue=True, sort=Sort.LATENESS)),
    "due": (
        "Reviews due in the next 24 hours",
        SessionQuery(due_within=DUE_SOON.total_seconds(), sort=Sort.DEADLINE),
    ),
    "all": ("All watched sessions", SessionQuery(sort=Sort.LATENESS)),
}


@dataclass(frozen=True, slots=True)
class PageOptions:
    zone: tzinfo = UTC
    refresh: int = 30
    """Seconds between reloads (a Refresh header: no script); 0 = never."""


@dataclass(frozen=True, slots=True)
class _Page:
    views: ReadModel
    options: PageOptions
    env: jinja2.Environment
    auth: Auth

    def render(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        """The page, reloading itself every `refresh` seconds unless it is a 404 or the
        reader paused it (`?refresh=off`, a link on the page)."""
        clock = present.Clockface(self.options.zone, self.views.now())
        paused = request.query.get("refresh") == "off"
        refresh = self.options.refresh if status == 200 and not paused else 0
        html = self.env.get_template(template).render(
            clock=clock,
            refresh=refresh,
            refreshable=bool(self.options.refresh) and status == 200,
            paused_url=request.rel_url.update_query(refresh="off"),
            resume_url=request.rel_url.with_query(
                [(k, v) for k, v in request.query.items() if k != "refresh"]
            ),
            present=present,
            **context,
        )
        headers = dict(HEADERS)
        if refresh:
            # The header rather than <meta refresh>: WCAG 2.2.1 asks that a reader can turn a
            # timed reload off, which the page's "pause" link does; a meta element would be
            # flagged by checkers that cannot see that link.
            headers["Refresh"] = str(refresh)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=headers
        )


PAGE = web.AppKey("page", _Page)


def add_page_routes(
    app: web.Application, views: ReadModel, options: PageOptions, auth: Auth
) -> None:
    """`/`, `/sessions` and `/sessions/{sid}`, read like the API's reads (`admin.read`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["path_part"] = present.path_part
    app[PAGE] = _Page(views, options, env, auth)
    app.router.add_get("/", _reader(_status))
    app.router.add_get("/sessions", _reader(_list))
    app.router.add_get("/sessions/{sid}", _reader(_session))


def _reader(handler: Handler) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        refused = request.app[PAGE].auth.page_refusal(request.headers.get("Authorization"))
        return refused if refused is not None else await handler(request)

    return checked


async def _status(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    names = ("overdue", "due")
    summary, pages = await page.views.overview([_cut(LISTS[name][1], 0, CAP) for name in names])
    spots = present.blind_spots(summary)
    lists = {name: (LISTS[name][0], result) for name, result in zip(names, pages, strict=True)}
    return page.render(
        request,
        "status.html.j2",
        summary=summary,
        spots=spots,
        headline=present.headline(summary, spots),
        lists=lists,
    )


async def _list(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    name = request.query.get("list", "all")
    if name not in LISTS:
        return page.render(request, "missing.html.j2", status=404, what="That list")
    try:
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        offset = 0
    title, query = LISTS[name]
    summary, (result,) = await page.views.overview([_cut(query, offset, PER_PAGE)])
    return page.render(
        request,
        "list.html.j2",
        name=name,
        title=title,
        result=result,
        spots=present.blind_spots(summary),
        summary=summary,
    )


async def _session(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    sid = request.match_info["sid"]
    history = await page.views.history(sid)
    if history is None:
        return page.render(request, "missing.html.j2", status=404, what=f"Session {sid}")
    told = {t.event_id for t in history.transitions}
    orphans = [d for d in history.deliveries if d.event_id not in told]
    return page.render(request, "session.html.j2", sid=sid, history=history, orphans=orphans)


def _cut(query: SessionQuery, offset: int, limit: int) -> SessionQuery:
    return dataclasses.replace(query, offset=offset, limit=limit)

"""/api/v1: the read model and the admin actions as JSON, mounted on the service's server.

`make_app(backend)` is a sub-application: `service.build` mounts it at `/api/v1` beside
/metrics and the status page. Reads come from the read model (`ReadModel`), writes go through
the running service's own `Watching` (so a watch added here is polled at once) and the
store's `OutboxAdmin` port. Every answer passes the redactor: a delivery error that quoted a
webhook URL reaches no client.
"""

from __future__ import annotations

from aiohttp import web

from monitor.web import api_admin, encode, openapi, params
from monitor.web.auth import AUTH, Auth, errors, guard, problem
from monitor.web.backend import BACKEND, Backend, Handler, respond

__all__ = ["PREFIX", "make_app"]

PREFIX = "/api/v1"
MAX_BODY = 16 * 1024 * 1024
"""A CSV import of 100,000 watches is about 10 MB."""


@web.middleware
async def _invalid(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except params.Invalid as exc:
        return problem(exc.status, exc.message, field=exc.field)


async def _sessions(request: web.Request) -> web.Response:
    query = params.session_query(request.query)
    found = await request.app[BACKEND].views.sessions(query)
    return respond(request, encode.page(found))


def _sid(request: web.Request) -> str:
    sid = params.sid(request.match_info["sid"])
    if sid is None:
        raise params.Invalid("sid", "not a session SID (ES + 32 hex digits)")
    return sid


async def _session(request: web.Request) -> web.Response:
    view = await request.app[BACKEND].views.session(_sid(request))
    if view is None:
        return problem(404, "no such session")
    return respond(request, encode.session(view))


async def _history(request: web.Request) -> web.Response:
    found = await request.app[BACKEND].views.history(_sid(request))
    if found is None:
        return problem(404, "no such session")
    return respond(request, encode.history(found))


async def _summary(request: web.Request) -> web.Response:
    return respond(request, encode.summary(await request.app[BACKEND].views.summary()))


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.DOCUMENT)


def make_app(backend: Backend, auth: Auth) -> web.Application:
    app = web.Application(middlewares=[errors, guard, _invalid], client_max_size=MAX_BODY)
    app[BACKEND], app[AUTH] = backend, auth
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get("/summary", _summary)
    app.router.add_get("/sessions", _sessions)
    app.router.add_get("/sessions/{sid}", _session)
    app.router.add_get("/sessions/{sid}/history", _history)
    api_admin.add_routes(app.router)
    return app

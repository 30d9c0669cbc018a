"""What /api/v1's handlers share: the running service's parts they act on, and the one way
an answer leaves (through the redactor)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from monitor.logs import Redactor
from monitor.store import OutboxAdmin
from monitor.views import ReadModel
from monitor.watching import Watching

__all__ = ["BACKEND", "Backend", "Handler", "respond"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Backend:
    """What the API reads and acts on: one running service's parts."""

    views: ReadModel
    watching: Watching
    outbox: OutboxAdmin
    redactor: Redactor
    wake: Callable[[], None]
    """The dispatcher's `notify`: re-queued rows go out now, not at the next tick."""


BACKEND = web.AppKey("backend", Backend)


def respond(request: web.Request, doc: Any, status: int = 200) -> web.Response:
    clean = _scrub(request.app[BACKEND].redactor, doc)
    return web.json_response(clean, status=status, dumps=json.dumps)


def _scrub(redactor: Redactor, value: Any) -> Any:
    """Secret values out of every string; not by key (a session's `url` is no secret)."""
    if isinstance(value, str):
        return redactor.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub(redactor, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(redactor, v) for v in value]
    return value

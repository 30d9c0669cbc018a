"""Who may call /api/v1, and what a refusal or failure looks like.

Writes always need `Authorization: Bearer <admin token>`; reads need it too unless the operator
set `admin.read: open`. With no admin token configured every write is refused (403, saying
writes are disabled), so a forgotten token never means an open admin API. The token is
compared in constant time. Every error is a JSON body with a generic message: no request
value, exception text or secret is ever echoed. No cookies are set or read, so there is no
CSRF surface: a browser never sends the bearer token on its own.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

__all__ = ["AUTH", "Auth", "errors", "guard", "problem"]

log = structlog.get_logger("spmon.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = frozenset({"/api/v1/openapi.json"})
"""Served without a token: the document names no secret, and clients need it to start."""

GENERIC = {
    400: "bad request",
    401: "authentication required",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid request body",
    500: "internal error",
}


@dataclass(frozen=True, slots=True)
class Auth:
    token: str | None
    """The admin token; None: writes are disabled."""
    open_reads: bool
    """`admin.read: open`: reads need no token."""

    def allows(self, header: str | None, *, basic: bool = False) -> bool:
        """The header carries the admin token: as a bearer token, or (`basic`, the status
        page, which a browser reads without script) as the password of HTTP Basic auth."""
        if self.token is None or header is None:
            return False
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "basic" and basic:
            try:
                given = base64.b64decode(given.strip(), validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    def page_refusal(self, header: str | None) -> web.Response | None:
        """Why a status page request is refused, or None: reads follow `admin.read`."""
        if self.open_reads:
            return None
        if self.token is None:
            return web.Response(
                status=403, text="The status page is off: set admin.read: open, or an admin token."
            )
        if self.allows(header, basic=True):
            return None
        response = web.Response(status=401, text="authentication required")
        response.headers["WWW-Authenticate"] = 'Basic realm="spmon", charset="UTF-8"'
        return response


AUTH = web.AppKey("auth", Auth)


def problem(status: int, message: str | None = None, **extra: Any) -> web.Response:
    """A JSON error: `{"error": message, ...}`; `field` names the offending input."""
    body = {"error": message or GENERIC.get(status, "error"), **extra}
    response = web.json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="spmon"'
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413, ...) and crashes as generic JSON bodies."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem(exc.status)
        if allow := exc.headers.get("Allow"):
            response.headers["Allow"] = allow
        return response
    except Exception:
        log.exception("api.crashed", method=request.method, path=request.path)
        return problem(500)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Routing errors first: a 404 or 405 says nothing the public OpenAPI document does not.
    if request.match_info.http_exception is not None or request.path in PUBLIC:
        return await handler(request)
    auth = request.app[AUTH]
    read = request.method in READS
    if auth.token is None and not (read and auth.open_reads):
        what = "reads" if read else "writes"
        return problem(403, f"{what} are disabled: no admin token is configured")
    if read and auth.open_reads:
        return await handler(request)
    if not auth.allows(request.headers.get("Authorization")):
        return problem(401)
    return await handler(request)

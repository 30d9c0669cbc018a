"""A fake SmarterProctoring API: the demo target, the test double and the benchmark load.

Every session's state is a pure function of (seed, session index, clock), computed when it is
asked for. Nothing runs between requests and each session costs one dict entry, so 100,000
sessions are as cheap to serve as twenty, and a test can move time by moving its fake clock.

The API it serves (faults, auth and `requests` counting apply to all three GETs):

- `GET /v1/installs/{i}/exams/{x}/sessions/{s}`: one session's document.
- `GET /v1/installs/{i}/reports/appointments`: every session of the install as a report row
  (sid, examSid, enrollmentSid, status, sessionType, appointmentDate, reviewByDate,
  reviewCompletedDate, reviewRequired, sessionReportCount, exam {sid, title, courseName},
  enrollment {sid}), oldest first. Completed sessions drop out: Closed, and reviewed or never
  needing review. Other query parameters are accepted and kept in the links, not applied.
- `GET /v1/installs/{i}/enrollments/{e}/exams/{x}/sessions`: that enrollment's sessions of the
  exam (sid, status, sessionType, appointmentDate, createdDate, editDate), filtered by
  repeatable `status[]`; `includeActive=true` adds in-progress ones (Needs Proctor, Incident,
  In Progress), left out by default. `sortKeys`/`sortOrder` are ignored: oldest first.
- Lists answer {total, first, next, prev, last, count, offset, results}, paged by `offset` and
  `limit` (25 by default); `next` is null on the last page, and a bad parameter is 400
  INVALIDINPUT. Rows are the session documents' own values at the instant of the request.
  Sessions added or removed between pages shift later pages, as offsets over a live set do.
- `POST /oidc/token`: OAuth client credentials, HTTP Basic (`clients`: II… id → secret) and
  grant_type=client_credentials → {access_token (a JWT with exp), token_type "Bearer",
  expires_in, expires_at}, lifetime `token_lifetime` (3600 s); wrong credentials are 401
  {"error": "invalid_client"}. With clients set, API GETs take that token in the `token` header
  or as `Authorization: Bearer` (`accept`: either, token, bearer); an expired one is 403
  AUTHENTICATIONFAILED in `token`, 401 `WWW-Authenticate: Bearer error="invalid_token"` as a
  bearer. A fixed `token` is still compared in the `token` header (see monitor.sim_auth).

Control API for tests and demos (monitor.sim_control; never authenticated, not counted):
`GET /_sim/keys`; `POST|PUT|DELETE /_sim/sessions/{i}/{x}/{s}` add (optional body
{"enrollmentSid": …}), override fields, remove; `PUT /_sim/faults`; `PUT /_sim/auth`
({"clients": {id: secret}, "token_lifetime": s, "accept": "either|token|bearer"}).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Final

from aiohttp import web

from monitor import sim_control, sim_lists
from monitor.core.keys import SessionKey
from monitor.sim_auth import Accept, Authority, Credentials, make_token
from monitor.sim_catalog import Catalog
from monitor.sim_faults import MALFORMED_SESSION_KINDS, Faults, malformed_session

__all__ = ["Faults", "Simulator", "make_keys", "make_token", "serve"]

SESSION_ROUTE: Final = "/v1/installs/{installSid}/exams/{examSid}/sessions/{sessionSid}"
APPOINTMENTS_ROUTE: Final = "/v1/installs/{installSid}/reports/appointments"
ENROLLMENT_ROUTE: Final = (
    "/v1/installs/{installSid}/enrollments/{enrollmentSid}/exams/{examSid}/sessions"
)
TOKEN_ROUTE: Final = "/oidc/token"  # noqa: S105  # a path, not a secret

# make_keys: "a few exams per install, many sessions per exam", and 100,000 keys still spread
# over a realistic number of installs (100) rather than one giant exam.
_EXAMS_PER_INSTALL: Final = 4
_MAX_SESSIONS_PER_EXAM: Final = 250

# Runner shutdown waits this long for in-flight handlers, so a slow fault cannot stall a test.
_SHUTDOWN_TIMEOUT: Final = 0.5

_NO_FAULTS: Final = Faults()
_Select = Callable[[web.Request, sim_lists.Query, float], list[int]]
_Row = Callable[[Mapping[str, object]], dict[str, object]]


def make_keys(n: int, *, seed: int = 0) -> list[SessionKey]:
    """Deterministic, valid keys grouped like real installs: few exams each, many sessions."""
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)
    per_exam = max(1, min(_MAX_SESSIONS_PER_EXAM, math.isqrt(n)))
    exam_count = -(-n // per_exam)
    installs = [_random_sid("AI", rng) for _ in range(-(-exam_count // _EXAMS_PER_INSTALL))]
    exams = [(installs[e // _EXAMS_PER_INSTALL], _random_sid("EX", rng)) for e in range(exam_count)]
    return [SessionKey(*exams[i // per_exam], _random_sid("ES", rng)) for i in range(n)]


class Simulator:
    """The fake API; app() serves it, and tests change it through set()/add()/remove().

    `requests` counts every API GET (sessions and list pages), `list_requests` the pages alone,
    `auth.issued` the tokens handed out.
    """

    def __init__(
        self,
        keys: Sequence[SessionKey],
        *,
        seed: int = 0,
        evolve: bool = True,
        change_every: float = 30.0,
        faults: Faults = _NO_FAULTS,
        token: str | None = None,
        clients: Mapping[str, str] | None = None,
        token_lifetime: float = 3600.0,
        accept: Accept | str = Accept.EITHER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if change_every <= 0:
            raise ValueError("change_every must be positive")
        self.catalog = Catalog(
            keys, seed=seed, evolve=evolve, change_every=change_every, clock=clock
        )
        self.auth = Authority(
            Credentials(clients or {}, token_lifetime, Accept(accept)), clock=clock
        )
        self.requests = 0
        self.list_requests = 0
        self.faults = faults
        self.token = token
        self._rng = random.Random(seed)
        self._codes: dict[int, int] = {}
        self._bodies: dict[int, bytes] = {}

    @property
    def keys(self) -> list[SessionKey]:
        """Every session ever known, removed ones included, in the order they were added."""
        return self.catalog.keys

    def app(self) -> web.Application:
        """A fresh Application per call: aiohttp freezes an app once a runner has used it."""
        app = web.Application()
        app.router.add_get(SESSION_ROUTE, self._get_session)
        app.router.add_get(APPOINTMENTS_ROUTE, self._get_appointments)
        app.router.add_get(ENROLLMENT_ROUTE, self._get_enrollment_sessions)
        app.router.add_post(TOKEN_ROUTE, self.auth.token_endpoint)
        sim_control.add_routes(app.router, self)
        return app

    def set(self, key: SessionKey, **fields: object) -> None:
        """Override API fields by name; the session stops evolving so the override sticks."""
        self.catalog.override(self.catalog.lookup(key), fields, self.catalog.now())

    def add(self, key: SessionKey, *, enrollment_sid: str | None = None) -> None:
        """A new session, listed from now on; `enrollment_sid` makes it a retake in that one."""
        self.catalog.add(key, enrollment=enrollment_sid)

    def remove(self, key: SessionKey) -> None:
        """The session answers 404 from now on, as if it had been deleted upstream."""
        self.catalog.remove(key)

    def payload(self, key: SessionKey) -> dict[str, object]:
        """Decoded from the very bytes a GET would carry, so tests compare like with like."""
        index = self.catalog.live(key)
        if index is None:
            raise KeyError(key)
        decoded: dict[str, object] = json.loads(self.catalog.body(index, self.catalog.now()))
        return decoded

    def set_status_code(self, key: SessionKey, code: int | None) -> None:
        """Force one session's answer to an error `code` (None restores normal answers)."""
        index = self.catalog.lookup(key)
        if code is not None and not 400 <= HTTPStatus(code) <= 599:
            raise ValueError("forced status codes are client or server errors (400-599)")
        if code is None:
            self._codes.pop(index, None)
        else:
            self._codes[index] = code

    def set_body(self, key: SessionKey, body: bytes | None) -> None:
        """Answer 200 with exactly `body` (None restores the session's own document): what a
        gateway or a half-deployed API may put in a 200, such as `{}` or `{"message": …}`."""
        index = self.catalog.lookup(key)
        if body is None:
            self._bodies.pop(index, None)
        else:
            self._bodies[index] = body

    def _roll(self, rate: float) -> bool:
        # No draw at rate 0, so fault-free runs leave the random sequence alone.
        return rate > 0.0 and self._rng.random() < rate

    async def _api(
        self, request: web.Request, answer: Callable[[Faults], web.Response]
    ) -> web.Response:
        """What every API GET goes through: slowness, auth, injected failures, then `answer`."""
        self.requests += 1
        faults = self.faults
        if self._roll(faults.slow_rate):
            await asyncio.sleep(faults.slow_seconds)
        refused = self.auth.refusal(request.headers, self.token)
        if refused is not None:
            return refused
        if self._roll(faults.error_rate):
            return _message(self._rng.choice((500, 502, 503)), "Upstream failure (simulated)")
        if self._roll(faults.rate_limit_rate):
            headers = {"Retry-After": str(faults.retry_after)}
            return _message(429, "Too Many Requests", headers=headers)
        return answer(faults)

    async def _get_session(self, request: web.Request) -> web.Response:
        return await self._api(request, lambda faults: self._answer(request, faults))

    def _answer(self, request: web.Request, faults: Faults) -> web.Response:
        index = self.catalog.live(_request_key(request))
        if index is None:
            return _message(404, "Not Found")
        code = self._codes.get(index)
        if code is not None:
            return _message(code, HTTPStatus(code).phrase)
        forced = self._bodies.get(index)
        if forced is not None:
            return _json_response(forced)
        body = self.catalog.body(index, self.catalog.now())
        if self._roll(faults.malformed_rate):
            kind = self._rng.randrange(MALFORMED_SESSION_KINDS)
            return _json_response(malformed_session(body, kind))
        return _json_response(body)

    async def _get_appointments(self, request: web.Request) -> web.Response:
        return await self._list(request, self._appointments, sim_lists.appointment_row)

    async def _get_enrollment_sessions(self, request: web.Request) -> web.Response:
        return await self._list(request, self._enrollment_sessions, sim_lists.enrollment_row)

    async def _list(self, request: web.Request, select: _Select, row: _Row) -> web.Response:
        self.list_requests += 1
        return await self._api(request, lambda faults: self._page(request, faults, select, row))

    def _page(
        self, request: web.Request, faults: Faults, select: _Select, row: _Row
    ) -> web.Response:
        try:
            query = sim_lists.query_of(request.rel_url.query)
        except sim_lists.BadQuery as error:
            return web.json_response({"code": "INVALIDINPUT", "message": str(error)}, status=400)
        now = self.catalog.now()  # one instant per page: its rows agree with each other
        chosen = select(request, query, now)
        shown = chosen[query.offset : query.offset + query.limit]
        rows = [row(self.catalog.document(index, now)) for index in shown]
        page = sim_lists.envelope(request.url, query, len(chosen), rows)
        if self._roll(faults.malformed_rate):
            kind = self._rng.randrange(sim_lists.MALFORMED_KINDS)
            return _json_response(sim_lists.malformed(page, kind))
        return web.json_response(page)

    def _appointments(self, request: web.Request, query: sim_lists.Query, now: float) -> list[int]:
        catalog = self.catalog
        install = catalog.in_install(request.match_info["installSid"])
        return [i for i in install if not sim_lists.completed(catalog.state(i, now))]

    def _enrollment_sessions(
        self, request: web.Request, query: sim_lists.Query, now: float
    ) -> list[int]:
        info, catalog = request.match_info, self.catalog
        scope = (info["installSid"], info["enrollmentSid"], info["examSid"])
        found = catalog.in_enrollment(scope)
        return [i for i in found if sim_lists.listed(catalog.state(i, now), query)]


@contextlib.asynccontextmanager
async def serve(sim: Simulator, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `sim` on a real socket and yield its base URL; port 0 picks a free port."""
    runner = web.AppRunner(
        sim.app(), handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield _base_url(runner.addresses[0])
    finally:
        await asyncio.shield(runner.cleanup())


def _random_sid(prefix: str, rng: random.Random) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


def _request_key(request: web.Request) -> SessionKey:
    info = request.match_info
    return SessionKey(info["installSid"], info["examSid"], info["sessionSid"])


def _json_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _message(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)


def _base_url(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

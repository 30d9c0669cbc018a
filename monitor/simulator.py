"""A fake SmarterProctoring API: the demo target, the test double and the benchmark load.

Every session's state is a pure function of (seed, session index, clock), computed when it is
asked for. Nothing runs between requests and each session costs one dict entry, so 100,000
sessions are as cheap to serve as twenty, and a test can move time by moving its fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

from monitor.core.keys import SessionKey
from monitor.sim_sessions import STATIC, STATIC_TAIL, fields_at

__all__ = ["Faults", "Simulator", "make_keys", "make_token", "serve"]

SESSION_ROUTE: Final = "/v1/installs/{installSid}/exams/{examSid}/sessions/{sessionSid}"
CONTROL_ROUTE: Final = "/_sim/sessions/{installSid}/{examSid}/{sessionSid}"

# make_keys: "a few exams per install, many sessions per exam", and 100,000 keys still spread
# over a realistic number of installs (100) rather than one giant exam.
_EXAMS_PER_INSTALL: Final = 4
_MAX_SESSIONS_PER_EXAM: Final = 250

# Anyone may verify a make_token() JWT with this key: it only makes the token well-formed.
_DEMO_JWT_KEY: Final = b"spmon-simulator-public-demo-key"

# Runner shutdown waits this long for in-flight handlers, so a slow fault cannot stall a test.
_SHUTDOWN_TIMEOUT: Final = 0.5


@dataclass(frozen=True, slots=True)
class Faults:
    """Which fraction of session GETs misbehave, and how; rates are probabilities in [0, 1]."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    malformed_rate: float = 0.0

    def __post_init__(self) -> None:
        # Checked here so that a bad PUT /_sim/faults is a 400, not a surprise later.
        rates = (self.error_rate, self.rate_limit_rate, self.slow_rate, self.malformed_rate)
        if not all(0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("fault rates must lie in [0, 1]")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must not be negative")


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


def make_token(*, exp: float) -> str:
    """A JWT the service can read `exp` from; signed with a public key, so it proves nothing."""
    header = _b64url(_compact({"alg": "HS256", "typ": "JWT"}))
    payload = _b64url(_compact({"exp": int(exp), "sub": "spmon-demo"}))
    signature = hmac.new(_DEMO_JWT_KEY, f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64url(signature.digest())}"


class Simulator:
    """The fake API's state; app() serves it, and tests change it through set()/remove()."""

    def __init__(
        self,
        keys: Sequence[SessionKey],
        *,
        seed: int = 0,
        evolve: bool = True,
        change_every: float = 30.0,
        faults: Faults = Faults(),
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if change_every <= 0:
            raise ValueError("change_every must be positive")
        self.keys: list[SessionKey] = list(keys)
        self.requests = 0
        self.faults = faults
        self.token = token
        self.seed = seed
        self.evolve = evolve
        self.change_every = change_every
        self._clock = clock
        self._frozen_at = clock()  # the baseline instant when evolve=False
        self._index = {key: index for index, key in enumerate(self.keys)}
        self._rng = random.Random(seed)
        self._pinned: dict[int, float] = {}
        self._overrides: dict[int, dict[str, object]] = {}
        self._removed: set[int] = set()
        self._codes: dict[int, int] = {}
        self._bodies: dict[int, bytes] = {}

    def app(self) -> web.Application:
        """A fresh Application per call: aiohttp freezes an app once a runner has used it."""
        app = web.Application()
        app.router.add_get(SESSION_ROUTE, self._get_session)
        app.router.add_get("/_sim/keys", self._get_keys)
        app.router.add_put(CONTROL_ROUTE, self._put_session)
        app.router.add_delete(CONTROL_ROUTE, self._delete_session)
        app.router.add_put("/_sim/faults", self._put_faults)
        return app

    def set(self, key: SessionKey, **fields: object) -> None:
        """Override API fields by name; the session stops evolving so the override sticks."""
        index = self._lookup(key)
        json.dumps(fields)  # fail here, in the caller's stack, on values JSON cannot carry
        self._pinned.setdefault(index, self._now(index))
        self._overrides.setdefault(index, {}).update(fields)

    def remove(self, key: SessionKey) -> None:
        """The session answers 404 from now on, as if it had been deleted upstream."""
        self._removed.add(self._lookup(key))

    def payload(self, key: SessionKey) -> dict[str, object]:
        """Decoded from the very bytes a GET would carry, so tests compare like with like."""
        index = self._lookup(key)
        if index in self._removed:
            raise KeyError(key)
        decoded: dict[str, object] = json.loads(self._body(index))
        return decoded

    def set_status_code(self, key: SessionKey, code: int | None) -> None:
        """Force one session's answer to an error `code` (None restores normal answers)."""
        index = self._lookup(key)
        if code is not None and not 400 <= HTTPStatus(code) <= 599:
            raise ValueError("forced status codes are client or server errors (400-599)")
        if code is None:
            self._codes.pop(index, None)
        else:
            self._codes[index] = code

    def set_body(self, key: SessionKey, body: bytes | None) -> None:
        """Answer 200 with exactly `body` (None restores the session's own document): what a
        gateway or a half-deployed API may put in a 200, such as `{}` or `{"message": …}`."""
        index = self._lookup(key)
        if body is None:
            self._bodies.pop(index, None)
        else:
            self._bodies[index] = body

    def _lookup(self, key: SessionKey) -> int:
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"unknown session {key!r}") from None

    def _now(self, index: int) -> float:
        pinned = self._pinned.get(index)
        if pinned is not None:
            return pinned
        return self._clock() if self.evolve else self._frozen_at

    def _fields(self, index: int) -> dict[str, object]:
        """Identity and lifecycle fields: the part of the payload that differs per session."""
        return fields_at(self.seed, index, self.keys[index], self._now(index), self.change_every)

    def _body(self, index: int) -> bytes:
        """Splice the per-session JSON onto the shared static tail instead of re-encoding it."""
        fields = self._fields(index)
        overrides = self._overrides.get(index)
        if overrides is None:
            return (json.dumps(fields)[:-1] + STATIC_TAIL).encode()
        return json.dumps({**fields, **STATIC, **overrides}).encode()

    def _roll(self, rate: float) -> bool:
        # No draw at rate 0, so fault-free runs leave the random sequence alone.
        return rate > 0.0 and self._rng.random() < rate

    async def _get_session(self, request: web.Request) -> web.Response:
        self.requests += 1
        faults = self.faults
        if self._roll(faults.slow_rate):
            await asyncio.sleep(faults.slow_seconds)
        if self.token is not None and request.headers.get("token") != self.token:
            return _message(401, "Unauthorized")
        injected = self._injected_fault(faults)
        if injected is not None:
            return injected
        return self._answer(_request_key(request), faults)

    def _injected_fault(self, faults: Faults) -> web.Response | None:
        if self._roll(faults.error_rate):
            return _message(self._rng.choice((500, 502, 503)), "Upstream failure (simulated)")
        if self._roll(faults.rate_limit_rate):
            headers = {"Retry-After": str(faults.retry_after)}
            return _message(429, "Too Many Requests", headers=headers)
        return None

    def _live(self, key: SessionKey) -> int | None:
        """The session's index, or None when GET would answer 404."""
        index = self._index.get(key)
        return None if index is None or index in self._removed else index

    def _answer(self, key: SessionKey, faults: Faults) -> web.Response:
        index = self._live(key)
        if index is None:
            return _message(404, "Not Found")
        code = self._codes.get(index)
        if code is not None:
            return _message(code, HTTPStatus(code).phrase)
        forced = self._bodies.get(index)
        if forced is not None:
            return _json_response(forced)
        if self._roll(faults.malformed_rate):
            return _json_response(self._malformed(index))
        return _json_response(self._body(index))

    def _malformed(self, index: int) -> bytes:
        """The ways a 200 can still be unusable: cut short, mistyped, not an object, a
        gateway's message instead of a session, or a session document missing a field."""
        body = self._body(index)
        kind = self._rng.randrange(5)
        if kind == 0:
            return body[: len(body) // 2]
        payload = json.loads(body)
        if kind == 1:
            return json.dumps({**payload, "reviewRequired": "yes"}).encode()
        if kind == 2:
            return json.dumps([payload]).encode()
        if kind == 3:
            return b'{"message": "upstream request timeout"}'
        payload.pop("status")
        return json.dumps(payload).encode()

    async def _get_keys(self, request: web.Request) -> web.Response:
        keys = [
            {"installSid": k.install_sid, "examSid": k.exam_sid, "sessionSid": k.session_sid}
            for k in self.keys
        ]
        return web.json_response(keys)

    async def _put_session(self, request: web.Request) -> web.Response:
        key = _request_key(request)
        if self._live(key) is None:
            return _message(404, "Not Found")
        fields = await _json_object(request)
        if fields is None:
            return _message(400, "Body must be a JSON object of API fields")
        self.set(key, **fields)
        return web.json_response(self.payload(key))

    async def _delete_session(self, request: web.Request) -> web.Response:
        key = _request_key(request)
        if self._live(key) is None:
            return _message(404, "Not Found")
        self.remove(key)
        return web.Response(status=204)

    async def _put_faults(self, request: web.Request) -> web.Response:
        fields = await _json_object(request)
        try:
            self.faults = _faults_from(fields)
        except (TypeError, ValueError) as error:
            return _message(400, f"Bad faults: {error}")
        return web.json_response(asdict(self.faults))


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


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _request_key(request: web.Request) -> SessionKey:
    info = request.match_info
    return SessionKey(info["installSid"], info["examSid"], info["sessionSid"])


def _json_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _message(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"message": message}, status=status, headers=headers)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body if it is a JSON object, else None (the caller answers 400)."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _faults_from(fields: Mapping[str, Any] | None) -> Faults:
    """PUT semantics: the body replaces all faults, and omitted fields take their defaults."""
    if fields is None:
        raise TypeError("body must be a JSON object")
    if not all(type(value) in (int, float) for value in fields.values()):
        raise TypeError("fault fields take numbers")
    if type(fields.get("retry_after", 1)) is not int:
        raise TypeError("retry_after takes whole seconds")
    return Faults(**fields)


def _base_url(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

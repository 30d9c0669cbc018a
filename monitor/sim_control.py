"""The simulator's control API: what tests and demos use to steer a simulator in another process.

Never authenticated and not counted as API load. Routes: `GET /_sim/keys`; `POST`, `PUT`,
`DELETE /_sim/sessions/{i}/{x}/{s}` add a session (optional body {"enrollmentSid": …}),
override its fields, remove it; `PUT /_sim/faults` and `PUT /_sim/auth` replace those settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web

from monitor.core.keys import SessionKey
from monitor.sim_auth import Authority, Credentials, credentials_from
from monitor.sim_catalog import Catalog
from monitor.sim_faults import Faults, faults_from

__all__ = ["Controlled", "add_routes"]

SESSION: Final = "/_sim/sessions/{installSid}/{examSid}/{sessionSid}"

_T = TypeVar("_T")


class Controlled(Protocol):
    """The part of a Simulator the control API steers."""

    catalog: Catalog
    auth: Authority
    faults: Faults

    def set(self, key: SessionKey, **fields: object) -> None: ...
    def add(self, key: SessionKey, *, enrollment_sid: str | None = None) -> None: ...
    def payload(self, key: SessionKey) -> dict[str, object]: ...


def add_routes(router: web.UrlDispatcher, sim: Controlled) -> None:
    control = _Control(sim)
    router.add_get("/_sim/keys", control.keys)
    router.add_post(SESSION, control.add)
    router.add_put(SESSION, control.override)
    router.add_delete(SESSION, control.remove)
    router.add_put("/_sim/faults", control.faults)
    router.add_put("/_sim/auth", control.auth)


class _Control:
    def __init__(self, sim: Controlled) -> None:
        self._sim = sim

    async def keys(self, request: web.Request) -> web.Response:
        catalog = self._sim.catalog
        keys = [
            {
                "installSid": key.install_sid,
                "examSid": key.exam_sid,
                "sessionSid": key.session_sid,
                "enrollmentSid": catalog.enrollment_of(index),
            }
            for index, key in enumerate(catalog.keys)
        ]
        return web.json_response(keys)

    async def add(self, request: web.Request) -> web.Response:
        key = _key(request)
        fields = await _json_object(request) if request.can_read_body else {}
        enrollment = (fields or {}).get("enrollmentSid")
        if fields is None or not isinstance(enrollment, str | None):
            return _message(400, 'Body must be a JSON object, optionally {"enrollmentSid": …}')
        try:
            self._sim.add(key, enrollment_sid=enrollment)
        except ValueError:
            return _message(409, "Session exists already")
        return web.json_response(self._sim.payload(key), status=201)

    async def override(self, request: web.Request) -> web.Response:
        key = _key(request)
        if self._sim.catalog.live(key) is None:
            return _message(404, "Not Found")
        fields = await _json_object(request)
        if fields is None:
            return _message(400, "Body must be a JSON object of API fields")
        self._sim.set(key, **fields)
        return web.json_response(self._sim.payload(key))

    async def remove(self, request: web.Request) -> web.Response:
        key = _key(request)
        if self._sim.catalog.live(key) is None:
            return _message(404, "Not Found")
        self._sim.catalog.remove(key)
        return web.Response(status=204)

    async def faults(self, request: web.Request) -> web.Response:
        return await _replace(request, faults_from, self._set_faults)

    async def auth(self, request: web.Request) -> web.Response:
        return await _replace(request, credentials_from, self._set_credentials)

    def _set_faults(self, faults: Faults) -> dict[str, object]:
        self._sim.faults = faults
        return asdict(faults)

    def _set_credentials(self, credentials: Credentials) -> dict[str, object]:
        # Tokens issued before stay valid until their own exp: the signing key is unchanged.
        self._sim.auth.credentials = credentials
        return {  # client ids only: secrets never leave the simulator
            "clients": sorted(credentials.clients),
            "token_lifetime": credentials.lifetime,
            "accept": credentials.accept.value,
        }


async def _replace(
    request: web.Request,
    parse: Callable[[Mapping[str, Any] | None], _T],
    apply: Callable[[_T], dict[str, object]],
) -> web.Response:
    """PUT of a whole settings record: 400 naming the problem, or 200 with what now holds."""
    try:
        value = parse(await _json_object(request))
    except (TypeError, ValueError) as error:
        return _message(400, f"Bad {request.path.rsplit('/', 1)[1]}: {error}")
    return web.json_response(apply(value))


def _key(request: web.Request) -> SessionKey:
    info = request.match_info
    return SessionKey(info["installSid"], info["examSid"], info["sessionSid"])


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body if it is a JSON object, else None (the caller answers 400)."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)

"""The simulator's authentication: today's fixed token, and OAuth 2.0 client credentials.

A fixed token (Simulator(token=…)) is compared in the `token` header, as before. With clients
configured, POST /oidc/token trades HTTP Basic credentials (or client_id / client_secret form
fields) for a JWT with an `exp`; API requests then carry it in the `token` header or as
`Authorization: Bearer`, whichever `accept` allows. Refusals follow the docs: a bad or expired
JWT in `token` is 403 AUTHENTICATIONFAILED, a bad or expired bearer token is 401 with
`WWW-Authenticate: Bearer error="invalid_token"`, nothing at all is 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web

__all__ = ["Accept", "Authority", "Credentials", "credentials_from", "make_token"]

# Anyone may verify a make_token() JWT with this key: it only makes the token well-formed.
_DEMO_JWT_KEY: Final = b"spmon-simulator-public-demo-key"
_CLIENT_ID: Final = re.compile(r"II[0-9a-fA-F]{32}")
_REALM: Final = 'realm="smarterservices"'
_INVALID_TOKEN: Final = (
    f'Bearer {_REALM}, error="invalid_token", '
    'error_description="The access token is invalid or has expired"'
)


class Accept(StrEnum):
    """Where API requests may carry a token from the token endpoint."""

    EITHER = "either"
    TOKEN = "token"  # noqa: S105  # a header's name, not a secret
    BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Credentials:
    """OAuth clients (integration SID → secret), token lifetime in seconds, and `accept`."""

    clients: Mapping[str, str] = field(default_factory=dict)
    lifetime: float = 3600.0
    accept: Accept = Accept.EITHER

    def __post_init__(self) -> None:
        bad = [cid for cid in self.clients if not _CLIENT_ID.fullmatch(cid)]
        if bad:
            raise ValueError(f"client ids are II + 32 hex digits, not {bad[0]!r}")
        secrets_given = list(self.clients.values())  # from JSON, so not necessarily strings
        if not all(isinstance(secret, str) for secret in secrets_given) or not all(secrets_given):
            raise ValueError("client secrets are non-empty strings")
        if not self.lifetime > 0:
            raise ValueError("token lifetime must be positive")
        object.__setattr__(self, "clients", MappingProxyType(dict(self.clients)))
        object.__setattr__(self, "accept", Accept(self.accept))


def credentials_from(fields: Mapping[str, Any] | None) -> Credentials:
    """PUT /_sim/auth semantics: the body replaces the credentials; omitted fields default."""
    if fields is None:
        raise TypeError("body must be a JSON object")
    unknown = fields.keys() - {"clients", "token_lifetime", "accept"}
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    clients = fields.get("clients", {})
    lifetime = fields.get("token_lifetime", 3600.0)
    if not isinstance(clients, dict) or type(lifetime) not in (int, float):
        raise TypeError("clients is an object of id → secret, token_lifetime a number")
    return Credentials(clients, float(lifetime), Accept(fields.get("accept", "either")))


def make_token(*, exp: float) -> str:
    """A JWT the service can read `exp` from; signed with a public key, so it proves nothing."""
    return _sign(_DEMO_JWT_KEY, {"exp": int(exp), "sub": "spmon-demo"})


class Authority:
    """Issues JWTs to known clients and judges the credentials each API request carries."""

    def __init__(self, credentials: Credentials, *, clock: Callable[[], float]) -> None:
        self.credentials = credentials
        self.issued = 0
        """Tokens handed out so far: how tests see when a client renewed."""
        self._clock = clock
        # Per simulator, so a token from another simulator (or make_token) is refused.
        self._key = secrets.token_bytes(32)

    def refusal(self, headers: Mapping[str, str], fixed: str | None) -> web.Response | None:
        """None when the request may proceed, else the answer that refuses it."""
        token = headers.get("token")
        if (
            fixed is not None
            and token is not None
            and hmac.compare_digest(token.encode(), fixed.encode())
        ):
            return None
        if not self.credentials.clients:
            return None if fixed is None else _refused(401, {"message": "Unauthorized"})
        accept = self.credentials.accept
        if token is not None and accept is not Accept.BEARER:
            return None if self._valid(token) else _authentication_failed()
        bearer = _bearer(headers.get("Authorization"))
        if bearer is not None and accept is not Accept.TOKEN:
            return None if self._valid(bearer) else _invalid_token()
        challenge = {} if accept is Accept.TOKEN else {"WWW-Authenticate": f"Bearer {_REALM}"}
        return _refused(401, {"message": "Unauthorized"}, challenge)

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = _basic(request.headers.get("Authorization")) or (
            form.get("client_id"),
            form.get("client_secret"),
        )
        if not self._known(client_id, secret):
            challenge = {"WWW-Authenticate": f"Basic {_REALM}"}
            return _refused(401, {"error": "invalid_client"}, challenge)
        grant = form.get("grant_type")
        if grant != "client_credentials":
            error = "invalid_request" if grant is None else "unsupported_grant_type"
            return _refused(400, {"error": error})
        self.issued += 1
        return web.json_response(self._grant(str(client_id)))

    def _grant(self, client_id: str) -> dict[str, object]:
        now = self._clock()
        lifetime = self.credentials.lifetime
        exp = _number(round(now + lifetime, 3))
        claims = {"iss": "spmon-simulator", "sub": client_id, "iat": int(now), "exp": exp}
        expires_at = datetime.fromtimestamp(exp, UTC).isoformat(timespec="milliseconds")
        return {
            "access_token": _sign(self._key, {**claims, "jti": secrets.token_hex(8)}),
            "token_type": "Bearer",
            "expires_in": _number(lifetime),
            "expires_at": expires_at.replace("+00:00", "Z"),
        }

    def _known(self, client_id: object, secret: object) -> bool:
        if not isinstance(client_id, str) or not isinstance(secret, str):
            return False
        expected = self.credentials.clients.get(client_id)
        return expected is not None and hmac.compare_digest(secret.encode(), expected.encode())

    def _valid(self, token: str) -> bool:
        """Signed by this simulator and not yet expired by its clock."""
        parts = token.split(".")
        if len(parts) != 3:
            return False
        signed = f"{parts[0]}.{parts[1]}".encode()
        expected = _b64url(hmac.new(self._key, signed, hashlib.sha256).digest())
        if not hmac.compare_digest(parts[2].encode(), expected.encode()):
            return False
        exp = json.loads(_unb64url(parts[1])).get("exp")
        return isinstance(exp, int | float) and self._clock() < exp


def _sign(key: bytes, claims: Mapping[str, object]) -> str:
    header = _b64url(_compact({"alg": "HS256", "typ": "JWT"}))
    payload = _b64url(_compact(claims))
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64url(signature.digest())}"


def _basic(header: str | None) -> tuple[str, str] | None:
    if header is None or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def _bearer(header: str | None) -> str | None:
    if header is None or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def _authentication_failed() -> web.Response:
    body = {"code": "AUTHENTICATIONFAILED", "message": "Invalid or expired JWT token"}
    return _refused(403, body)


def _invalid_token() -> web.Response:
    return _refused(401, {"message": "Unauthorized"}, {"WWW-Authenticate": _INVALID_TOKEN})


def _refused(
    status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(dict(body), status=status, headers=headers)


def _number(value: float) -> float | int:
    """Whole seconds as an int, as real tokens carry them; fractions only when asked for."""
    return int(value) if value == int(value) else value


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

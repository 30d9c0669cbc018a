"""`api.auth`: how spmon authenticates to the API — the static `api.token` / `api.token_file`,
or OAuth 2.0 client credentials traded for tokens that renew before they expire."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from monitor.settings_files import read_setting_file
from monitor.settings_types import STRICT, Seconds

__all__ = ["DEFAULT_TOKEN_URL", "AuthSettings", "read_client_files", "read_secret"]

DEFAULT_TOKEN_URL = "https://api.smarterservices.com/oidc/token"  # noqa: S105  # a URL, not a secret


class AuthSettings(BaseModel):
    model_config = STRICT
    mode: Literal["static", "oauth"] = "static"
    """static: api.token / api.token_file; oauth: client credentials from the token endpoint."""
    header: Literal["token", "bearer"] = "token"
    """Where the token travels: the `token` header (the docs' scheme) or Authorization: Bearer."""
    token_url: str = DEFAULT_TOKEN_URL
    """The OAuth token endpoint (grant_type=client_credentials, HTTP Basic)."""
    client_id: SecretStr | None = Field(default=None, validate_default=True)
    """The integration SID (II…); prefer client_id_file."""
    client_id_file: Path | None = Field(default=None, validate_default=True)
    """File holding the client id (a mounted secret); read again for every token request."""
    client_secret: SecretStr | None = Field(default=None, validate_default=True)
    """The client secret; prefer client_secret_file or SPMON_API__AUTH__CLIENT_SECRET."""
    client_secret_file: Path | None = Field(default=None, validate_default=True)
    """File holding the client secret; read again for every token request."""
    renew_before: Annotated[Seconds, Field(gt=0)] = 600.0
    """Ask for the next token this long before expiry (at most half its lifetime)."""

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("client_id", "client_secret")
    @classmethod
    def _inline_for_oauth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and info.data.get("mode", "oauth") != "oauth":
            raise ValueError("only used with api.auth.mode: oauth")
        return value

    @field_validator("client_id_file", "client_secret_file")
    @classmethod
    def _one_source(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Field validators run in field order: mode and the inline value are known here.
        name = info.field_name or ""
        inline_name = name.removesuffix("_file")
        inline = info.data.get(inline_name)
        if "mode" not in info.data:  # already named as invalid
            return value
        if info.data["mode"] != "oauth":
            if value is not None:
                raise ValueError("only used with api.auth.mode: oauth")
        elif value is None and inline is None:
            raise ValueError(f"required with mode: oauth (or {inline_name})")
        elif value is not None and inline is not None:
            raise ValueError(f"give {name} or {inline_name}, not both")
        return value

    @property
    def oauth(self) -> bool:
        return self.mode == "oauth"

    def client(self) -> tuple[str, str] | None:
        """The client id and secret as they are now (files re-read), or None if unreadable."""
        parts = (
            read_secret(self.client_id, self.client_id_file),
            read_secret(self.client_secret, self.client_secret_file),
        )
        if parts[0] is None or parts[1] is None:
            return None
        return parts[0], parts[1]


def read_client_files(auth: AuthSettings, base: Path) -> tuple[AuthSettings, list[str]]:
    """Resolve the client files against the config's folder and check they hold something:
    an unreadable secret is a start-up error, not a first token request that fails."""
    problems: list[str] = []
    paths: dict[str, Path] = {}
    for key in ("client_id_file", "client_secret_file"):
        name: Path | None = getattr(auth, key)
        if name is None:
            continue
        path, text, problem = read_setting_file(name, base, f"api.auth.{key}")
        paths[key] = path
        if text is None:
            problems.append(problem)
            continue
        if not text:
            problems.append(f"api.auth.{key}: {path} is empty")
    for key in ("client_id", "client_secret"):
        inline: SecretStr | None = getattr(auth, key)
        if inline is not None and not inline.get_secret_value().strip():
            problems.append(f"api.auth.{key}: is empty")
    return auth.model_copy(update=paths), problems


def read_secret(inline: SecretStr | None, path: Path | None) -> str | None:
    """The inline value, else the file's content as it is now (a rotated secret), stripped;
    None when neither gives one or the file cannot be read."""
    if inline is not None:
        return inline.get_secret_value().strip() or None
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None

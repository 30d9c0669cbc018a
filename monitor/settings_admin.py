"""`admin`: the bearer token that guards the JSON API's writes (and its reads, unless open)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr, ValidationInfo, field_validator

from monitor.settings_files import read_setting_file
from monitor.settings_types import STRICT

__all__ = ["MIN_TOKEN", "AdminSettings", "read_admin_token"]

MIN_TOKEN = 16
"""Characters an admin token needs at least: anything shorter can be guessed over HTTP."""


class AdminSettings(BaseModel):
    model_config = STRICT
    token: SecretStr | None = None
    """Bearer token for /api/v1 (prefer SPMON_ADMIN__TOKEN or token_file). Unset: writes are
    refused (403), and reads follow `read`."""
    token_file: Path | None = None
    """File holding the admin token (a mounted secret); read at start-up."""
    read: Literal["token", "open"] = "token"
    """token: reads need the bearer token too; open: reads need none (a cluster-internal
    listener). Writes always need the token."""

    @field_validator("token_file")
    @classmethod
    def _one_source(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("token") is not None:
            raise ValueError("give admin.token or admin.token_file, not both")
        return value

    def secret(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None


def read_admin_token(admin: AdminSettings, base: Path) -> tuple[AdminSettings, list[str]]:
    """The settings with the token file read, or the one-line problems (never the value)."""
    if admin.token is None and admin.token_file is not None:
        path, text, problem = read_setting_file(admin.token_file, base, "admin.token_file")
        if text is None:
            return admin, [problem]
        admin = admin.model_copy(update={"token": SecretStr(text), "token_file": path})
        key = "admin.token_file"
    else:
        key = "admin.token"
    secret = admin.secret()
    if secret is not None and len(secret.strip()) < MIN_TOKEN:
        return admin, [f"{key}: must hold at least {MIN_TOKEN} characters"]
    return admin, []

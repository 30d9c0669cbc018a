"""An e-mail sink's SMTP settings: the server, how the connection is secured, who sends to whom."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from monitor.core import addresses

__all__ = ["EmailSettings", "email_problem"]

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class EmailSettings(BaseModel):
    """`email:` of a sink with type: email."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)
    host: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.:\[\]_-]+$")]
    """The SMTP server (a submission server, or a relay)."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Default 587 for starttls, 465 for tls, 25 for none."""
    tls: Literal["starttls", "tls", "none"] = "starttls"
    """starttls: upgrade a plain connection (the submission port); tls: TLS from the first
    byte (port 465); none: plain SMTP, only to a relay on this host or a private network."""
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    """File holding the password (a mounted secret), read at start-up and on reload."""
    sender: str = Field(alias="from")
    """The From address."""
    to: Annotated[list[str], Field(min_length=1)]
    """Recipients; each alert is one message to all of them."""
    subject_prefix: Annotated[str, Field(max_length=40)] = "[spmon]"
    """Put before every subject, for mail filters."""
    ca_file: Path | None = None
    """A CA bundle to trust instead of the system's (a relay with a private CA)."""

    @field_validator("sender")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be one plain address, e.g. spmon@example.edu")
        return value

    @field_validator("to")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            if not _ADDRESS.match(value):
                raise ValueError(f"to[{index}] must be one plain address, e.g. x@example.edu")
        return values

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line")
        return value

    @pydantic.model_validator(mode="after")
    def _credentials(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password (or password_file) go together")
        loopback = addresses.host_refusal(self.host) == "loopback"
        if self.password is not None and self.tls == "none" and not loopback:
            raise ValueError("a password over plain SMTP (tls: none) would travel in clear")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _PORTS[self.tls]


def email_problem(email: EmailSettings | None, *, sink: str, allow_private: bool) -> None:
    """Raise what keeps an email sink from starting: no `email:`, or a refused host."""
    if email is None:
        raise ValueError("email (host, from, to) is required for an email sink")
    refused = addresses.host_refusal(email.host)
    if refused and not allow_private:
        raise ValueError(
            f"email.host of sink {sink!r} is a {refused} address; "
            "set allow_private: true if that is intended"
        )

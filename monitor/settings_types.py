"""Types every settings group shares: durations in seconds, and strict frozen models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict

from monitor.core import durations

__all__ = ["STRICT", "Seconds", "parse_duration"]


def parse_duration(value: object) -> object:
    """Seconds as a number, or text such as "90s", "5m", "24h", "1d", "250ms"."""
    return durations.seconds(value) if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(parse_duration)]
STRICT = ConfigDict(extra="forbid", frozen=True)

"""Durations as people write them ("90s", "5m", "24h", "1d", "250ms") turned into seconds.

In the core so the settings schema and the CSV watch reader accept exactly the same spellings.
"""

from __future__ import annotations

import re

__all__ = ["seconds"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")

_MESSAGE = "expected a duration such as 30s, 5m, 24h or a number of seconds"


def seconds(text: str) -> float:
    """Seconds in `text` (a bare number is seconds); ValueError when it is none."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(_MESSAGE)
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]

"""Structured logging, configured once at the edge, with secrets scrubbed from every line.

Redaction runs last before rendering, on our events and on stdlib records (aiohttp, asyncio)
alike, and exception rendering never includes frame locals: headers dicts and URLs live there.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.core import console
from monitor.core.render import Severity

__all__ = ["REDACTED", "Redactor", "configure"]

REDACTED = "[REDACTED]"
_PATTERNS = (
    (re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"), "[REDACTED_JWT]"),
    (
        re.compile(r"https://hooks\.slack\.com/services/[^\s'\"]+"),
        "https://hooks.slack.com/[REDACTED]",
    ),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[REDACTED]"),
    (re.compile(r"\bv1a?,[A-Za-z0-9+/=]{20,}"), "v1,[REDACTED_SIG]"),
)
_SENSITIVE_KEYS = frozenset(
    {"token", "authorization", "secret", "signature", "webhook_url", "headers", "password", "url"}
)


class Redactor:
    """A structlog processor that removes known secret values and secret-shaped strings."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()

    def add(self, values: Iterable[str | None]) -> None:
        """Register exact secret values (the token, webhook URLs) seen at start-up."""
        found = {value for value in values if value and len(value) >= 6}
        # Longest first, so a URL is replaced whole before a token inside it.
        self._secrets = tuple(sorted({*self._secrets, *found}, key=len, reverse=True))

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            for pattern, replacement in _PATTERNS:
                value = pattern.sub(replacement, value)
            return value
        if isinstance(value, dict):
            return {k: self._scrub_item(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def _scrub_item(self, key: Any, value: Any) -> Any:
        return REDACTED if str(key).lower() in _SENSITIVE_KEYS else self.scrub(value)

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        return {key: self._scrub_item(key, value) for key, value in event_dict.items()}


def _exception_processor(fmt: Literal["json", "console"]) -> Processor:
    if fmt == "json":
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        return structlog.processors.ExceptionRenderer(transformer)
    return structlog.processors.format_exc_info


def _shared(fmt: Literal["json", "console"], redactor: Redactor) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _exception_processor(fmt),
        redactor,
    ]


class _Lines:
    """The console renderer, except that an event carrying a ready `line` (an alert from the
    log sink) is printed as that line alone, its tag coloured when the stream shows colour."""

    def __init__(self, colours: bool) -> None:
        self.colours = colours
        self.fallback = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback, sort_keys=False, colors=colours
        )

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        line = event_dict.get("line")
        if not isinstance(line, str):
            return str(self.fallback(logger, name, event_dict))
        severity = event_dict.get("severity")
        if self.colours and severity in console.ANSI:
            return console.painted(line, Severity(severity))
        return line


def _drop_line(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    # JSON readers have the fields and the summary: the console line would only repeat them.
    event_dict.pop("line", None)
    return event_dict


def _renderer(fmt: Literal["json", "console"], colours: bool = False) -> list[Processor]:
    if fmt == "json":
        return [_drop_line, structlog.processors.JSONRenderer()]
    return [_Lines(colours)]


def configure(
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    *,
    stream: TextIO | None = None,
) -> Redactor:
    """Route structlog and stdlib logging through one redacting chain to `stream` (stderr),
    and return that chain's redactor: the service registers every secret it learns there.

    stderr for every command: stdout belongs to what a command prints (`once`'s report,
    `check-config`'s YAML), and container runtimes collect both streams alike.
    """
    out = stream or sys.stderr
    chosen: Literal["json", "console"] = (
        ("console" if out.isatty() else "json") if fmt == "auto" else fmt
    )
    # Colour only where a person sees it: a forced console format into a file stays plain.
    colours = out.isatty()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    redactor = Redactor()
    structlog.configure(
        processors=[*_shared(chosen, redactor), *_renderer(chosen, colours)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared(chosen, redactor)],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderer(chosen, colours),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # aiohttp's access log would print every scrape; the server disables it, this is belt and braces.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return redactor

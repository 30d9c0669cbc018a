"""Alert destinations: one class per kind of receiver, and what a delivery attempt returns.

They take plain values; `monitor.wiring` builds them from the configuration."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitor.sinks.alertmanager import AlertmanagerSink
from monitor.sinks.base import (
    Delivered,
    Digesting,
    Gone,
    Limits,
    Outcome,
    Rejected,
    Resending,
    RetryLater,
    Sink,
)
from monitor.sinks.log import LogSink
from monitor.sinks.slack import SlackSink
from monitor.sinks.teams import TeamsSink
from monitor.sinks.webhook import WebhookSink

if TYPE_CHECKING:
    from monitor.sinks.email import EmailSink, SmtpOptions

__all__ = [
    "AlertmanagerSink",
    "Delivered",
    "Digesting",
    "EmailSink",
    "Gone",
    "Limits",
    "LogSink",
    "Outcome",
    "Rejected",
    "Resending",
    "RetryLater",
    "Sink",
    "SlackSink",
    "SmtpOptions",
    "TeamsSink",
    "WebhookSink",
]


def __getattr__(name: str) -> Any:
    # The e-mail sink is imported when asked for: with it comes aiosmtplib, which a service
    # without an e-mail sink never needs (0.4 MB of a start's memory).
    if name in ("EmailSink", "SmtpOptions"):
        return getattr(importlib.import_module("monitor.sinks.email"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Alert destinations: one class per kind of receiver, and what a delivery attempt returns.

They take plain values; `monitor.wiring` builds them from the configuration."""

from __future__ import annotations

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
from monitor.sinks.email import EmailSink, SmtpOptions
from monitor.sinks.log import LogSink
from monitor.sinks.slack import SlackSink
from monitor.sinks.teams import TeamsSink
from monitor.sinks.webhook import WebhookSink

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

"""Alert destinations, built from settings."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.settings import SinkSettings
from monitor.sinks.alertmanager import AlertmanagerSink
from monitor.sinks.base import (
    Delivered,
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
from monitor.sinks.webhook import WebhookSink

__all__ = [
    "AlertmanagerSink",
    "Delivered",
    "Gone",
    "Limits",
    "LogSink",
    "Outcome",
    "Rejected",
    "Resending",
    "RetryLater",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "build_sinks",
]


def build_sinks(configs: Sequence[SinkSettings]) -> list[Sink]:
    """One Sink per configured entry; with none configured, alerts go to the log."""
    if not configs:
        return [LogSink()]
    return [_build(config) for config in configs]


def _limits(config: SinkSettings) -> Limits:
    return Limits(
        concurrency=config.effective_concurrency,
        rate=config.effective_rate,
        schedule=config.schedule(),
        breaker_failures=config.breaker_failures,
        breaker_cooldown=config.breaker_cooldown,
    )


def _build(config: SinkSettings) -> Sink:
    name, limits, timeout = config.name, _limits(config), config.timeout
    if config.type == "log":
        return LogSink(name, limits=limits)
    assert config.url is not None  # SinkSettings validation guarantees it
    url, fingerprint = config.url.get_secret_value(), config.fingerprint()
    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.type == "slack":
        return SlackSink(
            name,
            url=url,
            timeout=timeout,
            limits=limits,
            fingerprint=fingerprint,
            allow_private=config.allow_private,
        )
    if config.type == "alertmanager":
        return AlertmanagerSink(
            name,
            url=url,
            headers=headers,
            timeout=timeout,
            resend_interval=config.resend_interval,
            hold=config.hold,
            labels=config.alert_labels,
            limits=limits,
            fingerprint=fingerprint,
            allow_private=config.allow_private,
        )
    return WebhookSink(
        name,
        url=url,
        secrets=config.signing_secrets(),
        headers=headers,
        timeout=timeout,
        limits=limits,
        fingerprint=fingerprint,
        allow_private=config.allow_private,
    )

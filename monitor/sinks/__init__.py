"""Alert destinations, built from settings."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.settings import SinkSettings
from monitor.sinks.base import Delivered, Outcome, Rejected, RetryLater, Sink
from monitor.sinks.log import LogSink
from monitor.sinks.webhook import WebhookSink

__all__ = [
    "Delivered",
    "LogSink",
    "Outcome",
    "Rejected",
    "RetryLater",
    "Sink",
    "WebhookSink",
    "build_sinks",
]


def build_sinks(configs: Sequence[SinkSettings]) -> list[Sink]:
    """One Sink per configured entry; with none configured, alerts go to the log."""
    if not configs:
        return [LogSink()]
    return [_build(config) for config in configs]


def _build(config: SinkSettings) -> Sink:
    if config.type == "log":
        return LogSink(config.name)
    assert config.url is not None  # SinkSettings validation guarantees it
    return WebhookSink(
        config.name,
        url=config.url.get_secret_value(),
        secrets=[config.secret.get_secret_value()] if config.secret else [],
        headers={k: v.get_secret_value() for k, v in config.headers.items()},
        timeout=config.timeout,
    )

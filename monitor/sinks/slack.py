"""Slack incoming webhooks: one Block Kit message per event (or digest).

Slack allows about one message per second per webhook; the dispatcher paces this sink (its
Limits) together with every other sink entry that posts to the same URL, and pauses them on a
429's Retry-After. 404 is channel_not_found / no_service, 410 channel_is_archived; 400
invalid_payload and 403 action_prohibited are about one message (`sinks.chat`).
"""

from __future__ import annotations

from datetime import datetime

from monitor.core import digest, digest_messages, render
from monitor.core.events import Event
from monitor.sinks.base import SLACK
from monitor.sinks.chat import ChatSink, Message

__all__ = ["SlackSink"]


class SlackSink(ChatSink):
    def message(self, event: Event, now: datetime) -> Message:
        return render.slack_message(event, now, self.zone)

    def digest_message(self, found: digest.Group, now: datetime, status_url: str | None) -> Message:
        return digest_messages.slack_message(found, now, status_url, zone=self.zone)

    default_limits = SLACK

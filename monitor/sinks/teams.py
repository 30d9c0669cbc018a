"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"):
one Adaptive Card per event (or digest).

The URL carries its own signature (`sig=`). Workflows answer 202 once the flow run is queued;
a 404 means the flow was deleted or turned off (`sinks.chat` has the rest).
"""

from __future__ import annotations

from datetime import datetime

from monitor.core import digest, digest_messages, messages
from monitor.core.events import Event
from monitor.sinks.base import TEAMS
from monitor.sinks.chat import ChatSink, Message

__all__ = ["TeamsSink"]


class TeamsSink(ChatSink):
    def message(self, event: Event, now: datetime) -> Message:
        return messages.teams_message(event, now, self.zone)

    def digest_message(self, found: digest.Group, now: datetime, status_url: str | None) -> Message:
        return digest_messages.teams_message(found, now, status_url, zone=self.zone)

    default_limits = TEAMS

"""`spmon test-sink NAME`: one marked sample event through one configured sink, now.

It goes straight to the sink, not through the outbox: the state file is never opened (no
lock, so it works beside a running `spmon run`), nothing is retried or dead-lettered, and a
disabled sink is tried all the same: the point is to see what the receiver answers today.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import click

from monitor import aio, logs, wiring
from monitor.cli_common import CONFIG_OPTION, fail, load
from monitor.core.events import ALERT_TYPES, Event, EventType
from monitor.core.sample import sample_event
from monitor.settings import SinkSettings
from monitor.sinks import Delivered, Gone, Outcome, Rejected, RetryLater

__all__ = ["test_sink"]

_TYPES = [str(kind) for kind in EventType]


@click.command(name="test-sink")
@click.argument("name")
@click.option(
    "--type",
    "kind",
    type=click.Choice(_TYPES),
    default=str(EventType.REVIEW_OVERDUE),
    show_default=True,
    help="Event type of the sample.",
)
@CONFIG_OPTION
def test_sink(name: str, kind: str, config: Path | None) -> None:
    """Send a sample TEST event through sink NAME and print what the receiver answered.

    Exit 0 when delivered, 1 when not (retry, dead or disabled), 2 on a configuration error.
    """
    settings = load(config)
    redactor = logs.configure(settings.log.format, "warning")
    wiring.register_secrets(settings, redactor)
    found = {sink.name: sink for sink in settings.sinks}
    if name not in found:
        fail([f"no sink named {name!r} (configured: {', '.join(found) or 'none'})"])
    chosen = found[name]
    if chosen.type == "alertmanager" and kind not in ALERT_TYPES:
        fail([f"sink {name!r} is an Alertmanager sink: --type {' or '.join(sorted(ALERT_TYPES))}"])
    event_id, outcome = asyncio.run(_send(chosen, EventType(kind), settings.display.zone))
    click.echo(f"sink {name} ({chosen.type}): sent {kind} {event_id}: {describe(outcome)}")
    sys.exit(0 if isinstance(outcome, Delivered) else 1)


async def _send(config: SinkSettings, kind: EventType, zone: tzinfo) -> tuple[str, Outcome]:
    now = aio.SYSTEM.now()
    event = sample_event(kind, datetime.fromtimestamp(now, UTC), nonce=secrets.token_hex(8))
    (sink,) = wiring.build_sinks([config], zone=zone)
    try:
        return event.id, await sink.deliver(event, _body(event), now=now)
    finally:
        await sink.aclose()


def _body(event: Event) -> bytes:
    """The bytes a webhook sink signs and sends: what the outbox would have stored."""
    return json.dumps(event.to_wire(), separators=(",", ":")).encode()


def describe(outcome: Outcome) -> str:
    """What the dispatcher would make of this answer, in its words."""
    if isinstance(outcome, Delivered):
        return "delivered"
    if isinstance(outcome, RetryLater):
        after = f" (Retry-After {outcome.after:g}s)" if outcome.after is not None else ""
        return f"retry: {outcome.reason}{after}"
    if isinstance(outcome, Rejected):
        return f"dead: {outcome.reason}"
    assert isinstance(outcome, Gone)
    return f"disabled: {outcome.reason}"

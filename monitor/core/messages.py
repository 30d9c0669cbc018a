"""One event → a Microsoft Teams Adaptive Card, or an e-mail (subject, plain text, HTML).

Pure, like `render`: both are built from `render.view`, so a Teams card, a mail and a Slack
message say the same thing in the same words. `now` is when the message is sent; `zone` is
the display time zone (`display.timezone`), every time shown there with its abbreviation.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from monitor.core import render, timetext
from monitor.core.events import Event

__all__ = ["ADAPTIVE_CARD", "Mail", "mail", "message_id", "teams_message"]

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_CARD_VERSION = "1.4"  # what Teams renders for Workflows posts
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~])")
_SUBJECT_CHARS = 200
_ID_PART = re.compile(r"[^A-Za-z0-9_.-]")


def teams_message(event: Event, now: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    """A Workflows ("When a Teams webhook request is received") post: one message activity
    carrying one Adaptive Card, with the plain line as its summary for notifications."""
    shown = render.view(event, now, zone)
    body: list[dict[str, Any]] = [
        _block(f"{shown.title}: {shown.subject}", weight="Bolder", size="Medium"),
        _block(shown.headline),
    ]
    if shown.facts:
        facts = [{"title": _md(k), "value": _md(v)} for k, v in shown.facts]
        body.append({"type": "FactSet", "facts": facts})
    body.append(_block(_context(event, zone), size="Small", isSubtle=True))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": _CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if shown.link is not None:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open session", "url": shown.link}]
    return {
        "type": "message",
        "summary": render.text(event, now, zone),
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


def _context(event: Event, zone: tzinfo) -> str:
    return f"{event.type} · {event.id} · detected {timetext.when(event.observed_at, zone)}"


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _md(text), "wrap": True, **style}


def _md(value: str) -> str:
    """TextBlocks and facts are Markdown in Teams: API data and labels must stay text (no
    links, no emphasis), so the characters that open those are escaped."""
    return _MARKDOWN.sub(r"\\\1", value)


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str
    html: str


def mail(event: Event, now: datetime, *, zone: tzinfo = UTC, prefix: str = "") -> Mail:
    """A short subject (the title and whom it is about), the facts as a plain-text list, and
    the same as a small HTML table; every value is escaped for HTML."""
    shown = render.view(event, now, zone)
    subject = " ".join(part for part in (prefix, f"{shown.title}: {shown.subject}") if part)
    subject = subject.replace("\r", " ").replace("\n", " ")
    if len(subject) > _SUBJECT_CHARS:
        subject = subject[: _SUBJECT_CHARS - 1] + "…"
    context = _context(event, zone)
    lines = [shown.headline, ""]
    lines += [f"{key}: {value}" for key, value in shown.facts]
    if shown.link is not None:
        lines += ["", f"Open session: {shown.link}"]
    lines += ["", f"-- {context}"]
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in shown.facts
    )
    link = (
        f"<p><a href='{html.escape(shown.link, quote=True)}'>Open session</a></p>"
        if shown.link is not None
        else ""
    )
    page = (
        f"<html><body><h2>{html.escape(shown.title)}: {html.escape(shown.subject)}</h2>"
        f"<p>{html.escape(shown.headline)}</p><table>{rows}</table>{link}"
        f"<p style='color:#666;font-size:small'>{html.escape(context)}</p></body></html>"
    )
    return Mail(subject=subject, text="\n".join(lines) + "\n", html=page)


def message_id(event_id: str, domain: str) -> str:
    """The Message-ID of an event's mail: the same on every retry, so a mail store or a
    reader that de-duplicates by Message-ID shows a redelivery once."""
    local = _ID_PART.sub("", event_id) or "event"
    host = _ID_PART.sub("", domain) or "spmon.invalid"
    return f"<{local}@{host}>"

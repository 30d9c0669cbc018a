"""One digest group → a Slack message, a Teams card, a mail or a log line. Pure, like
`messages`: every item line is `render.text` of its event, so a digest says what the single
alerts would have said (its times in the display zone `zone`, with the zone's abbreviation),
and the counts come first. `status_url` is where "and N more" points (the status page's
overdue list), None when spmon has no address to give."""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime, tzinfo
from typing import Any

from monitor.core import digest, render
from monitor.core.messages import ADAPTIVE_CARD, Mail

__all__ = ["digest_id", "mail", "slack_message", "teams_message", "text"]

_HEADER_CHARS = 150


def digest_id(found: digest.Group) -> str:
    """The same for the same rows on every retry (a mail's Message-ID, a log line's id)."""
    text_ids = ",".join(str(row_id) for row_id in found.row_ids)
    return "dig_" + hashlib.sha256(text_ids.encode()).hexdigest()[:24]


def _lines(found: digest.Group, now: datetime, zone: tzinfo) -> list[str]:
    return [render.text(event, now, zone) for event in found.worst]


def _more(found: digest.Group, status_url: str | None) -> str | None:
    if not found.more:
        return None
    where = f": {status_url}" if status_url else " (see the status page)"
    return f"and {found.more} more{where}"


def text(
    found: digest.Group, now: datetime, status_url: str | None = None, *, zone: tzinfo = UTC
) -> str:
    """The log sink's digest: the title, then each item on its own line."""
    lines = _lines(found, now, zone)
    parts = [f"Digest — {digest.group_title(found)}", *(f"  {line}" for line in lines)]
    more = _more(found, status_url)
    return "\n".join([*parts, f"  {more}"] if more else parts)


def slack_message(
    found: digest.Group, now: datetime, status_url: str | None, *, zone: tzinfo = UTC
) -> dict[str, Any]:
    title = digest.group_title(found)
    items = "\n".join(f"• {_slack_escape(line)}" for line in _lines(found, now, zone))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(f"Digest — {title}", _HEADER_CHARS))},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(items, 2900) or "—"}},
    ]
    if found.more:
        more = f"and {found.more} more"
        said = f"<{status_url}|{more} on the status page>" if status_url else more
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": said}]})
    if status_url:
        button = {"type": "button", "text": _plain("Open status page"), "url": status_url}
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": f"Digest — {title}", "blocks": blocks}


def teams_message(
    found: digest.Group, now: datetime, status_url: str | None, *, zone: tzinfo = UTC
) -> dict[str, Any]:
    title = digest.group_title(found)
    body: list[dict[str, Any]] = [
        _block(f"Digest — {title}", weight="Bolder", size="Medium"),
        *(_block(f"• {line}") for line in _lines(found, now, zone)),
    ]
    more = _more(found, None)
    if more:
        body.append(_block(more, isSubtle=True))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if status_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Status page", "url": status_url}]
    return {
        "type": "message",
        "summary": f"Digest — {title}",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


def mail(
    found: digest.Group,
    now: datetime,
    status_url: str | None,
    *,
    zone: tzinfo = UTC,
    prefix: str = "",
) -> Mail:
    title = digest.group_title(found)
    subject = " ".join(part for part in (prefix, f"Digest — {title}") if part)
    subject = subject.replace("\r", " ").replace("\n", " ")[:200]
    lines = _lines(found, now, zone)
    more = _more(found, status_url)
    body = [*(f"- {line}" for line in lines), *([more] if more else [])]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    tail = ""
    if found.more:
        tail = f"<p>and {found.more} more"
        if status_url:
            tail += f" on <a href='{html.escape(status_url, quote=True)}'>the status page</a>"
        tail += "</p>"
    page = f"<html><body><h2>{html.escape(title)}</h2><ul>{items}</ul>{tail}</body></html>"
    return Mail(subject=subject, text="\n".join([title, "", *body]) + "\n", html=page)


def _block(value: str, **style: Any) -> dict[str, Any]:
    escaped = value.translate({ord(c): f"\\{c}" for c in "\\`*_[]<>~"})
    return {"type": "TextBlock", "text": escaped, "wrap": True, **style}


def _plain(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value, "emoji": True}


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"

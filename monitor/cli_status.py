"""`spmon status`, `spmon sessions`, `spmon history`: what the read model shows, from the
running service's API when it answers (http.listen, with admin.token when reads need it),
else read-only from the state file (no lock: beside a stopped or a running service alike).

Both ways yield the same JSON documents (`web.encode`), so `--json` prints what the API
answers and the tables are drawn from that one document. Stderr says which was used.
Exit codes follow `spmon once`: 0 fine, 1 a review is overdue (status) or no such session
(history), 2 configuration or usage error, 3 unknown (nothing could be read, or sessions
not yet seen leave the overdue count a floor).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from multidict import MultiDict
from tabulate import tabulate

from monitor import views
from monitor.cli_common import CONFIG_OPTION, DB_OPTION, fail, load, run_async
from monitor.core.phase import Phase
from monitor.core.views import Sort
from monitor.settings import Settings
from monitor.store import describe, exists
from monitor.web import encode, params

__all__ = ["history", "sessions", "status"]

Doc = dict[str, Any]
EXIT_OVERDUE, EXIT_NOT_FOUND, EXIT_UNKNOWN = 1, 1, 3
TIMEOUT = 3.0
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's document.")


class NotFound(Exception):
    pass


def _api_base(settings: Settings) -> str | None:
    if not settings.http.listen:
        return None
    host, port = settings.http.host_port
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104  # mapped, not bound
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/api/v1"


def _from_api(settings: Settings, path: str) -> Doc | None:
    """The API's answer, None when no service answers (or it refused us: we fall back)."""
    base = _api_base(settings)
    if base is None:
        return None
    request = urllib.request.Request(base + path)  # noqa: S310  # our own configured listener
    if token := settings.admin.secret():
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310  # as above
            doc: Doc = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound from None
        if exc.code in {400, 422}:
            body = json.load(exc)
            fail([f"{body.get('field', 'request')}: {body.get('error', 'invalid')}"])
        click.echo(
            f"spmon: the service at {base} answered {exc.code}; reading the state file", err=True
        )
        return None
    except (OSError, ValueError):
        return None
    click.echo(f"spmon: from the running service at {base}", err=True)
    return doc


def _read(
    config: Path | None,
    db: Path | None,
    path: str,
    offline: Callable[[views.ReadModel], Awaitable[Doc | None]],
) -> Doc:
    settings = load(config)
    if db is None:
        try:
            doc = _from_api(settings, path)
        except NotFound:
            fail(["no such session"], EXIT_NOT_FOUND)
        if doc is not None:
            return doc
    state = db or settings.state.where()
    if not exists(state):
        fail(
            [f"UNKNOWN: no running service answered and there is no state file at {state}"],
            EXIT_UNKNOWN,
        )
    what = "file" if isinstance(state, Path) else "database"
    click.echo(f"spmon: from the state {what} {describe(state)} (read-only)", err=True)

    async def read() -> Doc | None:
        async with views.offline(state, sinks=[s.name for s in settings.sinks] or ["log"]) as model:
            return await offline(model)

    found = run_async(read())
    if found is None:
        fail(["no such session"], EXIT_NOT_FOUND)
    return found


def _print(doc: Doc, as_json: bool, table: Callable[[Doc], Iterable[str]]) -> None:
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in table(doc):
            click.echo(line)


@click.command()
@CONFIG_OPTION
@DB_OPTION
@JSON_OPTION
def status(config: Path | None, db: Path | None, as_json: bool) -> None:
    """Counts, overdue reviews, sinks and API health. Exit 0 fine, 1 a review is overdue,
    3 unknown (nothing to read, or sessions not yet seen)."""

    async def offline(model: views.ReadModel) -> Doc:
        return encode.summary(await model.summary())

    doc = _read(config, db, "/summary", offline)
    _print(doc, as_json, _summary_lines)
    if doc["overdue"]:
        sys.exit(EXIT_OVERDUE)
    sys.exit(0 if doc["overdue_known"] else EXIT_UNKNOWN)


def _summary_lines(doc: Doc) -> Iterable[str]:
    floor = "" if doc["overdue_known"] else f" (at least: {doc['unseen']} not yet seen)"
    yield f"watched {doc['watched']}, overdue {doc['overdue']}{floor}, pending review {doc['pending']}, due within 24 h {doc['due_soon']}"
    if doc["oldest_overdue_seconds"] is not None:
        yield f"most overdue: {_late(doc['oldest_overdue_seconds'])} late"
    yield "by status: " + (
        ", ".join(f"{k} {v}" for k, v in sorted(doc["by_status"].items())) or "-"
    )
    if doc["by_phase"] is not None:
        yield "by phase: " + ", ".join(f"{k} {v}" for k, v in doc["by_phase"].items())
    api = doc["api"]
    if doc["running"]:
        yield f"API: auth failing {api['auth_failing']}, breaker open {api['breaker_open']}, last success {api['last_success'] or '-'}, token expiry {api['token_expiry'] or '-'}"
    else:
        yield "API, phases and sink states: unknown (no running service answered)"
    rows = [(s["name"], s["state"], s["pending"], s["dead"]) for s in doc["sinks"]]
    yield tabulate(rows, headers=("SINK", "STATE", "PENDING", "DEAD"), tablefmt="plain")


def _late(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    return (
        f"{minutes // 1440}d{minutes // 60 % 24}h"
        if minutes >= 1440
        else f"{minutes // 60}h{minutes % 60:02d}m"
    )


@click.command()
@CONFIG_OPTION
@DB_OPTION
@JSON_OPTION
@click.option("--overdue", is_flag=True, help="Only overdue reviews.")
@click.option("--due-within", default=None, help="Only reviews due within this, e.g. 24h.")
@click.option("--label", "labels", multiple=True, help="key=value (repeatable; all must hold).")
@click.option("--phase", type=click.Choice([str(p) for p in Phase]), default=None)
@click.option("--status", "status_", default=None, help="Session status (case-insensitive).")
@click.option("--text", "-q", default=None, help="Substring of a SID or label value.")
@click.option(
    "--sort",
    type=click.Choice([str(s) for s in Sort]),
    default=str(Sort.LATENESS),
    show_default=True,
)
@click.option("--limit", default=100, show_default=True)
@click.option("--offset", default=0, show_default=True)
def sessions(config: Path | None, db: Path | None, as_json: bool, **opts: Any) -> None:
    """Watched sessions, filtered and sorted (most overdue first by default)."""
    query = _query(opts)
    try:
        parsed = params.session_query(query)
    except params.Invalid as exc:
        fail([f"sessions: --{exc.field.replace('_', '-')}: {exc.message}"])

    async def offline(model: views.ReadModel) -> Doc:
        return encode.page(await model.sessions(parsed))

    doc = _read(config, db, "/sessions?" + urllib.parse.urlencode(list(query.items())), offline)
    _print(doc, as_json, _session_lines)


def _query(opts: dict[str, Any]) -> MultiDict[str]:
    query: MultiDict[str] = MultiDict()
    if opts["overdue"]:
        query.add("overdue", "true")
    for name, key in (
        ("due_within", "due_within"),
        ("phase", "phase"),
        ("status_", "status"),
        ("text", "q"),
    ):
        if opts[name] is not None:
            query.add(key, opts[name])
    for label in opts["labels"]:
        name, sep, value = label.partition("=")
        if not (sep and name):
            fail(["sessions: --label expects key=value"])
        query.add("label", f"{name}:{value}")
    query.add("sort", opts["sort"])
    query.add("limit", str(opts["limit"]))
    query.add("offset", str(opts["offset"]))
    return query


def _session_lines(doc: Doc) -> Iterable[str]:
    rows = [_session_row(item) for item in doc["items"]]
    header = ("SESSION", "STATUS", "PHASE", "REVIEW BY", "OVERDUE", "LATE", "LABELS")
    yield tabulate(rows, headers=header, tablefmt="plain")
    shown = len(doc["items"])
    yield f"{shown} of {doc['total']} sessions" + (
        f" (from {doc['offset']})" if doc["offset"] else ""
    )


def _flag(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _session_row(item: Doc) -> Sequence[str]:
    labels = ",".join(f"{k}={v}" for k, v in item["labels"].items())
    return (
        item["session_sid"],
        item["status"] or ("?" if not item["seen"] else "-"),
        item["phase"] or "?",
        item["review_by_date"] or "-",
        _flag(item["overdue"]),
        _late(item["lateness_seconds"]),
        labels,
    )


@click.command()
@CONFIG_OPTION
@DB_OPTION
@JSON_OPTION
@click.argument("session_sid")
def history(config: Path | None, db: Path | None, as_json: bool, session_sid: str) -> None:
    """One session's transitions, oldest first, and each delivery per sink. Exit 1: the
    state file holds nothing of it."""
    if params.sid(session_sid) is None:
        fail(["history: SESSION_SID must be ES followed by 32 hex digits"])

    async def offline(model: views.ReadModel) -> Doc | None:
        found = await model.history(session_sid)
        return None if found is None else encode.history(found)

    doc = _read(config, db, f"/sessions/{session_sid}/history", offline)
    _print(doc, as_json, _history_lines)


def _history_lines(doc: Doc) -> Iterable[str]:
    if (s := doc["session"]) is not None:
        yield f"{s['session_sid']}  status {s['status'] or '?'}  review by {s['review_by_date'] or '-'}  overdue {_flag(s['overdue'])}"
    rows = []
    for t in doc["transitions"]:
        change = f"{t['previous']} -> {t['current']}" if t["field"] else (t["message"] or "")
        sent = ", ".join(f"{d['sink']}:{d['state']}/{d['attempts']}" for d in t["deliveries"])
        rows.append((t["observed_at"], t["type"], t["field"] or "", change, sent or "-"))
    header = ("OBSERVED", "EVENT", "FIELD", "CHANGE", "DELIVERIES (sink:state/attempts)")
    yield tabulate(rows, headers=header, tablefmt="plain")
    for d in doc["deliveries"]:
        yield f"(transition no longer kept) {d['event_type']} {d['sink']}:{d['state']}/{d['attempts']}"

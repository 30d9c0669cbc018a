"""/api/v1's watch and outbox routes: list, add, change, remove, import; pending and dead
deliveries and their retry.

Watches added here have source "api": like `spmon watch add`'s "cli" ones, no configured
source lists them, so no reload or restart removes them (only DELETE or `spmon watch rm`
does), and they are applied to the running poller at once, as discovery's finds are.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from monitor import watchsync
from monitor.core import watchcsv
from monitor.core.outbox import OutboxState
from monitor.web import encode, params
from monitor.web.auth import problem
from monitor.web.backend import BACKEND, Backend, respond

__all__ = ["add_routes"]
MAX_IDS = 1000
LISTED = (OutboxState.PENDING, OutboxState.DEAD)


def _backend(request: web.Request) -> Backend:
    return request.app[BACKEND]


async def _json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise params.Invalid("Content-Type", "expected application/json", 415)
    try:
        return json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        raise params.Invalid("body", "not valid JSON") from None


async def _list_watches(request: web.Request) -> web.Response:
    offset, limit = params.paging(request.query, default=MAX_IDS)
    stored = await _backend(request).watching.store.active_watches()
    return respond(request, encode.watches(stored, offset=offset, limit=limit))


async def _add_watch(request: web.Request) -> web.Response:
    added = params.watch(await _json(request), watchsync.API)
    changes = await _backend(request).watching.add([added])
    created = bool(changes.added)
    return respond(
        request, {"created": created, "watch": encode.watch(added)}, 201 if created else 200
    )


async def _active(request: web.Request, sid: str) -> Any:
    stored = await _backend(request).watching.store.active_watches()
    return next((w for key, w in stored.items() if key.session_sid == sid), None)


def _sid(request: web.Request) -> str:
    sid = params.sid(request.match_info["sid"])
    if sid is None:
        raise params.Invalid("sid", "not a session SID (ES + 32 hex digits)")
    return sid


async def _patch_watch(request: web.Request) -> web.Response:
    sid = _sid(request)
    body = await _json(request)
    if not isinstance(body, dict):
        raise params.Invalid("body", "expected a JSON object", 422)
    if extra := sorted(set(body) - {"labels", "interval"}):
        raise params.Invalid(extra[0], "unknown field", 422)
    held = await _active(request, sid)
    if held is None:
        return problem(404, "not watched")
    changed = dataclasses.replace(held, source=watchsync.API)
    if "labels" in body:
        changed = dataclasses.replace(changed, labels=params.labels(body["labels"]))
    if "interval" in body:
        changed = dataclasses.replace(changed, interval=params.interval(body["interval"]))
    await _backend(request).watching.add([changed])
    return respond(request, {"watch": encode.watch(changed)})


async def _remove_watch(request: web.Request) -> web.Response:
    held = await _backend(request).watching.remove(_sid(request))
    if held is None:
        return problem(404, "not watched")
    return respond(request, {"removed": encode.watch(held)})


async def _import_watches(request: web.Request) -> web.Response:
    if request.content_type not in {"text/csv", "text/plain"}:
        raise params.Invalid("Content-Type", "expected text/csv", 415)
    try:
        text = (await request.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise params.Invalid("body", "not UTF-8 text") from None
    parsed = watchcsv.parse(text, watchsync.API)
    if parsed.problems:  # all or nothing, like `spmon watch import`
        return problem(422, "the CSV has problems", field="body", problems=list(parsed.problems))
    changes = await _backend(request).watching.add(list(parsed.watches.values()))
    same = len(parsed.watches) - len(changes.added) - len(changes.changed)
    doc = {"added": len(changes.added), "updated": len(changes.changed), "same": same}
    return respond(request, doc)


async def _outbox(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in {str(s) for s in LISTED}:
        raise params.Invalid("state", "expected pending or dead")
    _, limit = params.paging(request.query)
    sink = request.query.get("sink")
    admin = _backend(request).outbox
    found = []
    for one in (OutboxState(state),) if state else LISTED:
        found += await admin.entries(state=one, sink=sink, limit=limit)
    found.sort(key=lambda entry: entry.id)
    return respond(request, {"items": [encode.outbox_entry(entry) for entry in found]})


def _retry_request(body: Any) -> tuple[list[int], str | None, bool, bool]:
    if not isinstance(body, dict):
        raise params.Invalid("body", "expected a JSON object", 422)
    if extra := sorted(set(body) - {"ids", "sink", "all", "pending"}):
        raise params.Invalid(extra[0], "unknown field", 422)
    ids, sink = body.get("ids", []), body.get("sink")
    if not (isinstance(ids, list) and len(ids) <= MAX_IDS):
        raise params.Invalid("ids", f"expected a list of at most {MAX_IDS} row ids", 422)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids):
        raise params.Invalid("ids", "expected positive integers", 422)
    if sink is not None and not isinstance(sink, str):
        raise params.Invalid("sink", "expected a sink name", 422)
    everything, pending = body.get("all", False), body.get("pending", False)
    if not (isinstance(everything, bool) and isinstance(pending, bool)):
        raise params.Invalid(
            "all" if not isinstance(everything, bool) else "pending", "expected true or false", 422
        )
    if not (ids or sink or everything):
        raise params.Invalid("ids", "name ids, sink or all", 422)
    if pending and ids:
        raise params.Invalid("ids", "pending retries take sink or all, not ids", 422)
    return ids, sink, everything, pending


async def _retry(request: web.Request) -> web.Response:
    ids, sink, _, pending = _retry_request(await _json(request))
    backend = _backend(request)
    now = backend.views.clock.now()
    if pending:
        count = await backend.outbox.make_due(sink=sink, now=now)
    elif ids:
        count = await backend.outbox.requeue_rows(ids, now=now)
    else:
        count = await backend.outbox.requeue_dead(sink=sink, now=now)
    backend.wake()
    return respond(request, {"requeued": count, "pending": pending})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/watches", _list_watches)
    router.add_post("/watches", _add_watch)
    router.add_post("/watches/import", _import_watches)
    router.add_patch("/watches/{sid}", _patch_watch)
    router.add_delete("/watches/{sid}", _remove_watch)
    router.add_get("/outbox", _outbox)
    router.add_post("/outbox/retry", _retry)

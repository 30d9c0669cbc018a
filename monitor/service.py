"""The composition root: settings → adapters → root tasks; signals; ordered shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector

from monitor import aio, replicas, server, watchsync, wiring
from monitor.api import ApiClient
from monitor.core.jwt_expiry import jwt_expiry
from monitor.discoverer import Discoverer
from monitor.dispatcher import Dispatcher
from monitor.logs import Redactor
from monitor.metrics import Metrics
from monitor.poller import Poller, WatchSet
from monitor.reload import Reloader
from monitor.resender import Resender
from monitor.retention import PURGE_BATCH, Retention, purge_expired
from monitor.settings import Settings
from monitor.sinks import Sink
from monitor.store import Committer, Store, open_store, read_state
from monitor.views import ReadModel, Runtime
from monitor.watching import Watching
from monitor.web import api as web_api
from monitor.web.auth import Auth
from monitor.web.backend import Backend

__all__ = [
    "PURGE_BATCH",
    "Service",
    "ServiceFailed",
    "build",
    "purge_expired",
    "run",
]

log = structlog.get_logger("spmon.service")

LIVENESS_WINDOW = 30.0
"""A loop that has not ticked for this long is stuck (they tick at least every second)."""


class ServiceFailed(RuntimeError):
    """A root task crashed or ended early; the service stopped rather than run half-blind."""


@dataclass
class Service:
    """The wired-up adapters of one process; built and torn down by `build`."""

    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    watchset: WatchSet
    store: Store
    committer: Committer
    api: ApiClient
    sinks: Sequence[Sink]
    poller: Poller
    dispatcher: Dispatcher
    resender: Resender
    watching: Watching
    views: ReadModel
    """The read model (status page, API, CLI) over its own read-only connection."""
    retention: Retention
    address: str | None = None
    clock: aio.Clock = aio.SYSTEM
    """The one clock every loop of this process reads and sleeps on."""
    fleet: replicas.Fleet = field(default_factory=replicas.Fleet)
    """This replica's shard leases (PostgreSQL), or the only process (SQLite)."""

    def live(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock.now()
        beats = {"poller": self.poller.heartbeat, "dispatcher": self.dispatcher.heartbeat}
        stale = [name for name, beat in beats.items() if now - beat > LIVENESS_WINDOW]
        return not stale, {"stale_loops": stale}

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        try:
            await asyncio.wait_for(self.store.ping(), timeout=2.0)
        except Exception:
            return False, {"store": "unreachable"}
        # Every watch had its first turn, whatever its outcome: readiness must not depend on
        # the API being up (a session held back while the API is down has had its turn).
        remaining = self.watchset.first_cycle_remaining
        return remaining == 0, {"store": "ok", "first_cycle_remaining": remaining}


@contextlib.asynccontextmanager
async def build(
    settings: Settings,
    *,
    serve_http: bool = True,
    redactor: Redactor | None = None,
    clock: aio.Clock = aio.SYSTEM,
) -> AsyncIterator[Service]:
    """Open every resource in order and close it in reverse, whatever happens in between.

    `redactor` is the one in the log chain (`logs.configure` returns it): every secret the
    service learns, at start or when the token file is read again, is registered there.
    """
    redactor = redactor or Redactor()
    wiring.register_secrets(settings, redactor)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    sinks_names = [s.name for s in settings.sinks] or ["log"]
    metrics = Metrics(registry, sinks=sinks_names)
    metrics.token_expiry.set(jwt_expiry(settings.token()) or 0)
    metrics.reload_ok.set(1)
    metrics.reload_time.set(clock.now())
    watchset = WatchSet(clock, by_labels=wiring.label_buckets(settings))
    metrics.watch_set(watchset)
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(settings.state.where()))
        oauth = await stack.enter_async_context(
            wiring.credentials(settings, redactor, metrics, clock=clock)
        )
        api = await stack.enter_async_context(
            ApiClient(
                wiring.client_options(settings),
                on_response=metrics.api_response,
                clock=clock,
                credentials=oauth,
            )
        )
        fleet = await stack.enter_async_context(replicas.join(settings, store, api))
        metrics.fleet(fleet.shards, fleet.leading)
        sinks = wiring.build_sinks(settings.sinks, zone=settings.display.zone)
        for sink in sinks:
            stack.push_async_callback(sink.aclose)
        readers = wiring.url_readers(settings, redactor)
        desired = await watchsync.read(settings.source_names(), settings.listings(), readers)
        active = (await watchsync.sync(store, desired, now=clock.now())).active
        del desired
        dispatcher = Dispatcher(
            store=store,
            sinks=sinks,
            metrics=metrics,
            lease=wiring.lease(settings),
            clock=clock,
            plans=wiring.plans(settings),
            first_cycle=lambda: watchset.first_cycle_remaining == 0,
            leading=fleet.leading,
        )
        resender = Resender(
            store=store,
            lanes=dispatcher.lanes,
            ready=dispatcher.restored,
            clock=clock,
            watched=lambda key: watching.watched(key),
        )
        committer = await stack.enter_async_context(Committer(store))
        poller = Poller(
            api=api,
            store=store,
            watchset=watchset,
            committer=committer,
            metrics=metrics,
            router=wiring.router(settings),
            options=wiring.poller_options(settings, deployment=store.deployment_id),
            on_commit=dispatcher.notify,
            token_source=wiring.token_source(settings, redactor),
            clock=clock,
        )
        watching = Watching(
            settings,
            poller.step,
            store=store,
            readers=readers,
            readers_for=lambda new: wiring.url_readers(new, redactor),
            clock=clock,
        )
        watching.mine = fleet.mine
        wanted = watching.wanted(active.values())
        # The stored watches go before the restore builds 100,000 snapshots on top of them.
        del active
        await poller.restore(wanted)
        del wanted
        reader = await stack.enter_async_context(read_state(settings.state.where()))
        runtime = Runtime(
            watchset, dispatcher.lanes, poller.step.gate, registry, lambda: committer.commits
        )
        views = ReadModel(reader, clock=clock, runtime=runtime, sinks=sinks_names)
        retention = Retention(
            store,
            metrics,
            outbox=settings.history.deliveries(settings.outbox),
            history=settings.history.retention,
            clock=clock,
            leading=fleet.leading,
        )
        # The watch set is long-lived; moving them out of the collector's reach
        # keeps full collections from walking 100,000 sessions' objects again and again.
        gc.collect()
        gc.freeze()
        service = Service(
            settings,
            registry,
            metrics,
            watchset,
            store,
            committer,
            api,
            sinks,
            poller,
            dispatcher,
            resender,
            watching,
            views,
            retention,
            clock=clock,
            fleet=fleet,
        )
        if serve_http and settings.http.listen:
            from monitor.web import page  # and Jinja2 (1.5 MB): only the status page needs it

            host, port = settings.http.host_port
            app = server.make_app(registry, server.Probes(service.live, service.ready))
            options = page.PageOptions(settings.display.zone, settings.http.page_refresh)
            page.add_page_routes(app, views, options, _auth(settings))
            app.add_subapp(
                web_api.PREFIX, web_api.make_app(_backend(service, redactor), _auth(settings))
            )
            service.address = await stack.enter_async_context(server.serve(app, host, port))
            log.info("http.listening", address=service.address)
        yield service


def _backend(service: Service, redactor: Redactor) -> Backend:
    return Backend(
        service.views, service.watching, service.store, redactor, service.dispatcher.notify
    )


def _auth(settings: Settings) -> Auth:
    return Auth(settings.admin.secret(), open_reads=settings.admin.read == "open")


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    grace: float = 20.0,
    on_ready: Callable[[Service], None] | None = None,
    redactor: Redactor | None = None,
    reloadable: bool = False,
    config: Path | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or `stop`): poll and deliver, then shut down in order —
    stop intake, finish in-flight polls, one last outbox drain, close the store.

    `reloadable` (what `spmon run` asks for) reloads `config` on SIGHUP and when it or a
    watch file changes."""
    stop = stop or asyncio.Event()
    async with build(settings, redactor=redactor) as service:
        _install_signals(stop)
        if capacity := settings.capacity_warning(service.watchset.demand()):
            log.warning("config.capacity", message=capacity)
        log.info("service.started", watched=len(service.watchset.entries), sinks=len(service.sinks))
        if on_ready is not None:
            on_ready(service)
        discoverer = Discoverer(
            api=service.api,
            sources=wiring.list_sources(settings),
            on_walk=service.watching.found,
            clock=service.clock,
            leading=service.fleet.leading,
        )
        reloader = None
        if reloadable:

            async def apply(new: Settings) -> dict[str, Any]:
                summary = await service.watching.apply(new)
                discoverer.reconfigure(wiring.list_sources(new))
                return summary

            reloader = Reloader(
                config=config,
                settings=settings,
                apply=apply,
                metrics=service.metrics,
                clock=service.clock,
            )
        try:
            await _run_loops(service, stop, grace, reloader, discoverer)
        except BaseExceptionGroup as group:
            failed = "; ".join(str(exc) or type(exc).__name__ for exc in group.exceptions)
            raise ServiceFailed(f"stopped: {failed}") from group
        log.info("service.draining")
        await service.dispatcher.drain(deadline=min(10.0, grace / 2))
    log.info("service.stopped")


async def _run_loops(
    service: Service,
    stop: asyncio.Event,
    grace: float,
    reloader: Reloader | None,
    discoverer: Discoverer,
) -> None:
    async with asyncio.TaskGroup() as group:
        if reloader is not None:
            group.create_task(aio.guarded("reload", reloader.run(stop), stop=stop))
        # Runs with no lists too: a reload may configure some.
        group.create_task(aio.guarded("discovery", discoverer.run(stop), stop=stop))
        poller = group.create_task(aio.guarded("poller", service.poller.run(stop), stop=stop))
        dispatch = group.create_task(
            aio.guarded("dispatcher", service.dispatcher.run(stop), stop=stop)
        )
        resend = group.create_task(aio.guarded("resender", service.resender.run(stop), stop=stop))
        group.create_task(aio.guarded("committer", service.committer.watch(stop), stop=stop))
        group.create_task(_shutdown_deadline(stop, (poller, dispatch, resend), grace))
        group.create_task(aio.guarded("retention", service.retention.run(stop), stop=stop))
        if service.fleet.leaser is not None:
            follow = service.fleet.follow(service.watching, service.api, stop)
            group.create_task(aio.guarded("shards", follow, stop=stop))
            group.create_task(_leave_after(poller, service.fleet))


async def _leave_after(poller: asyncio.Task[None], fleet: replicas.Fleet) -> None:
    """Once the last poll has committed, the shards go to the peers: not after the outbox
    drain and the deliveries in flight (seconds), which need none of them."""
    await asyncio.wait([poller])
    await fleet.leave()


async def _shutdown_deadline(
    stop: asyncio.Event, tasks: Sequence[asyncio.Task[None]], grace: float
) -> None:
    await stop.wait()
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        log.warning("service.cancel_straggler", task=task.get_name(), grace=grace)
        task.cancel(msg="shutdown deadline passed")


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            # A second signal means "now": pending outbox rows are safe in the store.
            log.warning("service.forced_exit", signal=signal.Signals(signum).name)
            os._exit(130)
        log.info("service.stopping", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

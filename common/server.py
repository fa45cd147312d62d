"""The one server factory of the mesh, on ``grpc.aio``: health, reflection, interceptor, drain.

Every service (and the gateway's reflection server) is a :class:`MeshServer` built by
:func:`create_server` and run by :func:`serve`. A server, its background work (relays,
followers, housekeeping) and its streams all live on one event loop; blocking work goes to the
server's :class:`common.blocking.Blocking` pool. Build a server inside the loop that runs it:
``grpc.aio`` objects belong to the loop they were made in.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common import tracing
from common.auth import TokenVerifier
from common.blocking import Blocking
from common.config import RuntimeSettings
from common.denials import DenialLog, Report
from common.interceptors import MeshInterceptor, Policy
from common.logs import configure_logging
from common.metrics import Metrics, MetricsEndpoint
from common.status import Describe, no_details
from common.tickets import TicketBook
from common.tls import MutualTls

log = logging.getLogger("mesh.server")

S = TypeVar("S")

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_metadata_size", 64 * 1024),
    ("grpc.absolute_max_metadata_size", 64 * 1024),
    ("grpc.so_reuseport", 0),
)
"""Keepalive lets long-lived streams notice a dead peer; no SO_REUSEPORT so a taken port fails.

The metadata limit is one number: gRPC's defaults refuse metadata past 16 KiB and, between
8 and 16 KiB, refuse a growing share of calls at random (RESOURCE_EXHAUSTED, which REST
clients see as 429 and retry). Envoy forwards a REST call's URL as a header, so a long
filter failed now and then. Envoy refuses request headers past 32 KiB itself (431), and what
it forwards stays under this limit.
"""

Hook = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class ServiceRegistration(Generic[S]):
    """A servicer to add, under its full service name (used for health and reflection)."""

    name: str
    add: Callable[[S, grpc.aio.Server], None]
    """The generated ``add_<Service>Servicer_to_server``."""
    servicer: S


class MeshServer:
    """A bound server with its health, its background work and what to run when it stops."""

    def __init__(
        self,
        *,
        server: grpc.aio.Server,
        port: int,
        health: health.aio.HealthServicer,
        interceptor: MeshInterceptor,
        service_names: tuple[str, ...],
        grace_seconds: float,
        blocking: Blocking,
        metrics: Metrics,
        metrics_address: str = "",
        drain_notice_seconds: float = 0.0,
        tls: MutualTls | None = None,
        health_server: grpc.aio.Server | None = None,
        health_port: int = 0,
    ) -> None:
        self.server = server
        self.port = port
        self.tls = tls
        """The server's mutual TLS, also what the channels its components open present."""
        self._health_server = health_server
        self.health_port = health_port
        """Where health alone is served in plaintext (0 when it is not)."""
        self.health = health
        self.service_names = service_names
        self.grace_seconds = grace_seconds
        self.drain_notice_seconds = drain_notice_seconds
        self.blocking = blocking
        self._interceptor = interceptor
        self.metrics = metrics
        """The server's registry; components add what they measure with ``metrics.sample``."""
        self._metrics_address = metrics_address
        self._metrics_endpoint = MetricsEndpoint(metrics, blocking)
        self.background: list[Callable[[], Awaitable[None]]] = []
        """Work that runs while the server does (relays, followers); cancelled at stop."""
        self.on_drain: list[Hook] = []
        """Run when draining starts, while in-flight RPCs may still finish: ends long-lived
        streams (subscriptions) that would otherwise hold the drain for the whole grace period."""
        self.on_stop: list[Hook] = []
        """Run, last added first, once no RPC and no background work is left."""
        self.readiness: Callable[[], Awaitable[object]] | None = None
        """Returns once a dependency is ready (e.g. the revocation view); until then health
        reports NOT_SERVING so probes and Envoy send no traffic yet."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stopped = asyncio.Event()

    def open_streams(self, method: str) -> int:
        """How many calls of a streaming method (``/pkg.Service/Method``) are open now."""
        return self._interceptor.open_streams(method)

    @property
    def metrics_port(self) -> int:
        """Where ``/metrics`` is served (0 when it is not)."""
        return self._metrics_endpoint.port

    async def start(self) -> None:
        await self.server.start()
        if self._health_server is not None:
            await self._health_server.start()
        if self._metrics_address:
            await self._metrics_endpoint.start(self._metrics_address)
        for work in self.background:
            self._tasks.append(asyncio.create_task(_logged(work), name=_name(work)))
        if self.readiness is None:
            await self._mark_serving()
            return
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info("waiting until ready", extra={"port": self.port})
        self._tasks.append(asyncio.create_task(self._await_ready(self.readiness)))

    async def _set_health(self, status: int) -> None:
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def _mark_serving(self) -> None:
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"port": self.port, "services": list(self.service_names)})

    async def _await_ready(self, readiness: Callable[[], Awaitable[object]]) -> None:
        await readiness()
        if not self._stopping:
            await self._mark_serving()

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain in-flight RPCs for the grace period, then release all."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        await self.health.enter_graceful_shutdown()
        if grace is None and self.drain_notice_seconds > 0:
            # Still serving, but reporting NOT_SERVING: the balancer moves calls elsewhere
            # before the server refuses them (a call racing a stopping server is CANCELLED).
            await asyncio.sleep(self.drain_notice_seconds)
        draining = asyncio.create_task(
            self.server.stop(self.grace_seconds if grace is None else grace)
        )
        await _run_all(self.on_drain)
        await draining
        if self._health_server is not None:
            await self._health_server.stop(None)
        await self._metrics_endpoint.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await _run_all(reversed(self.on_stop))
        await asyncio.to_thread(self.blocking.close)
        log.info("stopped", extra={"port": self.port})
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _name(work: Callable[[], Awaitable[None]]) -> str:
    return getattr(work, "__qualname__", repr(work))


async def _logged(work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background work failed", extra={"work": _name(work)})


async def _run_all(hooks: Iterable[Hook]) -> None:
    for hook in hooks:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("error while stopping")


def add_generic_handler(handler: grpc.GenericRpcHandler, server: grpc.aio.Server) -> None:
    """Add methods without a generated servicer (recorded answers, test handlers)."""
    server.add_generic_rpc_handlers((handler,))


def create_server(
    address: str,
    *,
    domain: str,
    services: Sequence[ServiceRegistration[Any]],
    policies: Mapping[str, Policy],
    verifier: TokenVerifier | None,
    settings: RuntimeSettings,
    blocking: Blocking,
    reflection_pool: descriptor_pool.DescriptorPool | None = None,
    described: Sequence[str] = (),
    error_details: Describe = no_details,
    report_denial: Report | None = None,
    tickets: TicketBook | None = None,
) -> MeshServer:
    """Build a server bound to ``address`` (``host:0`` picks a free port, as tests do).

    ``domain`` goes into every ErrorInfo; ``policies`` maps full method names to who may call
    them, and a method without a policy is refused. ``blocking`` is the pool the servicers
    hop to; the server closes it when it stops. With ``reflection_pool``, reflection also
    describes the ``described`` services from it (the gateway's reflection server).
    ``error_details`` turns the domain objects errors carry into messages of the API.
    ``report_denial`` records the calls refused for who made them, through a
    :class:`DenialLog` over ``settings.denial_window_seconds`` that runs with the server and
    reports what it still counts when the server drains.
    ``tickets`` redeems the tickets of methods whose policy accepts one.
    ``GET /metrics`` is served at ``settings.metrics_listen`` while the server runs, if set
    (:mod:`common.metrics`). With ``settings.tls`` the port takes mutual TLS only; with
    ``settings.health_listen`` health alone is also served there in plaintext.
    """
    metrics = Metrics()
    denials = (
        None
        if report_denial is None
        else DenialLog(report_denial, window_seconds=settings.denial_window_seconds)
    )
    interceptor = MeshInterceptor(
        domain=domain,
        verifier=verifier,
        policies=policies,
        max_streams=settings.max_streams,
        max_streams_per_caller=settings.max_streams_per_caller,
        describe=error_details,
        trusted_proxies=settings.trusted_proxies,
        denials=denials,
        tickets=tickets,
        metrics=metrics,
    )
    server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for registration in services:
        registration.add(registration.servicer, server)
    names = tuple(r.name for r in services)
    reflection.enable_server_reflection(
        (*names, *described, health.SERVICE_NAME, reflection.SERVICE_NAME),
        server,
        pool=reflection_pool,
    )
    tls = settings.tls
    port = (
        server.add_insecure_port(address)
        if tls is None
        else server.add_secure_port(address, tls.server_credentials())
    )
    if port == 0:
        raise OSError(f"cannot bind {address}")
    health_server, health_port = (
        _health_only(health_servicer, settings.health_listen)
        if settings.health_listen
        else (None, 0)
    )
    built = MeshServer(
        server=server,
        port=port,
        health=health_servicer,
        interceptor=interceptor,
        service_names=names,
        grace_seconds=settings.grace_seconds,
        drain_notice_seconds=settings.drain_notice_seconds,
        blocking=blocking,
        metrics=metrics,
        metrics_address=settings.metrics_listen,
        tls=tls,
        health_server=health_server,
        health_port=health_port,
    )
    if verifier is not None:
        metrics.sample(verifier.samples)
    if denials is not None:
        built.background.append(denials.run)
        built.on_drain.append(denials.close)
    return built


def _health_only(servicer: health.aio.HealthServicer, address: str) -> tuple[grpc.aio.Server, int]:
    """A plaintext server of ``servicer`` alone, for probes that speak no TLS (the kubelet's).

    It shares the main server's health, so it reports what that one does; it serves no other
    method, so the plaintext port gives nothing away but SERVING or NOT_SERVING.
    """
    server = grpc.aio.server(options=SERVER_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return server, port


def serve(name: str, runtime: RuntimeSettings, build: Callable[[], MeshServer]) -> None:
    """Run ``build``'s server in a new event loop until SIGTERM or SIGINT has drained it.

    The process's logs and traces are named ``name``, set up before ``build`` runs so that
    whatever it reports (a bad setting, a migration) is a JSON line like the rest.
    """
    configure_logging(name, runtime.log_level)
    tracing.configure(name)
    asyncio.run(_serve(build))


async def _serve(build: Callable[[], MeshServer]) -> None:
    server = build()
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()

    def on_signal(signum: int) -> None:
        log.info("signal received, draining", extra={"signal": signum})
        task = loop.create_task(server.stop())
        stopping.add(task)
        task.add_done_callback(stopping.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await server.start()
    await server.wait_stopped()

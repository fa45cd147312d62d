"""The one server factory of the mesh: health, reflection, interceptors, graceful drain."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.auth import TokenVerifier
from common.config import RuntimeSettings
from common.interceptors import AuthInterceptor, ErrorInterceptor, LoggingInterceptor, Policy

log = logging.getLogger("mesh.server")

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
)
"""Keepalive lets long-lived streams notice a dead peer; no SO_REUSEPORT so a taken port fails."""


@dataclass(frozen=True)
class ServiceRegistration:
    """A servicer to add, under its full service name (used for health and reflection)."""

    name: str
    add: Callable[[grpc.Server], None]


@dataclass
class MeshServer:
    """A started-or-startable server with its bound port and health servicer."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]
    grace_seconds: float
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    on_drain: list[Callable[[], None]] = field(default_factory=list)
    """Run when draining starts, while in-flight RPCs may still finish: ends long-lived
    streams (subscriptions) that would otherwise hold the drain for the whole grace period."""
    readiness: Callable[[float], bool] | None = None
    """Waits up to the given seconds for a dependency (e.g. the revocation view); until it
    answers True, health reports NOT_SERVING so probes and Envoy send no traffic yet."""
    _stopping: bool = False
    _stop_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.server.start()
        if self.readiness is None:
            self._mark_serving()
            return
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info("waiting until ready", extra={"port": self.port})
        threading.Thread(
            target=self._await_ready, args=(self.readiness,), name="readiness", daemon=True
        ).start()

    def _set_health(self, status: int) -> None:
        for name in ("", *self.service_names):
            self.health.set(name, status)

    def _mark_serving(self) -> None:
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"port": self.port, "services": list(self.service_names)})

    def _await_ready(self, readiness: Callable[[float], bool]) -> None:
        while not self._stopping:
            if readiness(1.0):
                with self._stop_lock:
                    if not self._stopping:
                        self._mark_serving()
                return

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain in-flight RPCs for the grace period, then release resources."""
        with self._stop_lock:
            already_stopping, self._stopping = self._stopping, True
        if already_stopping:
            self._stopped.wait()
            return
        self.health.enter_graceful_shutdown()
        stopped = self.server.stop(self.grace_seconds if grace is None else grace)
        _run_all(self.on_drain)
        stopped.wait()
        _run_all(reversed(self.on_stop))
        log.info("stopped", extra={"port": self.port})
        self._stopped.set()

    def serve_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT has drained the server and run ``on_stop``."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("signal received, draining", extra={"signal": signum})
            threading.Thread(target=self.stop, name="drain", daemon=True).start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self.start()
        self._stopped.wait()


def _run_all(callbacks: Iterable[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("error while stopping")


def create_server(
    address: str,
    *,
    domain: str,
    services: Sequence[ServiceRegistration],
    policies: Mapping[str, Policy],
    verifier: TokenVerifier | None,
    settings: RuntimeSettings,
) -> MeshServer:
    """Build a server bound to ``address`` (``host:0`` picks a free port, as tests do).

    ``domain`` goes into every ErrorInfo; ``policies`` maps full method names to who may call
    them, and a method without a policy is refused.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=[
            LoggingInterceptor(),
            ErrorInterceptor(domain),
            AuthInterceptor(verifier, policies),
        ],
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=settings.max_workers * 4,
    )
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=2),
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for registration in services:
        registration.add(server)
    names = tuple(r.name for r in services)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return MeshServer(
        server=server,
        port=port,
        health=health_servicer,
        service_names=names,
        grace_seconds=settings.grace_seconds,
    )

"""Prometheus metrics of one server, and the ``/metrics`` endpoint that serves them.

Each :class:`common.server.MeshServer` owns a :class:`Metrics` with its own registry (tests
run several servers in one process). The interceptor counts RPCs the way the gRPC ecosystem
names them (``grpc_server_started_total``, ``grpc_server_handled_total``,
``grpc_server_handling_seconds``); everything else is read when Prometheus scrapes, from a
component's :class:`Sampled` collector, so that an idle server has nothing to do between
scrapes and a gauge that needs a query (the outbox's depth) costs one query per scrape.

The endpoint is a minimal HTTP/1.1 server on the server's event loop, answering ``GET
/metrics`` and nothing else; the scrape itself runs in the blocking pool, since collectors
may query the database. Labels never hold a user, a token or a key: the method is the finest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from common.blocking import Blocking
from common.config import split_address

log = logging.getLogger("mesh.metrics")

METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds; a cached read takes under a millisecond, a commit a few, a password hash tens."""
_RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")
_MAX_REQUEST_HEAD = 8192
_READ_SECONDS = 10.0


class Sampled(Collector):
    """Metrics computed at scrape time by ``read``; nothing runs between scrapes."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()

    def describe(self) -> Iterable[Metric]:
        return ()  # registering must not run the read (it may query a database)


def gauge(name: str, documentation: str, value: float, **labels: str) -> GaugeMetricFamily:
    """One gauge sample, for :class:`Sampled` reads."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(name: str, documentation: str, value: float, **labels: str) -> CounterMetricFamily:
    """One counter sample (``name`` without ``_total``), for :class:`Sampled` reads."""
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` as (``pkg.Service``, ``Method``)."""
    _, service, name = method.split("/", 2) if method.count("/") == 2 else ("", "", method)
    return service, name


class RpcMetrics:
    """The RPC metrics of one method, bound to its labels once (a call pays no lookups)."""

    __slots__ = ("_handled", "_handling", "_in_flight", "_labels", "_parent", "_started")

    def __init__(self, parent: Metrics, method: str, grpc_type: str) -> None:
        service, name = split_method(method)
        self._labels = (service, name, grpc_type)
        self._parent = parent
        self._started = parent.started.labels(*self._labels)
        self._in_flight = parent.in_flight.labels(*self._labels)
        self._handling = parent.handling.labels(*self._labels)
        self._handled: dict[str, Any] = {}

    def start(self) -> None:
        self._started.inc()
        self._in_flight.inc()

    def finish(self, code: str, seconds: float) -> None:
        self._in_flight.dec()
        self._handling.observe(seconds)
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled[code] = self._parent.handled.labels(*self._labels, code)
        counter.inc()


class Metrics:
    """One server's registry: the process's default collectors, RPC metrics, and components'."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            _RPC_LABELS,
            registry=self.registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*_RPC_LABELS, "grpc_code"),
            registry=self.registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status, streams included.",
            _RPC_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "grpc_server_in_flight_rpcs",
            "RPCs started and not yet completed.",
            _RPC_LABELS,
            registry=self.registry,
        )

    def rpc(self, method: str, grpc_type: str) -> RpcMetrics:
        return RpcMetrics(self, method, grpc_type)

    def sample(self, read: Callable[[], Iterable[Metric]]) -> None:
        """Add metrics that ``read`` computes at each scrape."""
        self.registry.register(Sampled(read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsEndpoint:
    """``GET /metrics`` over HTTP/1.1 on the running loop; one response per connection."""

    def __init__(self, metrics: Metrics, blocking: Blocking) -> None:
        self._metrics = metrics
        self._blocking = blocking
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, address: str) -> int:
        """Listen on ``address`` (``host:port``); the port bound."""
        host, port = split_address(address, "metrics address")
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics served", extra={"address": f"{host}:{self.port}", "path": METRICS_PATH})
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
            headers = (
                f"HTTP/1.1 {status}\r\n"
                f"Content-Type: {CONTENT_TYPE_LATEST if status.startswith('200') else 'text/plain'}"
                f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
            )
            if status.startswith("405"):
                headers += "Allow: GET\r\n"
            writer.write(headers.encode("ascii") + b"\r\n" + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, bytes]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_SECONDS)
        except (asyncio.LimitOverrunError, ValueError):
            return "431 Request Header Fields Too Large", b"request head too large\n"
        if len(head) > _MAX_REQUEST_HEAD:
            return "431 Request Header Fields Too Large", b"request head too large\n"
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "400 Bad Request", b"not an HTTP/1.x request\n"
        method, target, _ = parts
        if target.split("?", 1)[0] != METRICS_PATH:
            return "404 Not Found", f"only {METRICS_PATH} is served here\n".encode()
        if method != "GET":
            return "405 Method Not Allowed", b"GET only\n"
        return "200 OK", await self._blocking.run(self._metrics.exposition)

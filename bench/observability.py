"""The cost of metrics and of tracing on ``oms_read`` and ``gateway_validate``, as ratios.

Tracing is measured whole, through Envoy, in three stacks run one after the other: off (no
``OTEL_*`` variable), on with sampling 0 (``parentbased_traceidratio`` at 0: Envoy starts
unsampled traces and every service continues them without recording), and on with sampling 1
(every span exported over OTLP/HTTP to a sink in this process). ``wrk`` drives each path for a
fixed time; the ratio is requests/s against the stack with tracing off.

Metrics cannot be switched off (the interceptor counts every call), so their cost is measured
apart: the interceptor's per-call work (a started and a handled count, an in-flight gauge and
a latency observation) timed on its own, against a call's CPU time in the OMS as the
tracing-off run measured it; and one scrape of the OMS's ``/metrics``, with the outbox's query.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from bench._tools import Load, drive_through_gateway, stack, table
from bench.oms_read import PATH, object_type
from common.metrics import Metrics
from oms.v1 import schema_service_pb2, schema_service_pb2_grpc

VALIDATE = "/auth/validate"


@contextlib.contextmanager
def sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that takes every export and keeps nothing; its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    self.rfile.read(size + 2)
                self.rfile.readline()
            else:
                self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _tracing_env(endpoint: str, ratio: float | None) -> dict[str, str]:
    if ratio is None:
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}",
    }


Runs = dict[str, tuple[Load, dict[str, float]]]


def _run(
    folder: Path, env: Mapping[str, str], *, seconds: float, connections: int
) -> tuple[Runs, float]:
    """Both paths on one stack, their load and CPU shares; and a scrape's milliseconds."""
    with stack(folder, ["users", "oms"], env=env) as running:
        token = running.login()
        with grpc.insecure_channel(running.target("oms")) as channel:
            schema_service_pb2_grpc.SchemaServiceStub(channel).CreateObjectType(
                schema_service_pb2.CreateObjectTypeRequest(
                    branch="main", object_type=object_type()
                ),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=30,
            )
        metrics_url = running.mesh.endpoints.metrics_urls["oms"]
        found: Runs = {}
        for name, path, service in (
            ("oms_read", PATH, "oms"),
            ("gateway_validate", VALIDATE, "users"),
        ):
            load, cpu = drive_through_gateway(
                running, path, token, service, seconds=seconds, connections=connections
            )
            if load.failed:
                raise SystemExit(f"{name}: {load.failed} requests failed")
            found[name] = (load, cpu)
        return found, _scrape_ms(metrics_url)


def _scrape_ms(url: str, times: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(times):
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
    return (time.perf_counter() - started) / times * 1000


def _per_call_metrics_us() -> float:
    """The interceptor's metrics work for one call, in microseconds."""
    rpc = Metrics().rpc("/oms.v1.SchemaService/GetObjectType", "unary")

    def call() -> None:
        rpc.start()
        rpc.finish("OK", 0.0004)

    number = 100_000
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args([] if argv is None else argv)
    runs: dict[str, Runs] = {}
    scrape_ms = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as scratch, sink() as endpoint:
        for label, ratio in (
            ("tracing off", None),
            ("on, sampling 0", 0.0),
            ("on, sampling 1", 1.0),
        ):
            folder = Path(scratch) / label.replace(" ", "-").replace(",", "")
            folder.mkdir()
            runs[label], scraped = _run(
                folder,
                _tracing_env(endpoint, ratio),
                seconds=args.seconds,
                connections=args.connections,
            )
            scrape_ms = scrape_ms or scraped
    off = runs["tracing off"]
    rows = []
    for path in ("oms_read", "gateway_validate"):
        for label, found in runs.items():
            load, cpu = found[path]
            rows.append(
                [
                    f"{path}: {label}",
                    load.requests_per_second,
                    load.p50_ms,
                    load.p99_ms,
                    cpu["envoy"],
                    cpu["service"],
                    load.requests_per_second / off[path][0].requests_per_second,
                ]
            )
    print(f"wrk, {args.connections} connections, {args.seconds:g} s per run, through Envoy")
    print(table(rows, ["", "req/s", "p50 ms", "p99 ms", "envoy cores", "service cores", "ratio"]))
    metrics_us = _per_call_metrics_us()
    load, cpu = off["oms_read"]
    call_us = cpu["service"] / load.requests_per_second * 1e6
    print(
        f"metrics: {metrics_us:.2f} us of interceptor work per call, against {call_us:.0f} us of"
        f" OMS CPU per oms_read call: ratio {call_us / (call_us + metrics_us):.3f}"
    )
    print(f"metrics: one scrape of the OMS's /metrics (outbox query included) {scrape_ms:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])

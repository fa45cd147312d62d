"""What the benchmarks share: the C load generators, processes to measure, and their CPU.

Load comes from ``h2load`` (gRPC) and ``wrk`` (REST), never from Python threads, which saturate
a two-core machine before the server does. Both are installed from Debian's packages on first
use. ``h2load`` counts any ``grpc-status`` as a success, so every run checks one real call first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway import envoy
from gateway.mesh import Mesh, serving
from gateway.settings import MeshSettings, TraceExport
from gateway.supervisor import free_ports
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = {"h2load": "nghttp2-client", "wrk": "wrk", "prometheus": "prometheus"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def require(tool: str) -> str:
    """The path of a tool of :data:`_PACKAGES`, installing its Debian package if it is missing.

    The benchmarks' load generators, and the Prometheus server the end-to-end tests scrape with.
    """
    found = shutil.which(tool)
    if found:
        return found
    package = _PACKAGES[tool]
    print(f"installing {package} for {tool}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which(tool)
    if not found:
        raise SystemExit(f"{tool} is not available after installing {package}")
    return found


def grpc_frame(message: bytes) -> bytes:
    """One length-prefixed gRPC message, as ``h2load -d`` sends it."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


@dataclass(frozen=True)
class Load:
    """What a load generator measured."""

    requests_per_second: float
    mean_ms: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    failed: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def h2load(url: str, message: bytes, *, seconds: float, streams: int, clients: int = 1) -> Load:
    """Unary gRPC calls of ``message`` to ``url`` (``http://host:port/pkg.Service/Method``)."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as body:
        body.write(grpc_frame(message))
        body.flush()
        output = subprocess.run(
            [
                require("h2load"),
                "-c",
                str(clients),
                "-m",
                str(streams),
                "-D",
                f"{seconds:g}",
                "--warm-up-time",
                "1",
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-d",
                body.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = re.search(r"finished in .*?, ([\d.]+) req/s", output)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", output)
    failed = re.search(r"requests: .* (\d+) failed", output)
    if rate is None or mean is None:
        raise SystemExit(f"cannot read h2load's output:\n{output}")
    return Load(
        requests_per_second=float(rate.group(1)),
        mean_ms=_ms(mean.group(1), mean.group(2)),
        failed=int(failed.group(1)) if failed else 0,
    )


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    headers: Mapping[str, str] | None = None,
    threads: int = 1,
    post: str | None = None,
) -> Load:
    """REST GETs of ``url`` (or POSTs of the JSON ``post``) with ``wrk --latency``.

    A non-2xx answer counts as failed.
    """
    command = [
        require("wrk"),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if post is not None:
            script.write(
                f'wrk.method = "POST"\nwrk.body = {json.dumps(post)}\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            script.flush()
            command += ["-s", script.name]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rate is None or mean is None or p50 is None or p99 is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    return Load(
        requests_per_second=float(rate.group(1)),
        mean_ms=_ms(mean.group(1), mean.group(2)),
        p50_ms=_ms(p50.group(1), p50.group(2)),
        p99_ms=_ms(p99.group(1), p99.group(2)),
        failed=int(bad.group(1)) if bad else 0,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuMeter:
    """CPU seconds several processes use between ``start`` and ``stop``."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._started: dict[str, float] = {}
        self._wall = 0.0

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Each process's share of one core over the interval (1.0 = a whole core)."""
        wall = time.monotonic() - self._wall
        return {
            name: (cpu_seconds(pid) - self._started[name]) / wall
            for name, pid in self._pids.items()
        }


class Child:
    """A module of this project serving on a free port as its own process, until ``stop``."""

    def __init__(self, module: str, *args: str) -> None:
        (self.port,) = free_ports(1)
        self.target = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, self.target, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not serving(self.target):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{module} did not start")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Rows as aligned text, the first column left-aligned and the rest right-aligned."""
    cells = [[str(h) for h in header], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        first, *rest = row
        lines.append(
            "  ".join(
                [
                    first.ljust(widths[0]),
                    *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True)),
                ]
            )
        )
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


BENCH_ENV = {
    "MESH_ADMIN_PASSWORD": "bench-admin-password",
    "MESH_PASSWORD_HASH_PROFILE": "test",
}
"""Cheap password hashing (logins are setup here, not what is measured) and a known admin."""


@dataclass
class Stack:
    """Processes of the mesh started by :func:`stack`, and where to reach them."""

    mesh: Mesh
    pids: dict[str, int]

    @property
    def url(self) -> str:
        return self.mesh.endpoints.gateway_url

    def target(self, name: str) -> str:
        return self.mesh.endpoints.grpc_targets[name]

    def login(self) -> str:
        """An admin access token from this stack's User Service."""
        with grpc.insecure_channel(self.target("users")) as channel:
            response = auth_grpc.AuthServiceStub(channel).Login(
                auth_pb.LoginRequest(username="admin", password=BENCH_ENV["MESH_ADMIN_PASSWORD"]),
                timeout=30,
            )
        return str(response.access_token)


@contextlib.contextmanager
def stack(
    folder: Path,
    names: Sequence[str],
    *,
    canned: Mapping[str, Mapping[str, Path]] | None = None,
    gateway: bool = True,
    env: Mapping[str, str] | None = None,
    check_bodies: bool = True,
) -> Iterator[Stack]:
    """The named services (and Envoy), started as ``mesh up`` starts them, on free ports.

    A service in ``canned`` is replaced, on its own port and behind the same routes, by the
    server factory answering the given methods with recorded bytes (:mod:`bench._canned`).
    Without ``check_bodies``, Envoy runs without its check of REST bodies (a baseline).
    """
    environment = {**os.environ, **BENCH_ENV, **(env or {})}
    # Envoy exports spans as the OTEL_* variables say, as under ``mesh up``.
    settings = dataclasses.replace(
        MeshSettings.on_free_ports(), traces=TraceExport.from_env(environment)
    )
    log = (folder / "stack.log").open("w")
    mesh = Mesh(settings, data_dir=folder, out=log, env=environment)
    config = envoy.write_config(settings, mesh.data_dir, check_bodies=check_bodies)
    specs = {spec.name: spec for spec in mesh.specs(config)}
    chosen = []
    for name in (*names, *(["gateway"] if gateway else [])):
        spec = specs[name]
        if name in (canned or {}):
            answers = [f"{method}={path}" for method, path in (canned or {})[name].items()]
            argv = [sys.executable, "-m", "bench._canned", f"MESH_{name.upper()}_LISTEN", *answers]
            spec = dataclasses.replace(spec, argv=argv, env={**spec.env, "PYTHONPATH": str(ROOT)})
        chosen.append(spec)
    supervisor = mesh.supervisor
    try:
        for spec in chosen:
            supervisor.start([spec])
            if spec.name != "gateway":
                target = mesh.endpoints.grpc_targets[spec.name]
                supervisor.wait_until(
                    functools.partial(serving, target), timeout=60, what=f"{spec.name} to serve"
                )
        yield Stack(mesh, {spec.name: supervisor.pid(spec.name) for spec in chosen})
    finally:
        supervisor.stop()
        log.close()


def wait_for(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30) -> None:
    """Until ``url`` answers 200 (the gateway routes to a service once its checks pass)."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer 200 in {timeout:g}s")
        time.sleep(0.1)


def drive_through_gateway(
    running: Stack, path: str, token: str, service: str, *, seconds: float, connections: int
) -> tuple[Load, dict[str, float]]:
    """``wrk`` on ``path`` through the gateway with a bearer token, once it answers 200.

    The run follows a second of warm-up; with its figures comes the share of a core Envoy and
    ``service`` each used.
    """
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{running.url}{path}"
    wait_for(url, headers=headers)
    wrk(url, seconds=1, connections=connections, headers=headers)  # warm up, not counted
    meter = CpuMeter({"envoy": running.pids["gateway"], "service": running.pids[service]})
    meter.start()
    load = wrk(url, seconds=seconds, connections=connections, headers=headers)
    return load, meter.stop()


def gateway_report(
    runs: Sequence[tuple[str, Load, dict[str, float]]],
    service: str,
    *,
    seconds: float,
    connections: int,
) -> str:
    """The figures of a path and its ceiling through the gateway, and their ratio."""
    for _, load, _ in runs:
        if load.failed:
            raise SystemExit(f"{load.failed} requests failed")
    rows = [
        [name, load.requests_per_second, load.p50_ms, load.p99_ms, cpu["envoy"], cpu["service"]]
        for name, load, cpu in runs
    ]
    ratio = runs[0][1].requests_per_second / runs[-1][1].requests_per_second
    return "\n".join(
        [
            f"wrk, {connections} connections, {seconds:g} s per run",
            table(rows, ["", "req/s", "p50 ms", "p99 ms", "envoy cores", f"{service} cores"]),
            f"ratio: {ratio:.2f}",
        ]
    )

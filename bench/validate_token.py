"""ValidateToken against the ceiling of this stack: an empty echo on the same server runtime.

Each server runs in its own process (so the load generator does not share its interpreter),
both built with ``common.server.create_server``. N concurrent callers drive each for a bounded
number of calls and time; the figures are calls/s and p50/p99 latency, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from common.config import RuntimeSettings
from common.interceptors import PUBLIC
from common.server import MeshServer, ServiceRegistration, create_server

ECHO_SERVICE = "bench.v1.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"
ADMIN_PASSWORD = "bench-admin-password"


def _identity(data: bytes) -> bytes:
    return data


def _serve_echo() -> None:
    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req, _identity, _identity)},
    )
    server = create_server(
        "127.0.0.1:0",
        domain="bench.mesh",
        services=[
            ServiceRegistration(ECHO_SERVICE, lambda s: s.add_generic_rpc_handlers((handler,)))
        ],
        policies={ECHO_METHOD: PUBLIC},
        verifier=None,
        settings=RuntimeSettings.from_env(),
    )
    _serve(server)


def _serve_users(data_dir: str) -> None:
    from users.server import build_server
    from users.settings import Settings

    os.environ.update(
        {
            "MESH_DATA_DIR": data_dir,
            "MESH_USERS_LISTEN": "127.0.0.1:0",
            "MESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MESH_PASSWORD_HASH_PROFILE": "test",
        }
    )
    _serve(build_server(Settings.from_env()))


def _serve(server: MeshServer) -> None:
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop(0)


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.validate_token", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return process, int(line)


def _drive(
    call: Callable[[], object], *, callers: int, calls: int, seconds: float
) -> tuple[float, float, float]:
    """Calls/s, p50 ms, p99 ms of ``callers`` threads making up to ``calls`` calls in total."""
    latencies: list[list[float]] = [[] for _ in range(callers)]
    per_caller = calls // callers
    deadline = time.perf_counter() + seconds

    def run(out: list[float]) -> None:
        for _ in range(per_caller):
            start = time.perf_counter()
            call()
            out.append(time.perf_counter() - start)
            if start > deadline:
                return

    for _ in range(200):
        call()  # warm up
    threads = [threading.Thread(target=run, args=(lat,)) for lat in latencies]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for lat in latencies for x in lat)
    quantiles = statistics.quantiles(merged, n=100)
    return len(merged) / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


def main(argv: list[str] | None = None) -> None:
    """Run with defaults (as ``python -m bench`` does), or with ``argv`` options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-users", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    if args.serve_echo:
        _serve_echo()
        return
    if args.serve_users:
        _serve_users(args.serve_users)
        return

    from users.v1 import auth_service_pb2 as auth_pb
    from users.v1 import auth_service_pb2_grpc as auth_grpc

    with tempfile.TemporaryDirectory() as data_dir:
        users_process, users_port = _spawn("--serve-users", str(Path(data_dir)))
        echo_process, echo_port = _spawn("--serve-echo")
        try:
            with (
                grpc.insecure_channel(f"127.0.0.1:{users_port}") as users_channel,
                grpc.insecure_channel(f"127.0.0.1:{echo_port}") as echo_channel,
            ):
                auth = auth_grpc.AuthServiceStub(users_channel)
                token = auth.Login(
                    auth_pb.LoginRequest(username="admin", password=ADMIN_PASSWORD), timeout=30
                ).access_token
                request = auth_pb.ValidateTokenRequest(token=token)
                echo = echo_channel.unary_unary(ECHO_METHOD, _identity, _identity)
                bounds = {"callers": args.callers, "calls": args.calls, "seconds": args.seconds}
                validate = _drive(lambda: auth.ValidateToken(request, timeout=10), **bounds)
                ceiling = _drive(lambda: echo(b"", timeout=10), **bounds)
        finally:
            for process in (users_process, echo_process):
                assert process.stdin is not None
                process.stdin.close()
                process.wait(timeout=10)
    print(f"callers={args.callers} calls<={args.calls} seconds<={args.seconds}")
    print(f"{'':22}{'calls/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (rate, p50, p99) in (
        ("ValidateToken (valid)", validate),
        ("echo (ceiling)", ceiling),
    ):
        print(f"{name:22}{rate:10.0f}{p50:10.2f}{p99:10.2f}")
    print(f"ratio ValidateToken/echo throughput: {validate[0] / ceiling[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])

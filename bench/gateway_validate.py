"""``GET /auth/validate`` through Envoy against the ceiling of the same path: the same Envoy
routes in front of a canned User Service answering the very response the real one gave.

``wrk`` drives each with 10 connections for a fixed time and reports requests/s, p50 and p99;
beside them, the share of a core Envoy and the service each used meanwhile, so a ratio below
the aim says which of the two to look at. Aim: 0.8 or better.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import grpc

from bench._tools import CpuMeter, Load, Stack, stack, table, wait_for, wrk
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

METHOD = "/users.v1.AuthService/ValidateToken"


def _drive(
    running: Stack, token: str, seconds: float, connections: int
) -> tuple[Load, dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{running.url}/auth/validate"
    wait_for(url, headers=headers)
    meter = CpuMeter({"envoy": running.pids["gateway"], "service": running.pids["users"]})
    meter.start()
    load = wrk(url, seconds=seconds, connections=connections, headers=headers)
    return load, meter.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args([] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        folder = Path(scratch)
        (folder / "real").mkdir()
        with stack(folder / "real", ["users"]) as real:
            token = real.login()
            with grpc.insecure_channel(real.target("users")) as channel:
                answer = auth_grpc.AuthServiceStub(channel).ValidateToken(
                    auth_pb.ValidateTokenRequest(token=token), timeout=10
                )
            recorded = folder / "validate.bin"
            recorded.write_bytes(answer.SerializeToString())
            measured, measured_cpu = _drive(real, token, args.seconds, args.connections)
        (folder / "ceiling").mkdir()
        with stack(folder / "ceiling", ["users"], canned={"users": {METHOD: recorded}}) as canned:
            ceiling, ceiling_cpu = _drive(canned, token, args.seconds, args.connections)
    assert measured.failed == 0 and ceiling.failed == 0
    rows = [
        [name, load.requests_per_second, load.p50_ms, load.p99_ms, cpu["envoy"], cpu["service"]]
        for name, load, cpu in (
            ("GET /auth/validate", measured, measured_cpu),
            ("ceiling (canned)", ceiling, ceiling_cpu),
        )
    ]
    print(f"wrk, {args.connections} connections, {args.seconds:g} s per run; aim: ratio 0.80")
    print(table(rows, ["", "req/s", "p50 ms", "p99 ms", "envoy cores", "service cores"]))
    print(f"ratio: {measured.requests_per_second / ceiling.requests_per_second:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""``GET /auth/validate`` through Envoy against the ceiling of the same path.

The ceiling is the same Envoy routes in front of a canned User Service answering the very
response the real one gave.

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

from bench._tools import drive_through_gateway, gateway_report, stack
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

PATH = "/auth/validate"
METHOD = "/users.v1.AuthService/ValidateToken"


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
            measured = drive_through_gateway(
                real, PATH, token, "users", seconds=args.seconds, connections=args.connections
            )
        (folder / "ceiling").mkdir()
        with stack(folder / "ceiling", ["users"], canned={"users": {METHOD: recorded}}) as canned:
            ceiling = drive_through_gateway(
                canned, PATH, token, "users", seconds=args.seconds, connections=args.connections
            )
    runs = [("GET /auth/validate", *measured), ("ceiling (canned)", *ceiling)]
    print(gateway_report(runs, "users", seconds=args.seconds, connections=args.connections))
    print("aim: a ratio of 0.80 or better")


if __name__ == "__main__":
    main(sys.argv[1:])

"""ValidateToken against its ceiling: the same calls answered with recorded bytes.

The real User Service and a canned one (the same server factory and interceptor, answering
the very response the real one gave) each run as their own process, as ``mesh up`` starts
them, and ``h2load`` drives each with one connection and 10, then 50, concurrent streams for
a fixed time. The ratio is real calls/s over the ceiling's. Aim: 0.8 or better.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import grpc

from bench._tools import Load, h2load, stack, table
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc

METHOD = "/users.v1.AuthService/ValidateToken"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args([] if argv is None else argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
        folder = Path(scratch)
        (folder / "real").mkdir()
        (folder / "ceiling").mkdir()
        with stack(folder / "real", ["users"], gateway=False) as real:
            token = real.login()
            request = auth_pb.ValidateTokenRequest(token=token).SerializeToString()
            with grpc.insecure_channel(real.target("users")) as channel:
                answer = auth_grpc.AuthServiceStub(channel).ValidateToken(
                    auth_pb.ValidateTokenRequest(token=token), timeout=10
                )
            assert answer.valid and answer.username == "admin"
            recorded = folder / "validate.bin"
            recorded.write_bytes(answer.SerializeToString())
            with stack(
                folder / "ceiling", ["users"], canned={"users": {METHOD: recorded}}, gateway=False
            ) as canned:
                for streams in args.streams:
                    measured: list[Load] = []
                    ceiling: list[Load] = []
                    for _ in range(args.rounds):  # interleaved, so drift hits both alike
                        for target, out in ((real, measured), (canned, ceiling)):
                            out.append(
                                h2load(
                                    f"http://{target.target('users')}{METHOD}",
                                    request,
                                    seconds=args.seconds,
                                    streams=streams,
                                )
                            )
                    best = max(measured, key=lambda load: load.requests_per_second)
                    top = max(ceiling, key=lambda load: load.requests_per_second)
                    assert best.failed == 0 and top.failed == 0
                    rows.append(
                        [
                            f"{streams} streams",
                            best.requests_per_second,
                            best.mean_ms,
                            top.requests_per_second,
                            top.mean_ms,
                            best.requests_per_second / top.requests_per_second,
                        ]
                    )
    print(
        f"h2load, one connection, best of {args.rounds} interleaved runs of {args.seconds:g} s; "
        "aim: ratio 0.80 or better"
    )
    print(table(rows, ["", "ValidateToken/s", "mean ms", "ceiling/s", "mean ms", "ratio"]))


if __name__ == "__main__":
    main(sys.argv[1:])

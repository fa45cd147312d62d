"""Logins/s at the chosen argon2id parameters, next to the cost of one hash.

A real User Service runs with ``MESH_PASSWORD_HASH_PROFILE`` (``owasp`` by default, the
profile a deployment gets), and ``h2load`` drives its Login with one connection and 4 streams
for a fixed time. The ceiling is what the hash alone allows: the cores of this machine divided
by the time one argon2id verification of that profile takes in this process. Every login also
writes its session and its audit event, so the ratio says how much of a login is the hash.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._tools import BENCH_ENV, h2load, stack, table
from users.passwords import Passwords
from users.v1 import auth_service_pb2 as auth_pb

METHOD = "/users.v1.AuthService/Login"


def _verify_seconds(profile: str, rounds: int = 20) -> float:
    """Seconds one verification of a correct password takes, the best of ``rounds``."""
    passwords = Passwords(profile)
    stored = passwords.hash(BENCH_ENV["MESH_ADMIN_PASSWORD"])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        assert passwords.verify(stored, BENCH_ENV["MESH_ADMIN_PASSWORD"]).ok
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--profile", default=os.environ.get("MESH_PASSWORD_HASH_PROFILE", "owasp"))
    args = parser.parse_args([] if argv is None else argv)
    one_hash = _verify_seconds(args.profile)
    cores = os.cpu_count() or 1
    request = auth_pb.LoginRequest(
        username="admin", password=BENCH_ENV["MESH_ADMIN_PASSWORD"]
    ).SerializeToString()
    with tempfile.TemporaryDirectory(prefix="bench-login-") as scratch:
        env = {"MESH_PASSWORD_HASH_PROFILE": args.profile}
        with stack(Path(scratch), ["users"], gateway=False, env=env) as users:
            users.login()  # one real call first: h2load counts any gRPC status as success
            load = h2load(
                f"http://{users.target('users')}{METHOD}",
                request,
                seconds=args.seconds,
                streams=args.streams,
            )
    if load.failed:
        raise SystemExit(f"{load.failed} logins failed")
    ceiling = cores / one_hash
    print(
        f"profile {args.profile}: one argon2id verification takes {one_hash * 1000:.1f} ms; "
        f"h2load, one connection, {args.streams} streams, {args.seconds:g} s"
    )
    print(
        table(
            [
                [
                    "Login",
                    load.requests_per_second,
                    load.mean_ms,
                    ceiling,
                    load.requests_per_second / ceiling,
                ]
            ],
            ["", "logins/s", "mean ms", f"hash ceiling/s ({cores} cores)", "ratio"],
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])

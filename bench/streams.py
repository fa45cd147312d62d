"""What an open subscription costs: the Audit Service's memory with 1,000 SubscribeEvents open.

It is measured against a bare server of the same factory holding 1,000 streams that do nothing.

Both run as their own process; the subscriptions come from one asyncio client on one channel.
Every subscription receives one event published while all are open (one commit, fanned out),
so the figure is for live subscriptions, not merely opened ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from audit.v1 import audit_pb2, audit_pb2_grpc
from bench._canned import HOLD
from bench._tools import Child, rss_bytes, stack, table
from tests.support.tokens import TestSigner


def _identity(data: bytes) -> bytes:
    return data


async def _subscribe(target: str, pid: int, count: int, token: str) -> tuple[int, int]:
    """RSS before and with ``count`` live subscriptions open."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        await asyncio.sleep(0.5)
        before = rss_bytes(pid)
        subject = f"bench/{uuid.uuid4()}"
        calls = [
            stub.SubscribeEvents(
                audit_pb2.SubscribeEventsRequest(subject=subject), metadata=metadata
            )
            for _ in range(count)
        ]
        await asyncio.gather(*(call.initial_metadata() for call in calls))
        event = audit_pb2.Event(
            id=str(uuid.uuid4()), source="/bench", type="bench.streams.published", subject=subject
        )
        event.time.GetCurrentTime()
        await stub.PublishEvent(audit_pb2.PublishEventRequest(event=event), metadata=metadata)
        received = await asyncio.gather(*(call.read() for call in calls))
        assert all(r.id == event.id for r in received)
        with_streams = rss_bytes(pid)
        for call in calls:
            call.cancel()
        return before, with_streams


async def _hold(target: str, pid: int, count: int) -> tuple[int, int]:
    async with grpc.aio.insecure_channel(target) as channel:
        hold = channel.unary_stream(HOLD, _identity, _identity)
        await asyncio.sleep(0.5)
        before = rss_bytes(pid)
        calls = [hold(b"") for _ in range(count)]
        await asyncio.gather(*(call.initial_metadata() for call in calls))
        await asyncio.sleep(0.5)
        with_streams = rss_bytes(pid)
        for call in calls:
            call.cancel()
        return before, with_streams


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args([] if argv is None else argv)
    # One client holds every stream here, so its share of a method's places is lifted to all of
    # them: what is measured is a stream's memory, not the limit per caller.
    os.environ["MESH_MAX_STREAMS_PER_CALLER"] = str(args.streams)
    signer = TestSigner()
    token = signer.mint(permissions=("audit:read", "audit:write"))
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as scratch:
        folder = Path(scratch)
        jwks = folder / "jwks.json"
        jwks.write_text(json.dumps(signer.jwks()))
        with stack(folder, ["audit"], gateway=False, env={"MESH_JWKS_FILE": str(jwks)}) as audit:
            started = time.monotonic()
            subscribed = asyncio.run(
                _subscribe(audit.target("audit"), audit.pids["audit"], args.streams, token)
            )
            opened = time.monotonic() - started
        bare = Child("bench._canned")
        try:
            held = asyncio.run(_hold(bare.target, bare.pid, args.streams))
        finally:
            bare.stop()
    rows = []
    for name, (before, after) in (("SubscribeEvents", subscribed), ("bare stream", held)):
        per = (after - before) / args.streams
        rows.append([name, before / 2**20, after / 2**20, per / 1024])
    print(
        f"{args.streams} streams on one channel; subscriptions open, fed and read in {opened:.1f} s"
    )
    print(table(rows, ["", "RSS before MiB", "with streams MiB", "KiB per stream"]))
    bare_per = (held[1] - held[0]) / args.streams
    sub_per = (subscribed[1] - subscribed[0]) / args.streams
    print(f"ratio (subscription / bare stream): {sub_per / bare_per:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])

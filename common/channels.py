"""Client channels between services: gRPC's own retry policy, keepalive and reconnect backoff."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

RECONNECT_BACKOFF_MS = 1000
"""Longest wait between connection attempts to a peer that is down (gRPC's default grows to
two minutes): a follower is back within a second of its peer, at a cost of one connection
attempt a second while the peer stays away."""


def service_config(service_names: Sequence[str]) -> str:
    """Retry UNAVAILABLE with exponential backoff for every method of the named services."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": name} for name in service_names],
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def create_channel(target: str, *, service_names: Sequence[str]) -> grpc.aio.Channel:
    """An insecure channel to a peer in the mesh (loopback or a private network).

    Create it inside the event loop that uses it.
    """
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(service_names)),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
        ],
    )

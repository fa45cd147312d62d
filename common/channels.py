"""Client channels between services: gRPC's own retry policy, keepalive and reconnect backoff.

A unary call made while another is served carries that call's request id and trace context on
(:func:`common.tracing.outgoing_metadata`), so the callee's logs and spans join the caller's.
Streams between services are background work of no one call: the relay's events carry their
own ``traceparent``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from common import tracing
from common.tls import MutualTls

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


def create_channel(
    target: str, *, service_names: Sequence[str], tls: MutualTls | None = None
) -> grpc.aio.Channel:
    """A channel to a peer in the mesh: mutual TLS with ``tls``, else plaintext (a private net).

    Create it inside the event loop that uses it.
    """
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(service_names)),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(target, interceptors=[_Propagate()], options=options)
    return grpc.aio.secure_channel(
        target,
        tls.channel_credentials(),
        interceptors=[_Propagate()],
        options=[*options, *tls.channel_options],
    )


def _with_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    extra = tracing.outgoing_metadata()
    if not extra:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *extra)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _Propagate(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_context(client_call_details), request)

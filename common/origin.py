"""Where the call being served came from: its client address, as every event records it.

Envoy runs with ``use_remote_address`` and no trusted hops, so it appends the address of the
connection it accepted as the last entry of ``x-forwarded-for``; every entry before that is
whatever the client sent, and anyone can write it. The last entry is therefore the one to
trust, and only when the call reached the service from a trusted proxy (the gateway): a caller
that connects directly could write any ``x-forwarded-for`` it likes, so its own address (the
gRPC peer) is taken instead. ``MESH_TRUSTED_PROXIES`` names the proxies (by default the
loopback addresses, where ``mesh up`` runs Envoy beside the services).

The interceptor sets the address at the start of each call; :func:`client_address` reads it
wherever the call's work runs (context variables follow it into the blocking pool).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from ipaddress import ip_address
from typing import Any

from common.config import Networks

_current: contextvars.ContextVar[str] = contextvars.ContextVar("mesh_client_address", default="")
_caller: contextvars.ContextVar[str] = contextvars.ContextVar("mesh_caller", default="")


def client_address() -> str:
    """The client address of the call being served; empty outside a call (first start)."""
    return _current.get()


def serve_from(address: str) -> None:
    """Make ``address`` the current call's client address (the interceptor's job)."""
    _current.set(address)


def caller() -> str:
    """Who the call being served is, for the share of places each caller may hold.

    ``user <name>``, or ``at <address>`` for an anonymous call; empty outside a call.
    """
    return _caller.get()


def serve_caller(username: str | None) -> str:
    """Make the current call's caller the user, or its address when anonymous; return it."""
    key = f"user {username}" if username is not None else f"at {_current.get()}"
    _caller.set(key)
    return key


def peer_host(peer: str) -> str:
    """The address of a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``), no port."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0] if rest.startswith("[") else rest
        return host.strip("[]")
    return peer


def derive(peer: str, metadata: Iterable[tuple[str, Any]] | None, trusted: Networks) -> str:
    """The client address of a call from ``peer`` with this metadata (see the module doc)."""
    host = peer_host(peer)
    if not trusted or not _within(host, trusted):
        return host
    forwarded = [
        value
        for key, value in metadata or ()
        if key == "x-forwarded-for" and isinstance(value, str)
    ]
    if not forwarded:
        return host
    last = ",".join(forwarded).rsplit(",", 1)[-1].strip()
    try:
        return str(ip_address(last))
    except ValueError:
        return host  # not what Envoy appends: someone else wrote it


def _within(host: str, trusted: Networks) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)

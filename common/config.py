"""Configuration from environment variables, the mesh's one config mechanism.

Every setting has a documented default (see README, "Configuration"); services build a frozen
settings object from these helpers once, at start, and pass it down explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.tls import MutualTls

Networks = tuple[IPv4Network | IPv6Network, ...]

METRICS_LISTEN = {
    "users": "127.0.0.1:8100",
    "oms": "127.0.0.1:8101",
    "audit": "127.0.0.1:8102",
}
"""Where each service serves ``/metrics`` by default (``MESH_<SERVICE>_METRICS_LISTEN``):
loopback, since it tells how the mesh is used."""


class ConfigError(ValueError):
    """A setting is present but cannot be used; raised at start so the process fails fast."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def env_networks(name: str, default: str) -> Networks:
    """Comma-separated addresses or CIDR blocks; an empty list (``,``) names none."""
    found: list[IPv4Network | IPv6Network] = []
    for part in env_str(name, default).split(","):
        if part.strip():
            try:
                found.append(ip_network(part.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"{name}: {part.strip()!r} is not an address or CIDR") from exc
    return tuple(found)


def split_address(address: str, setting: str) -> tuple[str, int]:
    """``host:port`` (port 0 picks a free one) as its parts; ConfigError naming ``setting``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{setting} must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def data_dir() -> Path:
    """The folder holding every service's embedded database and keys (``MESH_DATA_DIR``)."""
    path = Path(env_str("MESH_DATA_DIR", ".mesh")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    """Settings every gRPC server of the mesh shares."""

    blocking_threads: int
    """Threads for work that would stall the event loop: SQL and password hashing
    (``MESH_BLOCKING_THREADS``, 16). Streams and in-memory calls never take one."""
    blocking_per_caller: int = 4
    """Of those threads, how many one caller's work may take at once
    (``MESH_BLOCKING_PER_CALLER``, 4); more of its work waits, holding none, while others'
    goes ahead. A caller is a user, or an address when anonymous."""
    max_streams: int
    """Open calls allowed at once per streaming method (``MESH_MAX_STREAMS``, 1024); one more is
    refused with RESOURCE_EXHAUSTED, and the other methods keep theirs."""
    max_streams_per_caller: int = 64
    """Of those, how many one caller may hold (``MESH_MAX_STREAMS_PER_CALLER``, 64): a caller is
    a user, or an address for anonymous calls. One more is refused with RESOURCE_EXHAUSTED, so
    nobody can take every place of a method. WatchRevocations, held by service accounts, has
    no such share."""
    stream_buffer: int
    """Messages waiting for one slow stream before it is ended with RESOURCE_EXHAUSTED
    (``MESH_STREAM_BUFFER``, 1024), so it can neither stall the others nor grow memory."""
    token_cache_entries: int
    """Verified access tokens kept in memory (``MESH_TOKEN_CACHE_ENTRIES``, 10000)."""
    grace_seconds: float
    """Drain period after SIGTERM before RPCs are cancelled (``MESH_GRACE_SECONDS``, 5)."""
    drain_notice_seconds: float = 0.0
    """After SIGTERM, how long a server reports NOT_SERVING while still serving, before it
    stops taking calls (``MESH_DRAIN_NOTICE_SECONDS``, 0): a load balancer's health check sees
    it leave and sends new calls elsewhere first. ``mesh up`` with replicas sets 3, what Envoy's
    check (every second, two failures) takes."""
    log_level: str
    """Log level (``MESH_LOG_LEVEL``, default INFO)."""
    issuer: str
    """Token issuer every service expects (``MESH_TOKEN_ISSUER``, default ``ontology-mesh``)."""
    audience: str
    """Token audience every service expects (``MESH_TOKEN_AUDIENCE``, default ``ontology-mesh``)."""
    trusted_proxies: Networks = ()
    """Peers whose last ``x-forwarded-for`` entry is the client address (``MESH_TRUSTED_PROXIES``,
    the loopback addresses, where ``mesh up`` runs Envoy); see :mod:`common.origin`."""
    denial_window_seconds: float = 60.0
    """At most one event per caller and method reports refused calls in this period; the rest
    are counted into the next one (``MESH_DENIAL_WINDOW_SECONDS``, 60). See
    :mod:`common.denials`."""
    metrics_listen: str = ""
    """Where ``GET /metrics`` is served (``MESH_<SERVICE>_METRICS_LISTEN``, see
    :data:`METRICS_LISTEN`; port 0 picks a free one); empty serves none."""
    tls: MutualTls | None = None
    """Mutual TLS on the server's port and on the channels it opens to other services
    (``MESH_TLS_*``, :mod:`common.tls`); None, the default, is plain gRPC."""
    health_listen: str = ""
    """Where grpc.health.v1 alone is also served, in plaintext
    (``MESH_<SERVICE>_HEALTH_LISTEN``, unset): for Kubernetes' ``grpc`` probes, which speak no
    TLS, when the service port takes mutual TLS only."""

    @classmethod
    def from_env(cls, service: str = "") -> RuntimeSettings:
        """The settings of ``service`` (a :data:`METRICS_LISTEN` key).

        Without one, no metrics and no health port.
        """
        from common.tls import MutualTls  # common.tls reads its settings with this module

        metrics = health = ""
        if service:
            name = f"MESH_{service.upper()}_METRICS_LISTEN"
            metrics = env_str(name, METRICS_LISTEN[service])
            split_address(metrics, name)
            name = f"MESH_{service.upper()}_HEALTH_LISTEN"
            health = env_str(name, "")
            if health:
                split_address(health, name)
        return cls(
            metrics_listen=metrics,
            health_listen=health,
            tls=MutualTls.from_env(),
            blocking_threads=env_int("MESH_BLOCKING_THREADS", 16, minimum=1),
            blocking_per_caller=env_int("MESH_BLOCKING_PER_CALLER", 4, minimum=1),
            max_streams=env_int("MESH_MAX_STREAMS", 1024, minimum=1),
            max_streams_per_caller=env_int("MESH_MAX_STREAMS_PER_CALLER", 64, minimum=1),
            stream_buffer=env_int("MESH_STREAM_BUFFER", 1024, minimum=1),
            token_cache_entries=env_int("MESH_TOKEN_CACHE_ENTRIES", 10_000, minimum=0),
            grace_seconds=env_float("MESH_GRACE_SECONDS", 5.0),
            drain_notice_seconds=env_float("MESH_DRAIN_NOTICE_SECONDS", 0.0),
            log_level=env_str("MESH_LOG_LEVEL", "INFO").upper(),
            issuer=env_str("MESH_TOKEN_ISSUER", "ontology-mesh"),
            audience=env_str("MESH_TOKEN_AUDIENCE", "ontology-mesh"),
            trusted_proxies=env_networks("MESH_TRUSTED_PROXIES", "127.0.0.0/8,::1"),
            denial_window_seconds=env_float("MESH_DENIAL_WINDOW_SECONDS", 60.0),
        )

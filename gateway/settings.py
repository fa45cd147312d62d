"""Settings of the mesh on one machine: replicas, ports, database, gateway limits, tokens."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from common import tracing
from common.config import ConfigError, env_int, env_str
from common.db import SHARED_URL
from common.tls import MutualTls, tls_env
from gateway.supervisor import free_ports


@dataclass(frozen=True)
class TraceExport:
    """Where Envoy sends its spans: the OTLP endpoint the services export to as well."""

    url: str
    """The traces endpoint: ``http://host:port/v1/traces`` for OTLP/HTTP, the server for gRPC."""
    protocol: str
    """``grpc`` or ``http/protobuf``."""
    sampling_percent: float
    """Share of the requests Envoy starts a sampled trace for (``OTEL_TRACES_SAMPLER``)."""

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        if parts.hostname is None:
            raise ConfigError(f"the OTLP endpoint {self.url!r} names no host")
        return parts.hostname, parts.port or (4317 if self.protocol == "grpc" else 4318)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TraceExport | None:
        """As the standard ``OTEL_*`` variables say; None unless they export over OTLP."""
        if tracing.exporter_name(env) != "otlp":
            return None
        protocol = tracing.otlp_protocol(env)
        url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
        if not url:
            base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/")
            default = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
            url = base or default
            if protocol != "grpc":
                url += "/v1/traces"
        sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        percent = 100.0
        if sampler.endswith("always_off"):
            percent = 0.0
        elif sampler.endswith("traceidratio"):
            try:
                percent = 100.0 * float(env.get("OTEL_TRACES_SAMPLER_ARG", "1"))
            except ValueError as exc:
                raise ConfigError("OTEL_TRACES_SAMPLER_ARG must be a number") from exc
        export = cls(url=url, protocol=protocol, sampling_percent=min(100.0, max(0.0, percent)))
        export.host_port  # noqa: B018 - refuse a URL without a host at start
        return export


SERVICES = ("users", "oms", "audit")
REPLICA_PORT_STEP = 10
"""Replica ``i`` (from 0) of a service listens on its first replica's ports plus ``10 * i``:
with the defaults the User Service's are 8000, 8010, ...; its metrics 8100, 8110, ..."""


@dataclass(frozen=True)
class ReplicaPorts:
    """Where one replica beyond the first of each service listens: gRPC and metrics ports."""

    grpc: dict[str, int]
    metrics: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class MeshSettings:
    """Where each process listens and how the gateway treats requests (all from the env)."""

    gateway_host: str = "0.0.0.0"  # noqa: S104 - the gateway is the mesh's public entry point
    """Address the gateway listens on (``MESH_GATEWAY_HOST``)."""
    gateway_port: int = 8080
    """REST and native gRPC entry point (``MESH_GATEWAY_PORT``)."""
    admin_port: int = 9901
    """Envoy's admin interface, always on loopback (``MESH_GATEWAY_ADMIN_PORT``)."""
    users_port: int = 8000
    """User Service gRPC port (``MESH_USERS_PORT``)."""
    oms_port: int = 8001
    """OMS gRPC port (``MESH_OMS_PORT``)."""
    audit_port: int = 8002
    """Audit Service gRPC port (``MESH_AUDIT_PORT``)."""
    reflection_port: int = 8003
    """Reflection server describing every API, so grpcurl works through the gateway
    (``MESH_REFLECTION_PORT``)."""
    users_metrics_port: int = 8100
    """Where the User Service serves ``/metrics``, on loopback (``MESH_USERS_METRICS_PORT``)."""
    oms_metrics_port: int = 8101
    """Where the OMS serves ``/metrics``, on loopback (``MESH_OMS_METRICS_PORT``)."""
    audit_metrics_port: int = 8102
    """Where the Audit Service serves ``/metrics``, on loopback (``MESH_AUDIT_METRICS_PORT``)."""
    gateway_metrics_port: int = 8180
    """Envoy's statistics in Prometheus form, ``GET /stats/prometheus`` and nothing else of the
    admin interface (``MESH_GATEWAY_METRICS_PORT``)."""
    gateway_metrics_host: str = "127.0.0.1"
    """The address that listener binds (``MESH_GATEWAY_METRICS_HOST``): loopback on one machine,
    all addresses in a pod, where Prometheus scrapes it from the pod network."""
    traces: TraceExport | None = None
    """Where Envoy exports its spans, from the ``OTEL_*`` variables (see docs/operations.md);
    None: Envoy passes a client's ``traceparent`` on but starts no trace."""
    upstream_host: str = "127.0.0.1"
    """Host the gateway reaches the services on (``MESH_UPSTREAM_HOST``)."""
    issuer: str = "ontology-mesh"
    """Token issuer checked at the edge (``MESH_TOKEN_ISSUER``)."""
    audience: str = "ontology-mesh"
    """Token audience checked at the edge (``MESH_TOKEN_AUDIENCE``)."""
    unary_timeout_seconds: int = 30
    """Deadline of every unary call through the gateway (``MESH_GATEWAY_TIMEOUT_SECONDS``)."""
    headers_timeout_seconds: int = 10
    """How long a client may take to send a request's headers, from their first byte
    (``MESH_GATEWAY_HEADERS_TIMEOUT_SECONDS``); a client trickling them otherwise holds one of
    the gateway's connections as long as it likes."""
    idle_timeout_seconds: int = 60
    """How long a client's connection may stay open with no request on it, from its opening on
    (``MESH_GATEWAY_IDLE_TIMEOUT_SECONDS``; Envoy's default is an hour). An open stream is a
    request: a quiet event subscription is never cut."""
    max_request_bytes: int = 1024 * 1024
    """Largest REST request body accepted; larger ones get 413 (``MESH_GATEWAY_MAX_BODY_BYTES``)."""
    database_url: str = ""
    """One PostgreSQL database for every service, each in a schema of its own
    (``MESH_DATABASE_URL``, or ``mesh up --database-url``); empty: a SQLite file per service in
    the data folder."""
    more_replicas: tuple[ReplicaPorts, ...] = field(default=())
    """The replicas of each service beyond the first (``MESH_REPLICAS`` or ``mesh up
    --replicas``, 1, less one), on ports :data:`REPLICA_PORT_STEP` apart. More than one needs
    ``database_url``: replicas share their database."""
    jwks_cache_seconds: int = 5
    """How long the gateway keeps the User Service's JWKS before fetching it again in the
    background; it bounds how long after a key rotation the new key's tokens are refused at the
    edge (``MESH_GATEWAY_JWKS_CACHE_SECONDS``). Each fetch is one local call."""
    tls_cert_file: str = ""
    """PEM certificate chain the gateway's listener serves TLS with
    (``MESH_GATEWAY_TLS_CERT_FILE``); empty, with the key, for plain HTTP and h2c."""
    tls_key_file: str = ""
    """PEM private key of that certificate (``MESH_GATEWAY_TLS_KEY_FILE``)."""
    mtls: MutualTls | None = None
    """Mutual TLS between Envoy and the services, and between the services (``MESH_TLS_*``,
    :mod:`common.tls`); None, the default, is plain gRPC behind the gateway."""

    @classmethod
    def from_env(cls) -> MeshSettings:
        defaults = cls()
        settings = cls(
            gateway_host=env_str("MESH_GATEWAY_HOST", defaults.gateway_host),
            gateway_port=_port("MESH_GATEWAY_PORT", defaults.gateway_port),
            admin_port=_port("MESH_GATEWAY_ADMIN_PORT", defaults.admin_port),
            users_port=_port("MESH_USERS_PORT", defaults.users_port),
            oms_port=_port("MESH_OMS_PORT", defaults.oms_port),
            audit_port=_port("MESH_AUDIT_PORT", defaults.audit_port),
            reflection_port=_port("MESH_REFLECTION_PORT", defaults.reflection_port),
            users_metrics_port=_port("MESH_USERS_METRICS_PORT", defaults.users_metrics_port),
            oms_metrics_port=_port("MESH_OMS_METRICS_PORT", defaults.oms_metrics_port),
            audit_metrics_port=_port("MESH_AUDIT_METRICS_PORT", defaults.audit_metrics_port),
            gateway_metrics_port=_port("MESH_GATEWAY_METRICS_PORT", defaults.gateway_metrics_port),
            gateway_metrics_host=env_str(
                "MESH_GATEWAY_METRICS_HOST", defaults.gateway_metrics_host
            ),
            traces=TraceExport.from_env(os.environ),
            upstream_host=env_str("MESH_UPSTREAM_HOST", defaults.upstream_host),
            issuer=env_str("MESH_TOKEN_ISSUER", defaults.issuer),
            audience=env_str("MESH_TOKEN_AUDIENCE", defaults.audience),
            unary_timeout_seconds=env_int(
                "MESH_GATEWAY_TIMEOUT_SECONDS", defaults.unary_timeout_seconds, minimum=1
            ),
            headers_timeout_seconds=env_int(
                "MESH_GATEWAY_HEADERS_TIMEOUT_SECONDS", defaults.headers_timeout_seconds, minimum=1
            ),
            idle_timeout_seconds=env_int(
                "MESH_GATEWAY_IDLE_TIMEOUT_SECONDS", defaults.idle_timeout_seconds, minimum=1
            ),
            max_request_bytes=env_int(
                "MESH_GATEWAY_MAX_BODY_BYTES", defaults.max_request_bytes, minimum=1024
            ),
            jwks_cache_seconds=env_int(
                "MESH_GATEWAY_JWKS_CACHE_SECONDS", defaults.jwks_cache_seconds, minimum=1
            ),
            tls_cert_file=env_str("MESH_GATEWAY_TLS_CERT_FILE", ""),
            tls_key_file=env_str("MESH_GATEWAY_TLS_KEY_FILE", ""),
            mtls=MutualTls.from_env(),
        )
        if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
            raise ConfigError(
                "MESH_GATEWAY_TLS_CERT_FILE and MESH_GATEWAY_TLS_KEY_FILE go together: set both "
                "for TLS, neither for plain HTTP"
            )
        settings = settings.with_replicas(
            env_int("MESH_REPLICAS", 1, minimum=1), env_str(SHARED_URL, "")
        )
        ports = settings.ports()
        if len(set(ports.values())) != len(ports):
            raise ConfigError(f"every process needs its own port, got {ports}")
        return settings

    def with_replicas(self, replicas: int, database_url: str) -> MeshSettings:
        """These settings with ``replicas`` of each service sharing ``database_url``.

        Replicas beyond the first listen :data:`REPLICA_PORT_STEP` ports apart.
        """
        if replicas > 1 and not database_url.startswith("postgresql"):
            raise ConfigError(
                f"{replicas} replicas share one database: give a PostgreSQL URL in "
                "MESH_DATABASE_URL (or --database-url); SQLite serves one process"
            )
        first = self.replica(0)
        more = tuple(
            ReplicaPorts(
                grpc={name: port + REPLICA_PORT_STEP * i for name, port in first.grpc.items()},
                metrics={
                    name: port + REPLICA_PORT_STEP * i for name, port in first.metrics.items()
                },
            )
            for i in range(1, replicas)
        )
        for ports in more:
            for port in (*ports.grpc.values(), *ports.metrics.values()):
                if port > 65535:
                    raise ConfigError(f"{replicas} replicas need ports up to {port}")
        return replace(self, more_replicas=more, database_url=database_url)

    @property
    def replicas(self) -> int:
        return 1 + len(self.more_replicas)

    def replica(self, index: int) -> ReplicaPorts:
        """The ports of replica ``index`` (from 0) of each service."""
        if index:
            return self.more_replicas[index - 1]
        return ReplicaPorts(
            grpc={"users": self.users_port, "oms": self.oms_port, "audit": self.audit_port},
            metrics={
                "users": self.users_metrics_port,
                "oms": self.oms_metrics_port,
                "audit": self.audit_metrics_port,
            },
        )

    def service_ports(self, service: str) -> list[int]:
        """The gRPC port of each replica of ``service``, the first replica's first."""
        return [self.replica(i).grpc[service] for i in range(self.replicas)]

    @classmethod
    def on_free_ports(cls, *, replicas: int = 1, database_url: str = "") -> MeshSettings:
        """Every process on loopback, on a port the kernel says is free.

        Such a mesh runs beside any other, as the end-to-end tests and the benchmarks need.
        """
        spare = free_ports(10 + 6 * (replicas - 1))
        gateway, admin, users, oms, audit, reflection, *metrics = spare[:10]
        more = tuple(
            ReplicaPorts(
                grpc=dict(zip(SERVICES, spare[10 + 6 * i : 13 + 6 * i], strict=True)),
                metrics=dict(zip(SERVICES, spare[13 + 6 * i : 16 + 6 * i], strict=True)),
            )
            for i in range(replicas - 1)
        )
        return cls(
            more_replicas=more,
            database_url=database_url,
            users_metrics_port=metrics[0],
            oms_metrics_port=metrics[1],
            audit_metrics_port=metrics[2],
            gateway_metrics_port=metrics[3],
            gateway_host="127.0.0.1",
            gateway_port=gateway,
            admin_port=admin,
            users_port=users,
            oms_port=oms,
            audit_port=audit,
            reflection_port=reflection,
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` in a child process return these settings."""
        return {
            "MESH_GATEWAY_HOST": self.gateway_host,
            "MESH_GATEWAY_PORT": str(self.gateway_port),
            "MESH_GATEWAY_ADMIN_PORT": str(self.admin_port),
            "MESH_USERS_PORT": str(self.users_port),
            "MESH_OMS_PORT": str(self.oms_port),
            "MESH_AUDIT_PORT": str(self.audit_port),
            "MESH_REFLECTION_PORT": str(self.reflection_port),
            "MESH_USERS_METRICS_PORT": str(self.users_metrics_port),
            "MESH_OMS_METRICS_PORT": str(self.oms_metrics_port),
            "MESH_AUDIT_METRICS_PORT": str(self.audit_metrics_port),
            "MESH_GATEWAY_METRICS_PORT": str(self.gateway_metrics_port),
            "MESH_GATEWAY_METRICS_HOST": self.gateway_metrics_host,
            "MESH_UPSTREAM_HOST": self.upstream_host,
            "MESH_TOKEN_ISSUER": self.issuer,
            "MESH_TOKEN_AUDIENCE": self.audience,
            "MESH_GATEWAY_TIMEOUT_SECONDS": str(self.unary_timeout_seconds),
            "MESH_GATEWAY_HEADERS_TIMEOUT_SECONDS": str(self.headers_timeout_seconds),
            "MESH_GATEWAY_IDLE_TIMEOUT_SECONDS": str(self.idle_timeout_seconds),
            "MESH_GATEWAY_MAX_BODY_BYTES": str(self.max_request_bytes),
            "MESH_GATEWAY_JWKS_CACHE_SECONDS": str(self.jwks_cache_seconds),
            "MESH_GATEWAY_TLS_CERT_FILE": self.tls_cert_file,
            "MESH_GATEWAY_TLS_KEY_FILE": self.tls_key_file,
            SHARED_URL: self.database_url,
            **tls_env(self.mtls),
        }

    @property
    def tls(self) -> bool:
        """Whether the gateway's listener serves TLS (both files set)."""
        return bool(self.tls_cert_file)

    @property
    def gateway_scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def gateway_local_host(self) -> str:
        """Where a client on this machine reaches the gateway (loopback if it listens on all)."""
        return "127.0.0.1" if self.gateway_host in ("0.0.0.0", "") else self.gateway_host  # noqa: S104

    def ports(self) -> dict[str, int]:
        """Each listening port by the process (or interface) that owns it."""
        return {
            "users": self.users_port,
            "oms": self.oms_port,
            "audit": self.audit_port,
            "reflection": self.reflection_port,
            "gateway": self.gateway_port,
            "gateway-admin": self.admin_port,
            "users-metrics": self.users_metrics_port,
            "oms-metrics": self.oms_metrics_port,
            "audit-metrics": self.audit_metrics_port,
            "gateway-metrics": self.gateway_metrics_port,
            **{
                f"{name}-{i + 2}{kind}": port
                for i, ports in enumerate(self.more_replicas)
                for kind, by_service in (("", ports.grpc), ("-metrics", ports.metrics))
                for name, port in by_service.items()
            },
        }

    def metrics_ports(self) -> dict[str, int]:
        """Where each process serves its metrics on loopback, by process name."""
        return {
            "users": self.users_metrics_port,
            "oms": self.oms_metrics_port,
            "audit": self.audit_metrics_port,
            "gateway": self.gateway_metrics_port,
        }


def _port(name: str, default: int) -> int:
    port = env_int(name, default, minimum=1)
    if port > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {port}")
    return port

"""The whole mesh on one machine: three services, the reflection server and Envoy, as one unit.

``mesh up`` runs it until Ctrl-C; the end-to-end tests and the gateway benchmark run the very
same code on free ports in a scratch data folder. With replicas, each service runs that many
processes on their own ports, sharing one PostgreSQL database; Envoy balances over them, and
replica ``i`` of the OMS and the Audit Service prefers replica ``i`` of the services it calls
(the others are its fallbacks, in order).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from types import TracebackType
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.metrics import METRICS_PATH
from common.tls import MutualTls, blocking_channel
from gateway import envoy
from gateway.envoy_config import STATS_PATH
from gateway.settings import SERVICES as SERVICE_NAMES
from gateway.settings import MeshSettings
from gateway.supervisor import ProcessSpec, StartError, Supervisor
from users.bootstrap import ADMIN_PASSWORD_FILE

DRAIN_NOTICE_SECONDS = 3
"""With replicas, how long a replica told to stop keeps serving while its health reports
NOT_SERVING: Envoy's health check (every second, two failures) takes it out of the balancing
first (``MESH_DRAIN_NOTICE_SECONDS``)."""
SERVICES = ("users", "audit", "oms")
"""Start order: the User Service first, and serving before the others start, since they fetch
its keys and follow its revocations from their first moment; Audit before OMS, which sends it
events."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running mesh can be reached."""

    gateway_url: str
    admin_url: str
    grpc_targets: Mapping[str, str]
    """``host:port`` of each service, and of the gateway under ``"gateway"``."""
    data_dir: Path
    metrics_urls: Mapping[str, str]
    """Each process's Prometheus endpoint (on loopback), by process name."""
    replica_targets: Mapping[str, str]
    """``host:port`` of every replica of each service, by process name (``oms``, ``oms-2``)."""

    @property
    def admin_password_file(self) -> Path:
        return self.data_dir / ADMIN_PASSWORD_FILE


class Mesh:
    """Start, watch and stop the mesh's processes; a context manager for tests."""

    def __init__(
        self,
        settings: MeshSettings,
        *,
        data_dir: Path,
        out: TextIO = sys.stdout,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir.resolve()
        self.ready_timeout = ready_timeout
        self.supervisor = Supervisor(out=out, stop_timeout=stop_timeout)
        self._base_env = dict(os.environ if env is None else env)
        host = settings.upstream_host
        self.endpoints = Endpoints(
            gateway_url=f"{settings.gateway_scheme}://{settings.gateway_local_host}:"
            f"{settings.gateway_port}",
            admin_url=f"http://127.0.0.1:{settings.admin_port}",
            grpc_targets={
                "users": f"{host}:{settings.users_port}",
                "oms": f"{host}:{settings.oms_port}",
                "audit": f"{host}:{settings.audit_port}",
                "reflection": f"{host}:{settings.reflection_port}",
                "gateway": f"{settings.gateway_local_host}:{settings.gateway_port}",
            },
            data_dir=self.data_dir,
            metrics_urls={
                name: f"http://127.0.0.1:{port}{STATS_PATH if name == 'gateway' else METRICS_PATH}"
                for name, port in settings.metrics_ports().items()
            },
            replica_targets={
                replica_name(service, i): f"{host}:{port}"
                for service in SERVICE_NAMES
                for i, port in enumerate(settings.service_ports(service))
            },
        )

    def _env(self, replica: int = 0) -> dict[str, str]:
        """What a child sees: the caller's environment plus the mesh's addresses.

        Replica ``replica`` of each service listens on its own ports and calls the User Service
        and the Audit Service at the replica of the same number first.
        """
        s = self.settings
        ports = s.replica(replica)
        host = s.upstream_host
        env = dict(self._base_env)
        env.update(s.to_env())
        env.update(
            {
                "MESH_DATA_DIR": str(self.data_dir),
                "MESH_USERS_ADDR": _target(host, s.service_ports("users"), first=replica),
                "MESH_AUDIT_ADDR": _target(host, s.service_ports("audit"), first=replica),
                "MESH_PUBLIC_URL": self.endpoints.gateway_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if s.replicas > 1:
            env.setdefault("MESH_DRAIN_NOTICE_SECONDS", str(DRAIN_NOTICE_SECONDS))
        for service in SERVICE_NAMES:
            env[f"MESH_{service.upper()}_LISTEN"] = f"{host}:{ports.grpc[service]}"
            env[f"MESH_{service.upper()}_METRICS_LISTEN"] = f"127.0.0.1:{ports.metrics[service]}"
        return env

    def specs(self, envoy_config: Path) -> list[ProcessSpec]:
        s = self.settings
        env = self._env()
        python = sys.executable
        specs = [
            ProcessSpec(
                name=replica_name(name, i),
                argv=[python, "-m", f"{name}.server"],
                env=self._env(i),
                ports=[s.replica(i).grpc[name], s.replica(i).metrics[name]],
            )
            for name in SERVICES
            for i in range(s.replicas)
        ]
        specs.append(
            ProcessSpec(
                name="reflection",
                argv=[python, "-m", "gateway.reflection"],
                env=env,
                ports=[s.reflection_port],
            )
        )
        specs.append(
            ProcessSpec(
                name="gateway",
                argv=envoy.command(envoy_config),
                env=env,
                ports=[s.gateway_port, s.admin_port, s.gateway_metrics_port],
            )
        )
        return specs

    def up(self) -> Endpoints:
        """Start everything and wait until the gateway is healthy and knows the signing keys.

        On any failure, stop what was started and raise :class:`StartError`.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            config = envoy.write_config(self.settings, self.data_dir)
        except OSError as exc:
            raise StartError(f"cannot write the gateway's configuration: {exc}") from exc
        specs = self.specs(config)
        users = self.settings.replicas
        try:
            self.supervisor.check_ports(specs)
            self.supervisor.start(specs[:users])
            self.supervisor.wait_until(
                lambda: self._serving("users"), timeout=self.ready_timeout, what="the User Service"
            )
            self.supervisor.start(specs[users:])
            self.supervisor.wait_until(
                lambda: all(
                    serving(target, self.settings.mtls)
                    for target in self.endpoints.replica_targets.values()
                ),
                timeout=self.ready_timeout,
                what="every replica to serve",
            )
            self.supervisor.wait_until(
                self._healthy, timeout=self.ready_timeout, what="GET /health to return 200"
            )
            self.supervisor.wait_until(
                self._jwks_loaded,
                timeout=self.ready_timeout,
                what="the gateway to fetch the User Service's JWKS",
            )
        except BaseException:
            self.supervisor.stop()
            raise
        return self.endpoints

    def down(self) -> None:
        self.supervisor.stop()

    def __enter__(self) -> Endpoints:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.down()

    def _serving(self, service: str) -> bool:
        targets = self.endpoints.replica_targets
        return all(
            serving(targets[replica_name(service, i)], self.settings.mtls)
            for i in range(self.settings.replicas)
        )

    def _healthy(self) -> bool:
        return _get(f"{self.endpoints.gateway_url}/health", _LOOPBACK_TLS) == 200

    def _jwks_loaded(self) -> bool:
        """True once Envoy has fetched the JWKS; until then it would refuse every token."""
        url = f"{self.endpoints.admin_url}/stats?format=json&filter=jwks_fetch_success"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                stats = json.load(response).get("stats", [])
        except (OSError, ValueError):
            return False
        return any(int(stat.get("value", 0)) > 0 for stat in stats if "value" in stat)


def replica_name(service: str, index: int) -> str:
    """The process name of replica ``index`` (from 0): ``oms``, then ``oms-2``, ``oms-3``..."""
    return service if index == 0 else f"{service}-{index + 1}"


def _target(host: str, ports: Sequence[int], *, first: int) -> str:
    """A gRPC target of every replica, replica ``first`` first.

    gRPC's ``pick_first`` uses the first that answers and moves to the next when it goes away.
    One replica (or a host that is not an IPv4 address) is a plain ``host:port``.
    """
    try:
        several = len(ports) > 1 and isinstance(ip_address(host), IPv4Address)
    except ValueError:
        several = False
    if not several:
        return f"{host}:{ports[first if len(ports) > 1 else 0]}"
    order = [*ports[first:], *ports[:first]]
    return "ipv4:" + ",".join(f"{host}:{port}" for port in order)


def serving(target: str, tls: MutualTls | None = None) -> bool:
    """Whether the gRPC server at ``target`` reports SERVING to a standard health check.

    With ``tls``, asked over mutual TLS with the mesh's own certificate, as Envoy asks.
    """
    with blocking_channel(target, tls) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _loopback_tls() -> ssl.SSLContext:
    """TLS for polling our own gateway on loopback, without checking its certificate.

    The certificate names the public host, not 127.0.0.1, and the peer is the Envoy this process
    started.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_LOOPBACK_TLS = _loopback_tls()


def _get(url: str, context: ssl.SSLContext | None = None) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


__all__ = ["Endpoints", "Mesh", "StartError"]

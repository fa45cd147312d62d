"""The whole mesh on one machine: three services, the reflection server and Envoy, as one unit.

``mesh up`` runs it until Ctrl-C; the end-to-end tests and the gateway benchmark run the very
same code on free ports in a scratch data folder.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.metrics import METRICS_PATH
from gateway import envoy
from gateway.envoy_config import STATS_PATH
from gateway.settings import MeshSettings
from gateway.supervisor import ProcessSpec, StartError, Supervisor
from users.bootstrap import ADMIN_PASSWORD_FILE

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
        )

    def _env(self) -> dict[str, str]:
        """What every child sees: the caller's environment plus the mesh's addresses."""
        s = self.settings
        targets = self.endpoints.grpc_targets
        env = dict(self._base_env)
        env.update(s.to_env())
        env.update(
            {
                "MESH_DATA_DIR": str(self.data_dir),
                "MESH_USERS_LISTEN": targets["users"],
                "MESH_OMS_LISTEN": targets["oms"],
                "MESH_AUDIT_LISTEN": targets["audit"],
                "MESH_USERS_METRICS_LISTEN": f"127.0.0.1:{s.users_metrics_port}",
                "MESH_OMS_METRICS_LISTEN": f"127.0.0.1:{s.oms_metrics_port}",
                "MESH_AUDIT_METRICS_LISTEN": f"127.0.0.1:{s.audit_metrics_port}",
                "MESH_USERS_ADDR": targets["users"],
                "MESH_AUDIT_ADDR": targets["audit"],
                "MESH_PUBLIC_URL": self.endpoints.gateway_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def specs(self, envoy_config: Path) -> list[ProcessSpec]:
        s = self.settings
        env = self._env()
        ports = {"users": s.users_port, "oms": s.oms_port, "audit": s.audit_port}
        python = sys.executable
        specs = [
            ProcessSpec(
                name=name,
                argv=[python, "-m", f"{name}.server"],
                env=env,
                ports=[ports[name], s.metrics_ports()[name]],
            )
            for name in SERVICES
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
        try:
            self.supervisor.check_ports(specs)
            self.supervisor.start(specs[:1])
            users = self.endpoints.grpc_targets["users"]
            self.supervisor.wait_until(
                lambda: serving(users), timeout=self.ready_timeout, what="the User Service"
            )
            self.supervisor.start(specs[1:])
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


def serving(target: str) -> bool:
    """Whether the gRPC server at ``target`` reports SERVING to a standard health check."""
    with grpc.insecure_channel(target) as channel:
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

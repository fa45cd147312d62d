"""Mutual TLS inside the mesh: one certificate per process, for what it serves and what it calls.

Off by default (plain gRPC, as on one machine). With ``MESH_TLS_CERT_FILE``, ``MESH_TLS_KEY_FILE``
and ``MESH_TLS_CA_FILE`` set, a service's port takes only clients whose certificate chains to
the CA, and every call it makes (to the User Service, to the Audit Service) presents its own
certificate and accepts only a server whose certificate chains to the CA and names
``MESH_TLS_SERVER_NAME``. Envoy's clusters read the same settings (:mod:`gateway.envoy_config`).

One set of names rather than one per service: a process has one identity, and a Kubernetes
Secret of type ``kubernetes.io/tls`` (cert-manager's ``tls.crt``, ``tls.key``, ``ca.crt``) mounts
at the same path in every pod, each Deployment its own Secret if it likes. Clients ask for one
server name whatever address they dial, so a multi-address target (the replicas of
``mesh up``), an IP address and a headless Service's name are checked alike.

The files are read when a server or channel is built: a renewed certificate takes a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from common.config import ConfigError, env_str

CERT_FILE = "MESH_TLS_CERT_FILE"
KEY_FILE = "MESH_TLS_KEY_FILE"
CA_FILE = "MESH_TLS_CA_FILE"
SERVER_NAME = "MESH_TLS_SERVER_NAME"
DEFAULT_SERVER_NAME = "mesh.internal"


@dataclass(frozen=True, kw_only=True)
class MutualTls:
    """This process's certificate and key, and the CA its peers' certificates chain to."""

    cert_file: Path
    """PEM certificate chain, served to clients and presented to servers (``MESH_TLS_CERT_FILE``);
    its extended key usage allows both (or it has none)."""
    key_file: Path
    """PEM private key of that certificate (``MESH_TLS_KEY_FILE``)."""
    ca_file: Path
    """PEM CA that both clients' and servers' certificates must chain to (``MESH_TLS_CA_FILE``)."""
    server_name: str = DEFAULT_SERVER_NAME
    """The DNS name every service's certificate carries, which clients check and send as SNI
    (``MESH_TLS_SERVER_NAME``, ``mesh.internal``)."""

    @classmethod
    def from_env(cls) -> MutualTls | None:
        """The settings, or None when none of the three files is set; a partial set fails."""
        files = {name: env_str(name, "") for name in (CERT_FILE, KEY_FILE, CA_FILE)}
        if not any(files.values()):
            return None
        missing = [name for name, value in files.items() if not value]
        if missing:
            raise ConfigError(
                f"{CERT_FILE}, {KEY_FILE} and {CA_FILE} go together for mutual TLS; "
                f"missing {', '.join(missing)}"
            )
        for name, value in files.items():
            if not Path(value).is_file():
                raise ConfigError(f"{name}: no file at {value!r}")
        return cls(
            cert_file=Path(files[CERT_FILE]),
            key_file=Path(files[KEY_FILE]),
            ca_file=Path(files[CA_FILE]),
            server_name=env_str(SERVER_NAME, DEFAULT_SERVER_NAME),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """A port that refuses any client without a certificate from the CA."""
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.ca_file.read_bytes(),
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Present this process's certificate; trust only servers whose chain ends at the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(),
            private_key=self.key_file.read_bytes(),
            certificate_chain=self.cert_file.read_bytes(),
        )

    @property
    def channel_options(self) -> list[tuple[str, str]]:
        """Check (and ask for) :attr:`server_name` rather than the host of the target."""
        return [("grpc.ssl_target_name_override", self.server_name)]


def tls_env(tls: MutualTls | None) -> dict[str, str]:
    """The variables that make :meth:`MutualTls.from_env` in a child return ``tls``."""
    if tls is None:
        return {CERT_FILE: "", KEY_FILE: "", CA_FILE: "", SERVER_NAME: ""}
    return {
        CERT_FILE: str(tls.cert_file),
        KEY_FILE: str(tls.key_file),
        CA_FILE: str(tls.ca_file),
        SERVER_NAME: tls.server_name,
    }


def blocking_channel(target: str, tls: MutualTls | None) -> grpc.Channel:
    """A synchronous channel to a server of the mesh, over mutual TLS when it is on."""
    if tls is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, tls.channel_credentials(), options=tls.channel_options)

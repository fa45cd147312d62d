"""The Kubernetes manifests of the mesh, and the Envoy configuration they mount.

``make generate`` writes them to ``deploy/kubernetes/`` (see docs/deploy.md), rendering Envoy's
configuration with the same :func:`gateway.envoy_config.render` as ``envoy.yaml``, so the
routes, the JWT exemptions and the transcoder can never drift between the two. The three
Deployments are built by one function, so they differ only where the services do.

Secrets are named, never contained: an operator creates them (docs/deploy.md says how).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from common.tls import MutualTls, tls_env
from gateway import envoy_config as envoy_rendering
from gateway.settings import MeshSettings

Config = dict[str, Any]

PART_OF = "ontology-mesh"
IMAGE = f"{PART_OF}:{metadata.version(PART_OF)}"
"""The one image of every container (the Dockerfile at the root); retag it with kustomize."""
VENV = "/opt/mesh"
"""Where the Dockerfile installs the mesh: its virtual environment."""
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
DATA_DIR = "/var/lib/mesh"
"""``MESH_DATA_DIR`` in every pod: an emptyDir, since the databases are PostgreSQL."""
ENVOY_CONFIG_DIR = "/etc/envoy"
ENVOY_CONFIG_FILE = "envoy.yaml"
TLS_DIR = "/etc/mesh/gateway-tls"
INTERNAL_TLS_DIR = "/etc/mesh/internal-tls"
"""Where every pod but the reflection server mounts the mesh's own certificate (mutual TLS)."""
USER_ID = 10001
"""The image's non-root user and group (Dockerfile)."""
SETTINGS_DEFAULTS = MeshSettings()
"""The ports: the defaults everywhere, as on one machine."""

SETTINGS_CONFIGMAP = "mesh-settings"
ENVOY_CONFIGMAP = "mesh-envoy"
ADMIN_SECRET = "mesh-admin"  # noqa: S105 - a Secret's name, not a secret
SERVICE_ACCOUNTS_SECRET = "mesh-service-accounts"  # noqa: S105 - a name
KEY_ENCRYPTION_SECRET = "mesh-key-encryption-key"  # noqa: S105 - a name
AUDIT_LOG_KEY_SECRET = "mesh-audit-log-key"  # noqa: S105 - a name
GATEWAY_TLS_SECRET = "mesh-gateway-tls"  # noqa: S105 - a name
INTERNAL_TLS_SECRET = "mesh-internal-tls"  # noqa: S105 - a name
SERVICE_ACCOUNTS_FILE = "service-accounts.json"
AUDIT_LOG_KEY_FILE = "audit-log-key.pem"


MESH_TLS = MutualTls(
    cert_file=Path(f"{INTERNAL_TLS_DIR}/tls.crt"),
    key_file=Path(f"{INTERNAL_TLS_DIR}/tls.key"),
    ca_file=Path(f"{INTERNAL_TLS_DIR}/ca.crt"),
)
"""Mutual TLS between Envoy and the services and between the services, from the keys of a
``kubernetes.io/tls`` Secret as cert-manager writes it (``tls.crt``, ``tls.key``, ``ca.crt``)."""
INTERNAL_TLS_VOLUME: Config = {
    "name": "internal-tls",
    "secret": {"secretName": INTERNAL_TLS_SECRET, "defaultMode": 0o440},
}
INTERNAL_TLS_MOUNT: Config = {
    "name": "internal-tls",
    "mountPath": INTERNAL_TLS_DIR,
    "readOnly": True,
}


def database_secret(service: str) -> str:
    """The Secret holding ``MESH_<SERVICE>_DATABASE_URL`` under the key ``url``."""
    return f"mesh-{service}-database"


SETTINGS = {
    "MESH_PUBLIC_URL": "https://mesh.example.com",
    "MESH_TRUSTED_PROXIES": "10.0.0.0/8",
    "MESH_AUDIT_LOG_ORIGIN": "mesh.example.com/audit",
    "MESH_LOG_LEVEL": "INFO",
}
"""What differs per installation (``mesh-settings``; change it with a kustomize overlay): the
public URL, the pod network the gateway's address is in, and the audit log's name."""


@dataclass(frozen=True)
class Workload:
    """What one service's Deployment needs beyond what every pod of the mesh has."""

    name: str
    command: list[str]
    port: int
    metrics_port: int
    health_port: int
    """grpc.health.v1 alone, in plaintext, for the kubelet's probes (the service port takes
    mutual TLS only)."""
    cpu: tuple[str, str]
    """Request and limit."""
    memory: tuple[str, str]
    env: list[Config] = field(default_factory=list)
    secret_files: list[tuple[str, str, str]] = field(default_factory=list)
    """``(secret, key, path)``: one key of a Secret mounted as one file."""


def _env(name: str, value: str) -> Config:
    return {"name": name, "value": value}


def _from_secret(name: str, secret: str, key: str) -> Config:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def _meta(name: str) -> Config:
    return {"name": name, "labels": _labels(name)}


def _workloads() -> list[Workload]:
    s = SETTINGS_DEFAULTS
    service_accounts = (
        SERVICE_ACCOUNTS_SECRET,
        SERVICE_ACCOUNTS_FILE,
        f"{DATA_DIR}/{SERVICE_ACCOUNTS_FILE}",
    )
    users_addr = _env("MESH_USERS_ADDR", f"users:{s.users_port}")
    audit_addr = _env("MESH_AUDIT_ADDR", f"audit:{s.audit_port}")
    return [
        Workload(
            name="users",
            command=["mesh-users"],
            port=s.users_port,
            metrics_port=s.users_metrics_port,
            health_port=8200,
            # Up to MESH_BLOCKING_THREADS (16) argon2id hashes of 19 MiB at once, beside about
            # 124 MiB at rest; a login costs 21 ms of one core (docs/deploy.md).
            cpu=("1", "2"),
            memory=("256Mi", "512Mi"),
            env=[
                audit_addr,
                _from_secret("MESH_ADMIN_PASSWORD", ADMIN_SECRET, "password"),
                _env(
                    "MESH_KEY_ENCRYPTION_KEY_FILE",
                    f"/etc/mesh/{KEY_ENCRYPTION_SECRET}/key",
                ),
            ],
            secret_files=[
                service_accounts,
                (KEY_ENCRYPTION_SECRET, "key", f"/etc/mesh/{KEY_ENCRYPTION_SECRET}/key"),
            ],
        ),
        Workload(
            name="oms",
            command=["mesh-oms"],
            port=s.oms_port,
            metrics_port=s.oms_metrics_port,
            health_port=8201,
            # The cache (MESH_OMS_CACHE_ENTRIES, 50,000 entries of up to ~15 KB) is what grows.
            cpu=("500m", "2"),
            memory=("256Mi", "1Gi"),
            env=[users_addr, audit_addr],
            secret_files=[service_accounts],
        ),
        Workload(
            name="audit",
            command=["mesh-audit"],
            port=s.audit_port,
            metrics_port=s.audit_metrics_port,
            health_port=8202,
            cpu=("500m", "2"),
            memory=("256Mi", "512Mi"),
            env=[
                users_addr,
                _env("MESH_AUDIT_LOG_KEY_FILE", f"{DATA_DIR}/{AUDIT_LOG_KEY_FILE}"),
            ],
            # Into the data folder, not a folder of its own: the log remembers its last
            # checkpoint in a file beside the key, which must be writable.
            secret_files=[
                service_accounts,
                (AUDIT_LOG_KEY_SECRET, AUDIT_LOG_KEY_FILE, f"{DATA_DIR}/{AUDIT_LOG_KEY_FILE}"),
            ],
        ),
    ]


def _security_context() -> Config:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _resources(cpu: tuple[str, str], memory: tuple[str, str]) -> Config:
    return {
        "requests": {"cpu": cpu[0], "memory": memory[0]},
        "limits": {"cpu": cpu[1], "memory": memory[1]},
    }


def _grpc_probes(port: int) -> Config:
    """Kubernetes' own gRPC probes against grpc.health.v1 (the overall service, ``""``).

    A server reports NOT_SERVING until its dependencies are ready (the revocation view) and
    from SIGTERM on: the startup probe gives it two minutes, readiness then takes it out of
    the Service within ten seconds, and liveness restarts one that stops answering.
    """
    check = {"grpc": {"port": port}}
    return {
        "startupProbe": {**check, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**check, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**check, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
    }


def _container(
    name: str,
    command: list[str],
    *,
    ports: list[tuple[str, int]],
    cpu: tuple[str, str],
    memory: tuple[str, str],
    env: list[Config],
    mounts: list[Config],
    probes: Config,
) -> Config:
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports],
        "env": env,
        "volumeMounts": mounts,
        "resources": _resources(cpu, memory),
        "securityContext": _security_context(),
        # The pod leaves the Service's endpoints (and Envoy's DNS view, refreshed every 5 s)
        # while it still serves; only then does SIGTERM start the drain.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        **probes,
    }


def _deployment(
    name: str, containers: list[Config], volumes: list[Config], annotations: dict[str, str]
) -> Config:
    template_meta: Config = {"labels": _labels(name)}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": _labels(name)},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER_ID,
                        "runAsGroup": USER_ID,
                        "fsGroup": USER_ID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": _labels(name)},
                        }
                    ],
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }


def _pdb(name: str) -> Config:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(name)}},
    }


def _service(
    name: str, ports: list[tuple[str, int, int]], *, headless: bool, selecting: str = ""
) -> Config:
    """``ports`` are ``(name, port, target port)``; the pods of ``selecting`` (else ``name``).

    A headless Service resolves to every ready pod, so Envoy's STRICT_DNS cluster balances
    and health-checks each pod (behind a virtual IP one HTTP/2 connection would go to one).
    """
    spec: Config = {
        "selector": _labels(selecting or name),
        "ports": [
            {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
            for port_name, port, target in ports
        ],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name), "spec": spec}


SCRATCH_VOLUMES: list[Config] = [
    {"name": "data", "emptyDir": {}},
    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
]
SCRATCH_MOUNTS: list[Config] = [
    {"name": "data", "mountPath": DATA_DIR},
    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
]


def _service_documents(workload: Workload) -> list[Config]:
    name = workload.name
    env = [
        _env("MESH_DATA_DIR", DATA_DIR),
        _env(f"MESH_{name.upper()}_LISTEN", f"0.0.0.0:{workload.port}"),
        _env(f"MESH_{name.upper()}_METRICS_LISTEN", f"0.0.0.0:{workload.metrics_port}"),
        _env(f"MESH_{name.upper()}_HEALTH_LISTEN", f"0.0.0.0:{workload.health_port}"),
        *(_env(key, value) for key, value in tls_env(MESH_TLS).items()),
        _from_secret(f"MESH_{name.upper()}_DATABASE_URL", database_secret(name), "url"),
        *workload.env,
    ]
    mounts: list[Config] = [*SCRATCH_MOUNTS, INTERNAL_TLS_MOUNT]
    volumes: list[Config] = [*SCRATCH_VOLUMES, INTERNAL_TLS_VOLUME]
    for secret in dict.fromkeys(secret for secret, _, _ in workload.secret_files):
        volumes.append({"name": secret, "secret": {"secretName": secret, "defaultMode": 0o440}})
    for secret, key, path in workload.secret_files:
        mounts.append({"name": secret, "mountPath": path, "subPath": key, "readOnly": True})
    container = _container(
        name,
        workload.command,
        ports=[
            ("grpc", workload.port),
            ("metrics", workload.metrics_port),
            ("health", workload.health_port),
        ],
        cpu=workload.cpu,
        memory=workload.memory,
        env=env,
        mounts=mounts,
        probes=_grpc_probes(workload.health_port),
    )
    container["envFrom"] = [{"configMapRef": {"name": SETTINGS_CONFIGMAP}}]
    return [
        _deployment(name, [container], volumes, {}),
        _service(
            name,
            [
                ("grpc", workload.port, workload.port),
                ("metrics", workload.metrics_port, workload.metrics_port),
            ],
            headless=True,
        ),
        _pdb(name),
    ]


def envoy_settings() -> MeshSettings:
    """The gateway's settings in a pod: the defaults, with TLS from the mounted Secrets."""
    return MeshSettings(
        tls_cert_file=f"{TLS_DIR}/tls.crt",
        tls_key_file=f"{TLS_DIR}/tls.key",
        mtls=MESH_TLS,
        gateway_metrics_host="0.0.0.0",  # noqa: S104 - Prometheus scrapes it from the pod network
    )


SERVICE_HOSTS = {"users": "users", "oms": "oms", "audit": "audit"}
"""Each service's cluster in Envoy: the name of its headless Service (the same namespace)."""


def envoy_config(descriptor_set: descriptor_pb2.FileDescriptorSet) -> Config:
    """Envoy's configuration in a pod: the services by DNS, the image's descriptor set."""
    return envoy_rendering.render(
        descriptor_set,
        envoy_settings(),
        descriptor=f"{SITE_PACKAGES}/gateway/descriptor.pb",
        openapi=f"{SITE_PACKAGES}/gateway/openapi.json",
        hosts=SERVICE_HOSTS,
    )


def _gateway_documents(envoy_yaml: str) -> list[Config]:
    s = envoy_settings()
    envoy = _container(
        "envoy",
        ["envoy", "-c", f"{ENVOY_CONFIG_DIR}/{ENVOY_CONFIG_FILE}", "--disable-hot-restart"],
        ports=[("https", s.gateway_port), ("metrics", s.gateway_metrics_port)],
        # About 76 MiB at rest; 467 us of CPU per checked 3.5 KB write (docs/deploy.md).
        cpu=("500m", "2"),
        memory=("128Mi", "512Mi"),
        env=[],
        mounts=[
            {"name": "envoy-config", "mountPath": ENVOY_CONFIG_DIR, "readOnly": True},
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            INTERNAL_TLS_MOUNT,
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
        ],
        # The listener opens once every cluster is initialised. Readiness is that, not
        # /health: /health is 503 while any one service is down, and a gateway taken out of
        # the load balancer for that would refuse the other services' calls too.
        probes={
            "readinessProbe": {"tcpSocket": {"port": s.gateway_port}, "periodSeconds": 5},
            "livenessProbe": {
                "tcpSocket": {"port": s.gateway_port},
                "periodSeconds": 10,
                "failureThreshold": 3,
            },
        },
    )
    reflection = _container(
        "reflection",
        ["python", "-m", "gateway.reflection"],
        ports=[("reflection", s.reflection_port)],
        cpu=("50m", "500m"),
        memory=("64Mi", "128Mi"),
        # The kubelet probes the pod's address, not loopback; Envoy reaches it on loopback.
        env=[_env("MESH_LOG_LEVEL", "WARNING"), _env("MESH_UPSTREAM_HOST", "0.0.0.0")],  # noqa: S104
        mounts=[{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - a private emptyDir
        probes=_grpc_probes(s.reflection_port),
    )
    volumes = [
        {"name": "envoy-config", "configMap": {"name": ENVOY_CONFIGMAP}},
        {"name": "tls", "secret": {"secretName": GATEWAY_TLS_SECRET, "defaultMode": 0o440}},
        INTERNAL_TLS_VOLUME,
        SCRATCH_VOLUMES[1],
    ]
    digest = hashlib.sha256(envoy_yaml.encode()).hexdigest()
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(ENVOY_CONFIGMAP),
            "data": {ENVOY_CONFIG_FILE: envoy_yaml},
        },
        # The configuration's digest on the pods: a new configuration rolls them.
        _deployment("gateway", [envoy, reflection], volumes, {"mesh/envoy-config-sha256": digest}),
        _service("gateway", [("https", 443, s.gateway_port)], headless=False),
        # Every gateway pod by its address, for Prometheus's endpoint discovery; no client port.
        _service(
            "gateway-metrics",
            [("metrics", s.gateway_metrics_port, s.gateway_metrics_port)],
            headless=True,
            selecting="gateway",
        ),
        _pdb("gateway"),
    ]


def _network_policies() -> list[Config]:
    """The services' gRPC ports admit the mesh's own pods only; the gateway admits anyone.

    That is what makes ``MESH_TRUSTED_PROXIES`` (the pod network) safe: no pod outside the
    mesh can reach a service and claim a client address (mutual TLS refuses such a pod's
    handshake too). The plaintext health ports admit anyone: the kubelet probes from the node,
    and they answer nothing but health.
    """
    services = _workloads()
    selector = {
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/name",
                "operator": "In",
                "values": [w.name for w in services],
            }
        ]
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("mesh-services"),
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}}}
                        ],
                        "ports": [{"port": w.port, "protocol": "TCP"} for w in services],
                    },
                    {
                        # The kubelet's probes, from the node; health alone, in plaintext.
                        "ports": [{"port": w.health_port, "protocol": "TCP"} for w in services],
                    },
                    {
                        # Prometheus, wherever it runs; narrow it to its namespace.
                        "from": [{"namespaceSelector": {}}],
                        "ports": [{"port": w.metrics_port, "protocol": "TCP"} for w in services],
                    },
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("mesh-gateway"),
            "spec": {
                "podSelector": {"matchLabels": _labels("gateway")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"ports": [{"port": SETTINGS_DEFAULTS.gateway_port, "protocol": "TCP"}]},
                    {
                        # Prometheus, wherever it runs; narrow it to its namespace.
                        "from": [{"namespaceSelector": {}}],
                        "ports": [
                            {"port": SETTINGS_DEFAULTS.gateway_metrics_port, "protocol": "TCP"}
                        ],
                    },
                ],
            },
        },
    ]


def manifests(envoy_yaml: str) -> dict[str, list[Config]]:
    """Every manifest file by name, each a list of documents.

    ``envoy_yaml`` is the text of :func:`envoy_config` that the gateway's ConfigMap holds.
    """
    files: dict[str, list[Config]] = {
        "settings.yaml": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(SETTINGS_CONFIGMAP),
                "data": dict(SETTINGS),
            }
        ],
    }
    for workload in _workloads():
        files[f"{workload.name}.yaml"] = _service_documents(workload)
    files["gateway.yaml"] = _gateway_documents(envoy_yaml)
    files["network-policies.yaml"] = _network_policies()
    files["kustomization.yaml"] = [
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(files),
        }
    ]
    return files

"""The Kubernetes manifests: valid against the API's schemas, safe, and consistent with Envoy's.

No cluster runs here, so each document is checked against Kubernetes' own OpenAPI schemas
(kubernetes-validate, strict: an unknown field fails), and the rules that matter to the mesh
are asserted on what the documents say.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.users_client import SERVICE_ACCOUNTS_FILE
from gateway import envoy, kubernetes
from gateway.settings import MeshSettings
from tests.support.tls import make_certificates

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
SERVICES = ("users", "oms", "audit")


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((FOLDER / name).read_text()) if doc]


def _resources() -> list[dict[str, Any]]:
    files = _documents("kustomization.yaml")[0]["resources"]
    return [doc for name in files for doc in _documents(name)]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _resources() if doc["kind"] == kind}


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for deployment in _by_kind("Deployment").values()
        for container in deployment["spec"]["template"]["spec"]["containers"]
    ]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container["env"]}


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mount["mountPath"]: mount for mount in container["volumeMounts"]}


def test_the_kustomization_lists_every_manifest() -> None:
    listed = _documents("kustomization.yaml")[0]["resources"]
    assert sorted(listed) == sorted(
        p.name for p in FOLDER.glob("*.yaml") if p.name != "kustomization.yaml"
    )


@pytest.mark.parametrize(
    "document",
    _resources(),
    ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}",
)
def test_every_document_is_valid_for_the_kubernetes_api(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_what_the_api_would() -> None:
    deployment = _by_kind("Deployment")["users"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_no_secret_is_contained_and_each_one_referenced_is_documented() -> None:
    assert "Secret" not in {doc["kind"] for doc in _resources()}
    referenced = set()
    for deployment in _by_kind("Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        referenced |= {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        for container in spec["containers"]:
            referenced |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            }
    assert {kubernetes.database_secret(s) for s in SERVICES} <= referenced
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert [name for name in sorted(referenced) if f"`{name}`" not in guide] == []


def test_every_pod_runs_as_the_image_user_and_not_as_root() -> None:
    for deployment in _by_kind("Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == kubernetes.USER_ID
        assert spec["automountServiceAccountToken"] is False


def test_every_container_is_locked_down_and_sized() -> None:
    for container in _containers():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, container["name"]


def _port(container: dict[str, Any], setting: str) -> int:
    return int(_env(container)[setting]["value"].rpartition(":")[2])


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_probed_over_plaintext_health_on_its_health_port(service: str) -> None:
    """The service port takes mutual TLS only, which the kubelet's gRPC probes do not speak."""
    (container,) = _by_kind("Deployment")[service]["spec"]["template"]["spec"]["containers"]
    port = _port(container, f"MESH_{service.upper()}_LISTEN")
    health = _port(container, f"MESH_{service.upper()}_HEALTH_LISTEN")
    assert health != port
    assert {"name": "grpc", "containerPort": port} in container["ports"]
    assert {"name": "health", "containerPort": health} in container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": health}, probe
    assert container["command"] == [f"mesh-{service}"]
    rules = _by_kind("NetworkPolicy")["mesh-services"]["spec"]["ingress"]
    from_anywhere = [p["port"] for rule in rules if "from" not in rule for p in rule["ports"]]
    assert health in from_anywhere  # the kubelet probes from the node
    assert port not in from_anywhere


def test_every_service_and_envoy_take_mutual_tls_from_the_mounted_secret() -> None:
    deployments = _by_kind("Deployment")
    envoy_config = _envoy_config()
    clusters = {c["name"]: c for c in envoy_config["static_resources"]["clusters"]}
    for service in SERVICES:
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        volumes = {
            v["name"]: v for v in deployments[service]["spec"]["template"]["spec"]["volumes"]
        }
        env = _env(container)
        for setting in ("MESH_TLS_CERT_FILE", "MESH_TLS_KEY_FILE", "MESH_TLS_CA_FILE"):
            folder, _, _ = env[setting]["value"].rpartition("/")
            mount = _mounts(container)[folder]
            assert volumes[mount["name"]]["secret"]["secretName"] == kubernetes.INTERNAL_TLS_SECRET
        context = clusters[service]["transport_socket"]["typed_config"]["common_tls_context"]
        assert (
            context["validation_context"]["trusted_ca"]["filename"]
            == (env["MESH_TLS_CA_FILE"]["value"])
        )
        assert (
            context["tls_certificates"][0]["certificate_chain"]["filename"]
            == (env["MESH_TLS_CERT_FILE"]["value"])
        )
    gateway = deployments["gateway"]["spec"]["template"]["spec"]
    envoy_container = next(c for c in gateway["containers"] if c["name"] == "envoy")
    assert kubernetes.INTERNAL_TLS_DIR in _mounts(envoy_container)


def test_what_the_kubelet_probes_listens_on_the_pods_address_not_loopback() -> None:
    gateway = _by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
    reflection = next(c for c in gateway if c["name"] == "reflection")
    assert reflection["readinessProbe"]["grpc"]["port"] == MeshSettings().reflection_port
    assert _env(reflection)["MESH_UPSTREAM_HOST"]["value"] == "0.0.0.0"
    for service in SERVICES:
        (container,) = _by_kind("Deployment")[service]["spec"]["template"]["spec"]["containers"]
        for name in (f"MESH_{service.upper()}_LISTEN", f"MESH_{service.upper()}_METRICS_LISTEN"):
            assert _env(container)[name]["value"].startswith("0.0.0.0:"), name


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_takes_its_database_url_from_its_own_secret(service: str) -> None:
    (container,) = _by_kind("Deployment")[service]["spec"]["template"]["spec"]["containers"]
    url = _env(container)[f"MESH_{service.upper()}_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {
        "name": kubernetes.database_secret(service),
        "key": "url",
    }


def test_the_files_the_services_read_are_where_their_settings_say() -> None:
    deployments = _by_kind("Deployment")
    for service in SERVICES:
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        data = _env(container)["MESH_DATA_DIR"]["value"]
        assert _mounts(container)[data]["name"] == "data"
        accounts = _mounts(container)[f"{data}/{SERVICE_ACCOUNTS_FILE}"]
        assert accounts["name"] == kubernetes.SERVICE_ACCOUNTS_SECRET
    (audit,) = deployments["audit"]["spec"]["template"]["spec"]["containers"]
    key = _mounts(audit)[_env(audit)["MESH_AUDIT_LOG_KEY_FILE"]["value"]]
    assert key["name"] == kubernetes.AUDIT_LOG_KEY_SECRET
    (users,) = deployments["users"]["spec"]["template"]["spec"]["containers"]
    kek = _mounts(users)[_env(users)["MESH_KEY_ENCRYPTION_KEY_FILE"]["value"]]
    assert kek["name"] == kubernetes.KEY_ENCRYPTION_SECRET


def test_every_deployment_has_a_service_and_a_disruption_budget_selecting_its_pods() -> None:
    services, budgets = _by_kind("Service"), _by_kind("PodDisruptionBudget")
    for name, deployment in _by_kind("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert deployment["spec"]["replicas"] > budgets[name]["spec"]["maxUnavailable"]
        ports = {
            p["containerPort"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        assert {p["targetPort"] for p in services[name]["spec"]["ports"]} <= ports


def _envoy_config() -> dict[str, Any]:
    configmap = _by_kind("ConfigMap")[kubernetes.ENVOY_CONFIGMAP]
    return dict(yaml.safe_load(configmap["data"][kubernetes.ENVOY_CONFIG_FILE]))


def test_envoy_reaches_each_service_at_its_headless_service_by_dns() -> None:
    services = _by_kind("Service")
    clusters = {c["name"]: c for c in _envoy_config()["static_resources"]["clusters"]}
    for name in SERVICES:
        cluster = clusters[name]
        assert cluster["type"] == "STRICT_DNS"
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        service = services[address["address"]]
        assert service["spec"]["clusterIP"] == "None"
        grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
        assert grpc_port["port"] == address["port_value"]
        assert cluster["health_checks"][0]["grpc_health_check"] == {}


def test_envoy_serves_tls_from_the_mounted_secret_with_the_mounted_configuration() -> None:
    gateway = _by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]
    container = next(c for c in gateway["containers"] if c["name"] == "envoy")
    volumes = {v["name"]: v for v in gateway["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    tls_dir = next(
        path
        for name, path in mounts.items()
        if volumes[name].get("secret", {}).get("secretName") == kubernetes.GATEWAY_TLS_SECRET
    )
    chain = _envoy_config()["static_resources"]["listeners"][0]["filter_chains"][0]
    (certificate,) = chain["transport_socket"]["typed_config"]["common_tls_context"][
        "tls_certificates"
    ]
    assert certificate["certificate_chain"]["filename"] == f"{tls_dir}/tls.crt"
    assert certificate["private_key"]["filename"] == f"{tls_dir}/tls.key"
    config_dir = mounts["envoy-config"]
    assert volumes["envoy-config"]["configMap"]["name"] == kubernetes.ENVOY_CONFIGMAP
    assert container["command"][:3] == [
        "envoy",
        "-c",
        f"{config_dir}/{kubernetes.ENVOY_CONFIG_FILE}",
    ]


def test_envoy_accepts_the_configuration_of_the_configmap(tmp_path: Path) -> None:
    """With the image's paths pointed at this checkout and certificates made here."""
    certs = make_certificates(tmp_path)
    (tmp_path / "tls.crt").write_bytes(certs.cert.read_bytes())
    (tmp_path / "tls.key").write_bytes(certs.key.read_bytes())
    (tmp_path / "ca.crt").write_bytes(certs.ca.read_bytes())
    configmap = _by_kind("ConfigMap")[kubernetes.ENVOY_CONFIGMAP]
    text = (
        configmap["data"][kubernetes.ENVOY_CONFIG_FILE]
        .replace(f"{kubernetes.SITE_PACKAGES}/gateway/", f"{ROOT}/gateway/")
        .replace(kubernetes.TLS_DIR, str(tmp_path))
        .replace(kubernetes.INTERNAL_TLS_DIR, str(tmp_path))
    )
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    result = subprocess.run(
        envoy.validate_command(path), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_envoy_configuration_rolls_the_gateway_pods() -> None:
    configmap = _by_kind("ConfigMap")[kubernetes.ENVOY_CONFIGMAP]
    text = configmap["data"][kubernetes.ENVOY_CONFIG_FILE]
    annotations = _by_kind("Deployment")["gateway"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["mesh/envoy-config-sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_prometheus_reaches_envoys_statistics_in_each_pod_and_never_its_admin_interface() -> None:
    config = _envoy_config()
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    metrics = listeners["metrics"]["address"]["socket_address"]
    assert metrics["address"] == "0.0.0.0"
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    gateway = _by_kind("Deployment")["gateway"]["spec"]["template"]
    envoy_ports = {
        p["name"]: p["containerPort"]
        for c in gateway["spec"]["containers"]
        if c["name"] == "envoy"
        for p in c["ports"]
    }
    assert envoy_ports["metrics"] == metrics["port_value"]
    scraped = _by_kind("Service")["gateway-metrics"]["spec"]
    assert scraped["clusterIP"] == "None"
    assert scraped["selector"].items() <= gateway["metadata"]["labels"].items()
    assert [p["targetPort"] for p in scraped["ports"]] == [metrics["port_value"]]
    policy = _by_kind("NetworkPolicy")["mesh-gateway"]["spec"]["ingress"]
    admitted = {p["port"] for rule in policy for p in rule["ports"]}
    assert metrics["port_value"] in admitted
    assert config["admin"]["address"]["socket_address"]["port_value"] not in admitted

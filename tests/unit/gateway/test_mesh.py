"""The mesh refuses, with a StartError naming the cause, to start where it cannot write."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.mesh import Mesh, StartError
from gateway.settings import MeshSettings


def test_a_data_folder_that_cannot_be_made_is_a_start_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    mesh = Mesh(MeshSettings(), data_dir=blocker / "data", out=io.StringIO())
    with pytest.raises(StartError, match="cannot write the gateway's configuration"):
        mesh.up()
    assert mesh.supervisor.exited() is None


def test_each_replica_listens_on_its_own_ports_and_calls_its_own_number_first(
    tmp_path: Path,
) -> None:
    settings = MeshSettings(upstream_host="127.0.0.1").with_replicas(2, "postgresql://db/mesh")
    mesh = Mesh(settings, data_dir=tmp_path, out=io.StringIO(), env={"PATH": "/usr/bin"})
    specs = {spec.name: spec for spec in mesh.specs(tmp_path / "envoy.json")}
    assert {"users", "users-2", "oms", "oms-2", "audit", "audit-2"} <= set(specs)
    second = specs["oms-2"].env
    assert second["MESH_OMS_LISTEN"] == "127.0.0.1:8011"
    assert second["MESH_OMS_METRICS_LISTEN"] == "127.0.0.1:8111"
    assert second["MESH_USERS_ADDR"] == "ipv4:127.0.0.1:8010,127.0.0.1:8000"
    assert specs["oms"].env["MESH_AUDIT_ADDR"] == "ipv4:127.0.0.1:8002,127.0.0.1:8012"
    assert second["MESH_DATABASE_URL"] == "postgresql://db/mesh"
    assert second["MESH_DRAIN_NOTICE_SECONDS"] == "3"
    single = Mesh(MeshSettings(), data_dir=tmp_path, out=io.StringIO(), env={})
    alone = {spec.name: spec for spec in single.specs(tmp_path / "envoy.json")}["oms"].env
    assert alone["MESH_USERS_ADDR"] == "127.0.0.1:8000"
    assert "MESH_DRAIN_NOTICE_SECONDS" not in alone

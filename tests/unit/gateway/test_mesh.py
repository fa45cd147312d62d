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

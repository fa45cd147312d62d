"""A full disk: every service answers 503 with a reason and writes nothing half-way.

Each works again once there is room. The mesh's data folder is a small tmpfs, which needs root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.mesh import Mesh
from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, bearer, login, mesh_env

DISK_BYTES = 16 * 1024 * 1024
ATTEMPTS = 400
"""Writes tried per service once the disk is full: SQLite may still fit a few into pages it
holds already (its WAL file is reused, not grown), the next ones need space."""


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write until the disk refuses; the file that fills it."""
    filler = path / "filler"
    # Unbuffered: a buffered file would flush what the full disk refused again on close,
    # and raise there, depending on where the disk happened to fill.
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def first_refusal(write: Callable[[int], httpx.Response]) -> tuple[int, httpx.Response]:
    """Try writes until one is refused; it must be a 503, never a 500 or another error."""
    for attempt in range(ATTEMPTS):
        response = write(attempt)
        if response.status_code != 200:
            assert response.status_code == 503, response.text
            return attempt, response
    raise AssertionError(f"{ATTEMPTS} writes fitted on a full disk")


def reason(response: httpx.Response) -> str:
    body = response.json()
    assert body["code"] == 14
    return next(d["reason"] for d in body["details"] if d["@type"].endswith("ErrorInfo"))


def test_a_full_disk_is_503_in_every_service_and_nothing_is_half_written(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        log = tmp_path / "mesh.log"
        with (
            log.open("w") as out,
            Mesh(MeshSettings.on_free_ports(), data_dir=disk, out=out, env=mesh_env()) as mesh,
            httpx.Client(base_url=mesh.gateway_url, timeout=10) as client,
        ):
            admin = bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))
            run = uuid.uuid4().hex[:8]
            writes: dict[str, Callable[[int], httpx.Response]] = {
                "users": lambda i: client.post(
                    "/api/v1/users",
                    headers=admin,
                    json={"user": {"username": f"u{run}-{i}"}, "password": "long-password-12"},
                ),
                "oms": lambda i: client.post(
                    "/api/v1/branches", headers=admin, json={"name": f"b{run}-{i}"}
                ),
                "audit": lambda i: client.post(
                    "/api/v2/events",
                    headers=admin,
                    json={
                        "id": f"e{run}-{i}",
                        "source": "/tests",
                        "type": "tests.disk.full",
                        "subject": "x" * 500,
                        "time": "2026-01-01T00:00:00Z",
                    },
                ),
            }
            filler = fill(disk)
            refused = {name: first_refusal(write) for name, write in writes.items()}
            for name, (_, response) in refused.items():
                assert reason(response) in {"STORAGE_FULL", "STORAGE_IO_ERROR"}, name
            filler.unlink()
            # Nothing of a refused write was kept; the same write now succeeds, once.
            users_attempt, _ = refused["users"]
            user = f"u{run}-{users_attempt}"
            listed = client.get("/api/v1/users", headers=admin, params={"page_size": 1000}).json()
            assert user not in {u["username"] for u in listed["users"]}
            oms_attempt, _ = refused["oms"]
            assert (
                client.get(f"/api/v1/branches/b{run}-{oms_attempt}", headers=admin).status_code
                == 404
            )
            for name, (attempt, _) in refused.items():
                assert writes[name](attempt).status_code == 200, name
            verdict = client.get("/api/v2/events:verify", headers=admin).json()
            assert verdict["intact"]
            assert client.get("/health").status_code == 200

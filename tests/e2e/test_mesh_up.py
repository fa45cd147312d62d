"""``mesh up`` itself, as a user runs it: a subprocess with its own ports and data folder."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.settings import MeshSettings
from tests.support.mesh import bearer
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MeshUp:
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never printed; output:\n" + "\n".join(self.seen[-40:]))

    def finish(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout=timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


def _env(settings: MeshSettings, data: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MESH_") or key == "MESH_LOG_LEVEL"
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "MESH_DATA_DIR": str(data),
            **settings.to_env(),  # every port free, the metrics ones too
            "MESH_PASSWORD_HASH_PROFILE": "test",
            **extra,
        }
    )
    return env


@contextmanager
def mesh_up(env: dict[str, str]) -> Iterator[MeshUp]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = MeshUp(process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_reports_stops_cleanly_and_keeps_data_across_runs(tmp_path: Path) -> None:
    settings = MeshSettings.on_free_ports()
    env = _env(settings, tmp_path)
    url = f"http://127.0.0.1:{settings.gateway_port}"
    with mesh_up(env) as first:
        assert url in first.wait_for("mesh: ready at")
        password_line = first.wait_for("sign in as 'admin'")
        password_file = tmp_path / "admin-password"
        assert str(password_file) in password_line
        assert any(line.startswith("users ") and " | " in line for line in first.seen)
        password = password_file.read_text().strip()
        with httpx.Client(base_url=url, timeout=10) as client:
            token = client.post(
                "/auth/login", json={"username": "admin", "password": password}
            ).json()["access_token"]
            created = client.post(
                "/api/v1/users",
                headers=bearer(token),
                json={"user": {"username": "kept-user"}, "password": "kept-user-password"},
            )
            assert created.status_code == 200, created.text
            user_id = created.json()["user_id"]
        first.process.send_signal(signal.SIGTERM)
        assert first.finish() == 0
        assert "mesh: stopped" in first.seen[-1]
    for port in settings.ports().values():
        assert _port_free(port), f"port {port} still taken after mesh up stopped"

    with mesh_up(env) as second:
        second.wait_for("mesh: ready at")
        assert password_file.read_text().strip() == password
        with httpx.Client(base_url=url, timeout=10) as client:
            login = client.post(
                "/auth/login", json={"username": "kept-user", "password": "kept-user-password"}
            )
            assert login.status_code == 200, login.text
            assert login.json()["user"]["user_id"] == user_id
        second.process.send_signal(signal.SIGINT)
        assert second.finish() == 0


def test_a_taken_port_is_named_and_fails(tmp_path: Path) -> None:
    settings = MeshSettings.on_free_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.audit_port))
        squatter.listen()
        with mesh_up(_env(settings, tmp_path)) as run:
            line = run.wait_for("failed to start")
            assert f"port {settings.audit_port} needed by audit is already in use" in line
            assert run.finish() == 1


def test_a_process_dying_at_start_is_named_and_fails(tmp_path: Path) -> None:
    settings = MeshSettings.on_free_ports()
    env = _env(settings, tmp_path, MESH_AUDIT_MAX_BATCH="not-a-number")
    with mesh_up(env) as run:
        line = run.wait_for("failed to start")
        assert "audit exited with code" in line
        assert run.finish() == 1
    for port in settings.ports().values():
        assert _port_free(port), f"port {port} still taken after a failed start"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_while_starting_stops_what_was_started(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    settings = MeshSettings.on_free_ports()
    with mesh_up(_env(settings, tmp_path)) as run:
        run.wait_for("mesh: starting")
        time.sleep(0.5)
        run.process.send_signal(stop_signal)
        assert run.finish() == 130
        assert "mesh: interrupted while starting; stopped" in run.seen
    for port in settings.ports().values():
        assert _port_free(port), f"port {port} still taken after an interrupted start"


def _child(parent: int, module: str) -> int:
    """The pid of ``parent``'s child running ``python -m <module>``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and module.encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no child running {module}")


def test_a_service_dying_later_stops_the_mesh_with_its_name(tmp_path: Path) -> None:
    settings = MeshSettings.on_free_ports()
    with mesh_up(_env(settings, tmp_path)) as run:
        run.wait_for("mesh: ready at")
        os.kill(_child(run.process.pid, "oms.server"), signal.SIGKILL)
        assert "oms exited with code -9; stopping the rest" in run.wait_for("exited with code")
        assert run.finish() == 1
    for port in settings.ports().values():
        assert _port_free(port), f"port {port} still taken after the mesh stopped"


def test_killing_mesh_up_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL lets ``mesh up`` stop nothing itself; its processes must still go, ports freed."""
    settings = MeshSettings.on_free_ports()
    with mesh_up(_env(settings, tmp_path)) as run:
        run.wait_for("mesh: ready at")
        run.process.send_signal(signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL
    for port in settings.ports().values():
        eventually(
            lambda port=port: _port_free(port),
            timeout=30,
            interval=0.2,
            what=f"port {port} is freed after mesh up was killed",
        )


def test_an_unusable_data_folder_is_named_and_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = _env(MeshSettings.on_free_ports(), blocker / "data")
    with mesh_up(env) as run:
        line = run.wait_for("mesh: cannot use the data folder (MESH_DATA_DIR)")
        assert str(blocker / "data") in line
        assert run.finish() == 1

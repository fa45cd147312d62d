"""One service of the mesh as its own process, for tests about signals and restarts."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """``python -m <service>.server`` listening on a port the kernel picks.

    The port is read from the service's ``serving`` log line, so nothing races for it; every
    line it writes is kept in :attr:`output` for assertions about how it stopped.
    """

    def __init__(
        self, service: str, data_dir: Path, env: Mapping[str, str], *, start_timeout: float = 30
    ) -> None:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MESH_DATA_DIR": str(data_dir),
            f"MESH_{service.upper()}_LISTEN": "127.0.0.1:0",
            "MESH_LOG_LEVEL": "INFO",
            **env,
        }
        environment.pop(f"MESH_{service.upper()}_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"{service}.server"],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        self.port = self._serving_port(service, start_timeout)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def messages(self) -> list[str]:
        """The ``msg`` of every JSON log line written so far."""
        return [entry["msg"] for entry in map(_json, self.output) if entry is not None]

    def kill(self) -> None:
        """SIGKILL: the service gets no chance to finish anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._pump.join(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code once the service has drained and stopped."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._pump.join(10)
        return code

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _serving_port(self, service: str, timeout: float) -> int:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                line = None
            if line is None:
                if self.running:
                    self.kill()
                pytest.fail(f"{service} did not start: {''.join(self.output)}")
            entry = _json(line)
            if entry is not None and entry.get("msg") == "serving":
                return int(entry["port"])


def _json(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None

"""``mesh``: the project's main command. ``mesh up`` runs the whole mesh in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from common.config import ConfigError, data_dir, env_float
from gateway.mesh import Endpoints, Mesh
from gateway.settings import MeshSettings
from gateway.supervisor import StartError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a service manager's stop, and the terminal going away all stop the mesh in order."""


def up() -> int:
    """Start the mesh, report where it is, and run until a stop signal (or a crash)."""
    try:
        settings = MeshSettings.from_env()
        folder = data_dir()
        ready_timeout = env_float("MESH_UP_TIMEOUT_SECONDS", 60.0)
    except ConfigError as exc:
        print(f"mesh: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mesh: cannot use the data folder (MESH_DATA_DIR): {exc}", file=sys.stderr)
        return 1
    mesh = Mesh(settings, data_dir=folder, ready_timeout=ready_timeout)
    say = mesh.supervisor.say

    def interrupt_start(signum: int, _frame: FrameType | None) -> None:
        # Abort the start: the exception unwinds through Mesh.up, which stops what it started;
        # further signals are ignored so that stop runs to the end.
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, interrupt_start)
    say(f"mesh: starting in {folder}")
    try:
        endpoints = mesh.up()
    except StartError as exc:
        say(f"mesh: failed to start: {exc}")
        return 1
    except KeyboardInterrupt:
        say("mesh: interrupted while starting; stopped")
        return 130

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, request_stop)
    say(f"mesh: ready at {endpoints.gateway_url} (gRPC and REST; GET /health, /openapi.json)")
    say(f"mesh: sign in as 'admin' with the password {_admin_password_hint(endpoints)}")
    say("mesh: press Ctrl-C to stop")
    exited = mesh.supervisor.watch(stop)
    if exited is not None:
        name, code = exited
        say(f"mesh: {name} exited with code {code}; stopping the rest")
    else:
        say("mesh: stopping")
    mesh.down()
    say("mesh: stopped")
    return 0 if exited is None else 1


def _admin_password_hint(endpoints: Endpoints) -> str:
    if endpoints.admin_password_file.exists():
        return f"in {endpoints.admin_password_file}"
    if os.environ.get("MESH_ADMIN_PASSWORD"):
        return "from MESH_ADMIN_PASSWORD"
    return "that MESH_ADMIN_PASSWORD held at the first start"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesh", description="The ontology metadata mesh.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "up",
        help="run the three services and the Envoy gateway until Ctrl-C",
        description="Environment variables are documented in docs/gateway.md.",
    )
    parser.parse_args(argv)
    return up()


if __name__ == "__main__":
    sys.exit(main())

"""``mesh``: the project's main command. ``mesh up`` runs the whole mesh in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from audit.auditor import Api, Evidence, export, verify_export, witness
from audit.checkpoints import NoteError, VerifierKey
from common.config import ConfigError, data_dir, env_float
from gateway.mesh import Endpoints, Mesh
from gateway.settings import MeshSettings
from gateway.supervisor import StartError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a service manager's stop, and the terminal going away all stop the mesh in order."""


def up(replicas: int | None = None, database_url: str | None = None) -> int:
    """Start the mesh, report where it is, and run until a stop signal (or a crash).

    ``replicas`` and ``database_url`` (the command's options) override ``MESH_REPLICAS`` and
    ``MESH_DATABASE_URL``.
    """
    try:
        settings = MeshSettings.from_env()
        if replicas is not None or database_url is not None:
            settings = settings.with_replicas(
                settings.replicas if replicas is None else replicas,
                settings.database_url if database_url is None else database_url,
            )
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
    for name, url in endpoints.metrics_urls.items():
        say(f"mesh: {name} metrics at {url}")
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


def _api(args: argparse.Namespace, channel: grpc.Channel) -> Api:
    if args.token_file is not None:
        token = Path(args.token_file).read_text().strip()
    else:
        token = os.environ.get("MESH_TOKEN", "")
    if not token:
        raise ValueError("give a token with audit:read in MESH_TOKEN or --token-file")
    return Api.connect(channel, token)


def _channel(args: argparse.Namespace) -> grpc.Channel:
    """Plain gRPC; TLS with ``--ca-file``; mutual TLS with ``--cert-file`` and ``--key-file`` too.

    The gateway with TLS on takes the first kind; an Audit Service of a mesh on mutual TLS
    (reached without the gateway) takes only the second.
    """
    if args.ca_file is None:
        if args.cert_file or args.key_file:
            raise ValueError("--cert-file and --key-file need --ca-file")
        return grpc.insecure_channel(args.target)
    if bool(args.cert_file) != bool(args.key_file):
        raise ValueError("--cert-file and --key-file go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(args.ca_file).read_bytes(),
        private_key=Path(args.key_file).read_bytes() if args.key_file else None,
        certificate_chain=Path(args.cert_file).read_bytes() if args.cert_file else None,
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.target, credentials, options=options)


def audit(args: argparse.Namespace) -> int:
    """``mesh audit witness|export|verify``: exit 1 on evidence of tampering, 2 on misuse."""
    try:
        if args.audit_command == "verify":
            key = VerifierKey.parse(args.key)
            with open(args.file) as lines:
                checkpoint, count = verify_export(lines, key)
            print(f"verified {count} events against checkpoint {checkpoint.size}")
            return 0
        with _channel(args) as channel:
            api = _api(args, channel)
            if args.audit_command == "witness":
                found = witness(api, Path(args.state), pin=args.key, replay=not args.no_replay)
                print(f"checkpoint {found.size} verified and remembered in {args.state}")
                return 0
            with open(args.output, "w") as out:
                checkpoint = export(api, args.first, args.last, out)
            print(f"exported events {args.first}..{args.last} with checkpoint {checkpoint.size}")
            return 0
    except Evidence as exc:
        print(f"mesh audit: TAMPERING DETECTED: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, NoteError) as exc:
        print(f"mesh audit: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(
            f"mesh audit: the Audit Service answered {exc.code().name}: {exc.details()}",
            file=sys.stderr,
        )
        return 2


def _audit_parser(commands: Any) -> None:
    parser = commands.add_parser("audit", help="witness, export and verify the audit log")
    tools = parser.add_subparsers(dest="audit_command", required=True)
    online = argparse.ArgumentParser(add_help=False)
    online.add_argument("--target", default="127.0.0.1:8080", help="gateway or Audit Service")
    online.add_argument("--token-file", help="file holding a bearer token (else MESH_TOKEN)")
    online.add_argument("--ca-file", help="PEM CA to trust: call over TLS (else plain gRPC)")
    online.add_argument("--cert-file", help="PEM client certificate, for mutual TLS")
    online.add_argument("--key-file", help="PEM key of --cert-file")
    online.add_argument(
        "--server-name", help="the name the server's certificate must carry, if not the target's"
    )
    watch = tools.add_parser(
        "witness", parents=[online], help="check the newest checkpoint against the last one seen"
    )
    watch.add_argument("--state", required=True, help="file remembering the last checkpoint")
    watch.add_argument("--key", help="the log's verifier key, pinned on the first run")
    watch.add_argument("--no-replay", action="store_true", help="check the consistency proof only")
    out = tools.add_parser("export", parents=[online], help="write events as CloudEvents JSONL")
    out.add_argument("--from", dest="first", type=int, required=True, help="first sequence")
    out.add_argument("--to", dest="last", type=int, required=True, help="last sequence")
    out.add_argument("--output", required=True, help="the file to write")
    check = tools.add_parser("verify", help="check an export offline with the verifier key")
    check.add_argument("file", help="the exported file")
    check.add_argument("--key", required=True, help="the log's verifier key")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesh", description="The ontology metadata mesh.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "up",
        help="run the three services and the Envoy gateway until Ctrl-C",
        description="Environment variables are documented in docs/gateway.md.",
    )
    start.add_argument(
        "--replicas",
        type=int,
        help="processes of each service, sharing --database-url (MESH_REPLICAS, 1)",
    )
    start.add_argument(
        "--database-url",
        help="one PostgreSQL database for every service, a schema each (MESH_DATABASE_URL)",
    )
    _audit_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "audit":
        return audit(args)
    if args.replicas is not None and args.replicas < 1:
        parser.error("--replicas must be at least 1")
    return up(args.replicas, args.database_url)


if __name__ == "__main__":
    sys.exit(main())

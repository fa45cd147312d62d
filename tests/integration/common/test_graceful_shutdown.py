"""A real service process drains and releases its resources on SIGTERM, then exits 0."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_serving(address: str, deadline: float) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "service did not become SERVING"
            time.sleep(0.1)


def test_sigterm_drains_and_exits_cleanly(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "MESH_DATA_DIR": str(tmp_path),
        "MESH_USERS_LISTEN": address,
        "MESH_PASSWORD_HASH_PROFILE": "test",
        "MESH_GRACE_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "users.server"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_serving(address, time.monotonic() + 30)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    messages = [json.loads(line)["msg"] for line in output.splitlines() if line.startswith("{")]
    assert "signal received, draining" in messages
    assert messages[-1] == "stopped"

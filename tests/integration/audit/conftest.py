"""A real Audit server on a real port over a real SQLite file, and clients for it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import struct_pb2

from audit.server import build_server
from audit.settings import Settings
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.auth import NoRevocations, TokenVerifier
from tests.support.servers import RunningServer
from tests.support.tokens import AUDIENCE, ISSUER, TestSigner


@pytest.fixture(scope="session")
def signer():
    return TestSigner()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MESH_AUDIT_DATABASE_URL", raising=False)
    return dataclasses.replace(Settings.from_env(), listen="127.0.0.1:0")


@pytest.fixture
def verifier(signer):
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations())


def start_audit(settings, verifier):
    """An Audit server on its own loop; the caller stops it."""
    return RunningServer(lambda: build_server(settings, verifier))


@pytest.fixture
def audit_server(settings, verifier):
    server = start_audit(settings, verifier)
    yield server
    server.stop()


class Client:
    """A stub with a writer's and a reader's token."""

    def __init__(self, channel, signer):
        self.stub = audit_pb2_grpc.AuditServiceStub(channel)
        self.writer = [("authorization", "Bearer " + signer.mint(permissions=("audit:write",)))]
        self.reader = [("authorization", "Bearer " + signer.mint(permissions=("audit:read",)))]


@pytest.fixture
def client(audit_server, signer):
    with grpc.insecure_channel(f"127.0.0.1:{audit_server.port}") as channel:
        yield Client(channel, signer)


def make_event(
    *,
    id=None,
    source="/tests",
    type="oms.branch.created",
    subject="branches/main",
    actor="alice",
    data=None,
    time=None,
):
    event = audit_pb2.Event(
        id=id or str(uuid.uuid4()), source=source, type=type, subject=subject, actor=actor
    )
    event.time.FromDatetime(time or datetime.now(UTC))
    payload = struct_pb2.Struct()
    payload.update(data if data is not None else {"branch": "main", "n": 1})
    event.data.CopyFrom(payload)
    return event


@pytest.fixture
def client_factory(signer):
    channels = []

    def connect(port):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return Client(channel, signer)

    yield connect
    for channel in channels:
        channel.close()

"""A real Audit server on a real port over a real SQLite file, and clients for it."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from audit.settings import Settings
from tests.support.audit import Client, start_audit


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MESH_AUDIT_DATABASE_URL", raising=False)
    return dataclasses.replace(Settings.from_env(), listen="127.0.0.1:0")


@pytest.fixture
def audit_server(settings, verifier):
    server = start_audit(settings, verifier)
    yield server
    server.stop()


@pytest.fixture
def client(audit_server, signer):
    with grpc.insecure_channel(audit_server.target) as channel:
        yield Client(channel, signer)


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

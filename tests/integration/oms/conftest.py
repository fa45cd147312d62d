"""A real OMS on a real port, on its own SQLite file, per test."""

from __future__ import annotations

import grpc
import pytest

from common.config import RuntimeSettings
from oms.server import build_server
from oms.settings import Settings
from tests.support.oms import Client
from tests.support.servers import RunningServer


@pytest.fixture
def oms_settings(tmp_path):
    return Settings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path / 'oms.db'}",
        users_addr="127.0.0.1:1",
        runtime=RuntimeSettings.from_env(),
    )


@pytest.fixture
def start_oms(signer, verifier):
    """Starts OMS servers on given settings; all are stopped at the end of the test."""
    started = []

    def start(settings):
        server = RunningServer(lambda: build_server(settings, verifier))
        channel = grpc.insecure_channel(server.target)
        started.append((server, channel))
        return Client(channel, signer, server)

    yield start
    for server, channel in started:
        channel.close()
        server.stop()


@pytest.fixture
def oms(start_oms, oms_settings):
    return start_oms(oms_settings)

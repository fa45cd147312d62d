"""The gateway's reflection server describes every service of the mesh."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.config import RuntimeSettings
from gateway.reflection import create_reflection_server
from tests.support.servers import running


@pytest.fixture(scope="module")
def stub() -> Iterator[reflection_pb2_grpc.ServerReflectionStub]:
    runtime = RuntimeSettings.from_env()
    with (
        running(lambda: create_reflection_server("127.0.0.1:0", runtime)) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        yield reflection_pb2_grpc.ServerReflectionStub(channel)


def _ask(
    stub: reflection_pb2_grpc.ServerReflectionStub, **request: str
) -> reflection_pb2.ServerReflectionResponse:
    return next(
        iter(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10
            )
        )
    )


def test_lists_every_service(stub: reflection_pb2_grpc.ServerReflectionStub) -> None:
    names = {s.name for s in _ask(stub, list_services="").list_services_response.service}
    assert {
        "users.v1.AuthService",
        "users.v1.UserService",
        "audit.v1.AuditService",
        "oms.v1.BranchService",
        "oms.v1.SchemaService",
    } <= names


def test_describes_a_service_of_each_backend(
    stub: reflection_pb2_grpc.ServerReflectionStub,
) -> None:
    for symbol in ("users.v1.AuthService", "audit.v1.AuditService", "oms.v1.SchemaService"):
        response = _ask(stub, file_containing_symbol=symbol)
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto
        ]
        package, service = symbol.rsplit(".", 1)
        assert any(f.package == package and service in {s.name for s in f.service} for f in files)

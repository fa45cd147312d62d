"""Every unary RPC of the three services, over native gRPC, with extreme values: no INTERNAL.

schemathesis covers the REST surface; a gRPC client can send what JSON cannot spell, or what
the gateway refuses first: numbers an enum does not have, 64-bit extremes, times past the
year 9999, non-finite doubles, long and odd strings. Each field is set or left alone at
random (a fixed seed), messages nested a few levels. An answer may be any refusal; a bare
INTERNAL, UNKNOWN or a call that never ends is a failure. The mesh is one of its own, since
what the calls create would show in other tests' lists.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from gateway.settings import MeshSettings
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, login, running_mesh

SERVICES = ("users", "oms", "audit")
SPARED = {"Logout", "RotateSigningKey", "ChangePassword", "SetRoleMfaRequired", "DeleteSession"}
"""Calls that would end or lock this test's own session."""
MESSAGES_PER_METHOD = 30
FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}

_STRINGS = ["", "main", "a" * 300, "é\u202e\ufeff", "../..", "%s%n", "x" * 70_000, "*", "\t"]
_INTS = [0, 1, -1, 2**31 - 1, -(2**31)]
_LONGS = [*_INTS, 2**63 - 1, -(2**63)]
_UNSIGNED = [0, 1, 2**32 - 1]
_SCALARS: dict[int, list[Any]] = {
    FieldDescriptor.TYPE_STRING: _STRINGS,
    FieldDescriptor.TYPE_BYTES: [b"", b"\x00\xff" * 50],
    FieldDescriptor.TYPE_BOOL: [True, False],
    FieldDescriptor.TYPE_ENUM: [0, 1, 2, 99, -5],
    FieldDescriptor.TYPE_INT32: _INTS,
    FieldDescriptor.TYPE_SINT32: _INTS,
    FieldDescriptor.TYPE_SFIXED32: _INTS,
    FieldDescriptor.TYPE_INT64: _LONGS,
    FieldDescriptor.TYPE_SINT64: _LONGS,
    FieldDescriptor.TYPE_SFIXED64: _LONGS,
    FieldDescriptor.TYPE_UINT32: _UNSIGNED,
    FieldDescriptor.TYPE_FIXED32: _UNSIGNED,
    FieldDescriptor.TYPE_UINT64: [*_UNSIGNED, 2**64 - 1],
    FieldDescriptor.TYPE_FIXED64: [*_UNSIGNED, 2**64 - 1],
    FieldDescriptor.TYPE_DOUBLE: [0.0, -1.0, 1e308, float("nan"), float("inf")],
    FieldDescriptor.TYPE_FLOAT: [0.0, -1.0, float("nan")],
}
_JSON = [1e308, -1e308, "s", None, [1, {"a": 2}], True, float("nan")]


def _fill(message: Message, rng: random.Random, depth: int = 0) -> None:
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        for _ in range(rng.choice([1, 2, 3]) if field.is_repeated else 1):
            _set(message, field, rng, depth)


def _set(message: Message, field: FieldDescriptor, rng: random.Random, depth: int) -> None:
    kind = field.message_type
    if kind is None:
        value = rng.choice(_SCALARS[field.type])
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
        return
    if kind.GetOptions().map_entry or depth > 4:
        return
    sub = getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)
    if kind.full_name == "google.protobuf.Struct":
        sub.update({"k": rng.choice(_JSON)})
    elif kind.full_name == "google.protobuf.Value":
        sub.string_value = rng.choice(_STRINGS)
    elif kind.full_name == "google.protobuf.Timestamp":
        sub.seconds = rng.choice([-62_135_596_800, 253_402_300_799, 0, 2**40, -(2**40)])
        sub.nanos = rng.choice([0, 999_999_999])
    else:
        _fill(sub, rng, depth + 1)


def _unary_methods(service: str) -> Iterator[MethodDescriptor]:
    package = importlib.import_module(f"{service}.v1")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for described in module.DESCRIPTOR.services_by_name.values():
                for method in described.methods:
                    streaming = method.client_streaming or method.server_streaming
                    if not streaming and method.name not in SPARED:
                        yield method


METHODS = [(service, method) for service in SERVICES for method in _unary_methods(service)]


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningMesh, str]]:
    with running_mesh(MeshSettings.on_free_ports(), tmp_path_factory.mktemp("extremes")) as running:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            token = str(login(client, "admin", ADMIN_PASSWORD)["access_token"])
        yield running, token


def test_every_unary_method_of_the_mesh_is_tried() -> None:
    assert len(METHODS) > 80
    assert {service for service, _ in METHODS} == set(SERVICES)


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[m.full_name for _, m in METHODS])
def test_extreme_values_get_an_answer_never_a_fault(
    own: tuple[RunningMesh, str], service: str, method: MethodDescriptor
) -> None:
    mesh, token = own
    rng = random.Random(method.full_name)
    request_type = message_factory.GetMessageClass(method.input_type)
    with grpc.insecure_channel(mesh.endpoints.grpc_targets[service]) as channel:
        call = channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=bytes,
        )
        for _ in range(MESSAGES_PER_METHOD):
            request = request_type()
            _fill(request, rng)
            try:
                call(request, metadata=[("authorization", f"Bearer {token}")], timeout=20)
            except grpc.RpcError as refused:
                assert refused.code() not in FAULTS, f"{refused.details()} for {request}"[:2000]

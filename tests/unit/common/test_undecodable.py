"""Which string field of a parsed request holds U+0000, read from the request's bytes."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from audit.v1 import audit_pb2
from common.undecodable import nul_field
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss


def _found(message: Message) -> str | None:
    return nul_field(message, message.SerializeToString())


def _event(**fields: str) -> audit_pb2.Event:
    event = audit_pb2.Event(id="e1", source="s", type="a.b.c", **fields)
    event.data.update({"n": 1.0, "zero": 0, "text": "x\x00y", "list": [0.0, None]})
    return event


def test_json_values_may_hold_it_and_their_zero_bytes_are_not_strings() -> None:
    stream = audit_pb2.StreamEventsRequest(events=[_event() for _ in range(3)])
    assert b"\x00" in stream.SerializeToString()
    assert _found(stream) is None


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (
            audit_pb2.StreamEventsRequest(events=[_event(), _event(subject="a\x00")]),
            "events[1].subject",
        ),
        (
            ss.CommitChangesRequest(
                changes=[
                    ss.Change(delete="object-types/A"),
                    ss.Change(
                        upsert=r.Resource(
                            action_type=r.ActionType(
                                submission_criteria=[
                                    r.SubmissionCriterion(),
                                    r.SubmissionCriterion(caller_role="\x00"),
                                ]
                            )
                        )
                    ),
                ]
            ),
            "changes[1].upsert.action_type.submission_criteria[1].caller_role",
        ),
        (ss.CreateObjectTypeRequest(branch="b", message="line\x00"), "message"),
        (r.ObjectType(interfaces=["", "I\x00"]), "interfaces[1]"),
    ],
)
def test_the_first_string_holding_it_is_named(message: Message, path: str) -> None:
    assert _found(message) == path


def test_a_map_holding_it_in_a_key_or_a_value_is_named() -> None:
    for key, value in (("k\x00", "v"), ("k", "v\x00")):
        assert _found(r.ActionRule(object_type="A", values={key: value})) == "values"
    assert _found(r.ActionRule(values={"k": ""})) is None


def test_empty_strings_and_messages_whose_bytes_are_zero_are_not_it() -> None:
    message = r.ObjectType(interfaces=["", ""], properties=[r.Property(), r.Property()])
    assert b"\x00" in message.SerializeToString()
    assert _found(message) is None


def _request_types() -> list[Descriptor]:
    found = {}
    for package in ("users.v1", "oms.v1", "audit.v1"):
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if info.name.endswith("_pb2"):
                module = importlib.import_module(f"{package}.{info.name}")
                for service in module.DESCRIPTOR.services_by_name.values():
                    for method in service.methods:
                        found[method.input_type.full_name] = method.input_type
    return list(found.values())


def test_every_string_field_of_every_request_of_the_mesh_is_found() -> None:
    requests = _request_types()
    assert len(requests) > 60
    checked = 0
    for descriptor in requests:
        cls = message_factory.GetMessageClass(descriptor)
        for field in descriptor.fields:
            if field.type != FieldDescriptor.TYPE_STRING:
                continue
            message = cls()
            if field.is_repeated:
                getattr(message, field.name).extend(["ok", "\x00"])
                expected = f"{field.name}[1]"
            else:
                setattr(message, field.name, "a\x00")
                expected = field.name
            assert _found(message) == expected, descriptor.full_name
            checked += 1
    assert checked > 150

"""The gateway's check of REST requests, generated from the descriptor set.

Envoy's transcoder drops unknown JSON fields and accepts some values of the wrong JSON type, so
a misspelt field would quietly become its default. The Lua script ``strict_input.lua`` refuses
such a body before the transcoder sees it; this module writes the tables it checks against
(each REST route with a body, and every message and enum those bodies can hold) in front of it,
so a new field or route is checked as soon as ``make generate`` runs. Knowing every route, the
script also answers a known path asked with the wrong method: 405 with ``Allow``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.descriptors import HttpBinding, Method, Service

RUNTIME = Path(__file__).resolve().parent / "strict_input.lua"
HTTP_BODY = "google.api.HttpBody"
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")
_WELL_KNOWN = {
    "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.Duration": "duration",
    "google.protobuf.FieldMask": "fieldmask",
    "google.protobuf.Struct": "struct",
    "google.protobuf.Value": "value",
    "google.protobuf.ListValue": "list",
    "google.protobuf.Any": "any",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.DoubleValue": "double",
    "google.protobuf.FloatValue": "double",
    "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32",
    "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64",
}
"""Well-known types by the JSON form proto3 gives them (``Empty`` is a message like any)."""
_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "double",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "uint32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "uint64",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
}


def _lua(text: str) -> str:
    """A Lua string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def path_pattern(template: str) -> str:
    """The Lua pattern matching the paths of an HTTP rule template, anchored at both ends."""
    out = []
    position = 0
    for match in _VARIABLE.finditer(template):
        out.append(re.sub(r"([^\w/:])", r"%\1", template[position : match.start()]))
        segments = (match.group(2) or "*").split("/")
        out.append(
            "/".join(
                ".+" if s == "**" else "[^/]+" if s == "*" else re.sub(r"([^\w])", r"%\1", s)
                for s in segments
            )
        )
        position = match.end()
    out.append(re.sub(r"([^\w/:])", r"%\1", template[position:]))
    return "^" + "".join(out) + "$"


class _Tables:
    """The messages and enums the routes' bodies can reach, as Lua tables."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool
        self.messages: dict[str, Descriptor] = {}
        self.enums: dict[str, EnumDescriptor] = {}

    def spec(self, field: FieldDescriptor) -> str:
        """A field spec: ``{n = name, k = kind, ...}`` (see ``strict_input.lua``)."""
        parts = [f"n = {_lua(field.name)}"]
        parts += self._kind(field)
        if field.is_repeated and not _is_map(field):
            parts.append("r = true")
        oneof = field.containing_oneof
        if oneof is not None and not _synthetic(field):
            parts.append(f"o = {_lua(oneof.name)}")
        return "{" + ", ".join(parts) + "}"

    def _kind(self, field: FieldDescriptor) -> list[str]:
        if _is_map(field):
            value = _message(field).fields_by_name["value"]
            return [f"v = {self.spec(value)}"]
        if field.type == FieldDescriptor.TYPE_ENUM:
            enum = field.enum_type
            if enum is None:
                raise ValueError(f"{field.full_name} names no enum")
            self.enums[enum.full_name] = enum
            return ['k = "enum"', f"m = {_lua(enum.full_name)}"]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message_kind(_message(field))
        return [f'k = "{_SCALARS[field.type]}"']

    def message_kind(self, message: Descriptor) -> list[str]:
        name = message.full_name
        if name in _WELL_KNOWN:
            return [f'k = "{_WELL_KNOWN[name]}"']
        if name not in self.messages:
            self.messages[name] = message
            for field in message.fields:
                self._kind(field)
        return ['k = "message"', f"m = {_lua(name)}"]

    def render(self) -> Iterator[str]:
        yield "local MESSAGES = {"
        for name, message in sorted(self.messages.items()):
            fields = []
            for field in message.fields:
                spec = self.spec(field)
                fields.append(f"    [{_lua(field.name)}] = {spec},")
                if field.json_name != field.name:
                    fields.append(f"    [{_lua(field.json_name)}] = {spec},")
            names = ", ".join(field.name for field in message.fields) or "(none)"
            yield f"  [{_lua(name)}] = {{names = {_lua(names)}, fields = {{"
            yield from fields
            yield "  }},"
        yield "}"
        yield "local ENUMS = {"
        for name, enum in sorted(self.enums.items()):
            values = [value.name for value in enum.values]
            numbers = ", ".join(f"[{value.number}] = true" for value in enum.values)
            members = ", ".join(f"[{_lua(value)}] = true" for value in values)
            yield (
                f"  [{_lua(name)}] = {{list = {_lua(', '.join(values))}, "
                f"set = {{{members}}}, numbers = {{{numbers}}}}},"
            )
        yield "}"


def _message(field: FieldDescriptor) -> Descriptor:
    if field.message_type is None:
        raise ValueError(f"{field.full_name} names no message")
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and _message(field).GetOptions().map_entry


def _raw(request: Descriptor, body: str) -> bool:
    """Whether the body is an ``HttpBody``: bytes the service reads itself (a form), not JSON."""
    if body == "*":
        return request.full_name == HTTP_BODY
    field = request.fields_by_name[body]
    return field.type == FieldDescriptor.TYPE_MESSAGE and _message(field).full_name == HTTP_BODY


def _synthetic(field: FieldDescriptor) -> bool:
    """A proto3 ``optional`` field's oneof of one, which allows no conflict."""
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == f"_{field.name}"


def _route(
    tables: _Tables, method: Method, binding: HttpBinding, pool: descriptor_pool.DescriptorPool
) -> str:
    """A route's entry: its pattern and request message, and what of it the body holds."""
    request = pool.FindMessageTypeByName(method.input_type)
    pattern = _lua(path_pattern(binding.template))
    plain = f"{{pattern = {pattern}, message = {_lua(request.full_name)}}}"
    if not binding.body or _raw(request, binding.body):
        return plain
    if binding.body == "*":
        tables.message_kind(request)
        return f"{{pattern = {pattern}, message = {_lua(request.full_name)}, whole = true}}"
    field = request.fields_by_name[binding.body]
    return (
        f"{{pattern = {pattern}, message = {_lua(request.full_name)}, "
        f"field = {_lua(field.name)}, root = {tables.spec(field)}}}"
    )


def render(descriptor_set: descriptor_pb2.FileDescriptorSet, services: list[Service]) -> str:
    """The Lua script: the generated tables, then the handwritten checks."""
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:
        pool.Add(file)
    tables = _Tables(pool)
    routes: dict[str, list[str]] = {}
    for service in services:
        for method in service.methods:
            if method.client_streaming:
                continue
            for binding in method.bindings:
                route = _route(tables, method, binding, pool)
                routes.setdefault(binding.verb.upper(), []).append(route)
    lines = [
        "-- Generated by gateway/strict_input.py from the descriptor set; do not edit.",
        "local ROUTES = {",
    ]
    for verb, found in sorted(routes.items()):
        lines.append(f"  {verb} = {{")
        lines += [f"    {route}," for route in found]
        lines.append("  },")
    lines.append("}")
    lines += tables.render()
    return "\n".join(lines) + "\n\n" + RUNTIME.read_text()

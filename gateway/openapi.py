"""An OpenAPI 3 document of the REST surface, derived from the descriptor set's HTTP rules.

It describes what Envoy's transcoder actually does with our settings: proto field names in
snake_case, 64-bit integers as strings, enums by name, well-known types in their JSON forms,
every primitive field present in responses, server streams as server-sent events, and every
error as a ``google.rpc.Status`` JSON object. The generate command writes it to
``gateway/openapi.json`` and the gateway serves it at ``/openapi.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

from common.interceptors import Policy
from gateway import descriptors, examples, reasons
from gateway.descriptors import HttpBinding, Method, Service
from gateway.envoy_config import BROWSER_STREAMS, EXEMPT_REST_PATHS, HEALTH_PATH, OAUTH_METHODS

Schema = dict[str, Any]
FieldProto = descriptor_pb2.FieldDescriptorProto

_STRING_INT = {"type": "string", "pattern": "^-?[0-9]+$"}
_SCALARS: dict[int, Schema] = {
    FieldProto.TYPE_DOUBLE: {"type": "number"},
    FieldProto.TYPE_FLOAT: {"type": "number"},
    FieldProto.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldProto.TYPE_FIXED32: {"type": "integer", "minimum": 0},
    FieldProto.TYPE_INT64: {**_STRING_INT, "format": "int64"},
    FieldProto.TYPE_SINT64: {**_STRING_INT, "format": "int64"},
    FieldProto.TYPE_SFIXED64: {**_STRING_INT, "format": "int64"},
    FieldProto.TYPE_UINT64: {**_STRING_INT, "format": "uint64"},
    FieldProto.TYPE_FIXED64: {**_STRING_INT, "format": "uint64"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BYTES: {"type": "string", "format": "byte"},
}
"""proto3 JSON forms (64-bit integers are strings, bytes are base64)."""
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "minimum": 0},
    "google.protobuf.Int64Value": {**_STRING_INT, "format": "int64"},
    "google.protobuf.UInt64Value": {**_STRING_INT, "format": "uint64"},
}
_STATUS_SCHEMA: Schema = {
    "type": "object",
    "description": "google.rpc.Status: every error, whether from a service or the gateway.",
    "properties": {
        "code": {"type": "integer", "description": "The google.rpc.Code."},
        "message": {"type": "string"},
        "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
    },
    "required": ["code", "message"],
}
_ERROR_RESPONSE: Schema = {
    "description": "An error, with the HTTP status of its gRPC code.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
}
_OAUTH_ERROR_RESPONSE: Schema = {
    "description": "An RFC 6749 section 5.2 error, rewritten by the gateway.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
                "required": ["error"],
                "additionalProperties": False,
            }
        }
    },
}
_TOKEN_FORM: Schema = {
    "type": "object",
    "description": "RFC 6749's token request parameters.",
    "properties": {
        name: {"type": "string"}
        for name in (
            "grant_type",
            "username",
            "password",
            "refresh_token",
            "client_id",
            "client_secret",
        )
    },
    "required": ["grant_type"],
}
_INTROSPECTION_FORM: Schema = {
    "type": "object",
    "description": "RFC 7662's introspection request parameters (the client may authenticate "
    "with HTTP Basic instead of client_id and client_secret).",
    "properties": {
        name: {"type": "string"}
        for name in ("token", "token_type_hint", "client_id", "client_secret")
    },
    "required": ["token"],
}
_FORMS: dict[str, Schema] = {
    "/users.v1.AuthService/IssueToken": _TOKEN_FORM,
    "/users.v1.AuthService/IntrospectToken": _INTROSPECTION_FORM,
}
"""The form each of :data:`OAUTH_METHODS` takes."""
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")
_QUERY_DEPTH = 3
"""Nested request messages are flattened into ``a.b.c`` query parameters this deep."""


@dataclass
class _Types:
    """Messages and enums of the descriptor set by full name, plus the schemas emitted so far."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, Schema] = field(default_factory=dict)

    def add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        locations = descriptors.comments(file)

        def walk(prefix: str, messages: Any, enums: Any, path: tuple[int, ...], tag: int) -> None:
            for enum in enums:
                self.enums[f"{prefix}.{enum.name}"] = enum
            for index, message in enumerate(messages):
                name = f"{prefix}.{message.name}"
                here = (*path, tag, index)
                self.messages[name] = message
                if here in locations:
                    self.comments[name] = locations[here]
                for f_index, fld in enumerate(message.field):
                    comment = locations.get((*here, 2, f_index))
                    if comment:
                        self.comments[f"{name}.{fld.name}"] = comment
                walk(name, message.nested_type, message.enum_type, here, 3)

        # Source locations number top-level messages under tag 4, nested ones under tag 3.
        walk(file.package, file.message_type, file.enum_type, (), 4)

    def field_schema(self, fld: FieldProto) -> Schema:
        if fld.type == FieldProto.TYPE_MESSAGE:
            type_name = fld.type_name.lstrip(".")
            entry = self.messages.get(type_name)
            if entry is not None and entry.options.map_entry:
                _key, value = entry.field
                return {"type": "object", "additionalProperties": self.field_schema(value)}
            single = self.ref(type_name)
        elif fld.type == FieldProto.TYPE_ENUM:
            enum = self.enums[fld.type_name.lstrip(".")]
            single = {"type": "string", "enum": [value.name for value in enum.value]}
        else:
            single = dict(_SCALARS[fld.type])
        if fld.label == FieldProto.LABEL_REPEATED:
            return {"type": "array", "items": single}
        return single

    def ref(self, type_name: str) -> Schema:
        if type_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[type_name])
        if type_name not in self.schemas:
            self.schemas[type_name] = {}  # placeholder first: messages may refer to themselves
            self.schemas[type_name] = self.message_schema(type_name)
        return {"$ref": f"#/components/schemas/{type_name}"}

    def message_schema(self, type_name: str, *, without: frozenset[str] = frozenset()) -> Schema:
        """A message's schema, with its fields' ``google.api.field_behavior``.

        ``REQUIRED`` fields are listed as required, ``OUTPUT_ONLY`` ones are read-only.
        """
        message = self.messages[type_name]
        properties: Schema = {}
        required: list[str] = []
        for fld in message.field:
            if fld.name in without:
                continue
            schema = self.field_schema(fld)
            behaviors = fld.options.Extensions[field_behavior_pb2.field_behavior]
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                # A $ref takes no siblings in OpenAPI 3.0; allOf carries them beside it.
                schema = {"allOf": [schema], "readOnly": True} if "$ref" in schema else schema
                schema["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(fld.name)
            comment = self.comments.get(f"{type_name}.{fld.name}")
            if comment and "$ref" not in schema:
                schema["description"] = comment
            properties[fld.name] = schema
        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if type_name in self.comments:
            schema["description"] = self.comments[type_name]
        return schema

    def query_parameters(
        self, type_name: str, skip: set[str], prefix: str = "", depth: int = 0
    ) -> Iterator[Schema]:
        """Request fields not bound to the path or body, as query parameters (proto names)."""
        for fld in self.messages[type_name].field:
            name = f"{prefix}{fld.name}"
            if name in skip:
                continue
            nested = fld.type_name.lstrip(".")
            if (
                fld.type == FieldProto.TYPE_MESSAGE
                and nested not in _WELL_KNOWN
                and fld.label != FieldProto.LABEL_REPEATED
            ):
                if depth + 1 < _QUERY_DEPTH:
                    yield from self.query_parameters(nested, skip, f"{name}.", depth + 1)
                continue
            if fld.type == FieldProto.TYPE_MESSAGE and nested not in _WELL_KNOWN:
                continue  # repeated messages and maps cannot travel in a query string
            parameter: Schema = {
                "name": name,
                "in": "query",
                "required": False,
                "schema": self.field_schema(fld),
            }
            comment = self.comments.get(f"{type_name}.{fld.name}")
            if comment:
                parameter["description"] = comment
            if fld.label == FieldProto.LABEL_REPEATED:
                parameter["style"] = "form"
                parameter["explode"] = True
            yield parameter


_GENERIC = frozenset({"name", "id", "api_name"})
"""Request fields that say only "the identifier": the parameter is named for its collection."""
_PARAMETER_OF = {"schemas": "branch"}
"""Collections whose member's parameter is not their singular: ``schemas/{branch}``."""


def _parameter(collection: str, field_path: str) -> str:
    """The name of the path parameter that fills ``field_path`` after ``collection``.

    One rule for every path, whichever request message binds it: the field's own name
    (``{branch}``, ``{user_id}``, ``{primary_key}``), unless that name is generic (``name``,
    ``id``, ``api_name``): then the collection's singular (``branches/{name}`` ->
    ``{branch}``, ``object-types/{object_type.api_name}`` -> ``{object_type}``).
    """
    field = field_path.rsplit(".", 1)[-1]
    if field not in _GENERIC or not collection or collection.startswith("{"):
        return field
    if collection in _PARAMETER_OF:
        return _PARAMETER_OF[collection]
    if collection.endswith("ies"):
        singular = collection.removesuffix("ies") + "y"
    elif collection.endswith(("ches", "shes", "sses", "xes")):
        singular = collection.removesuffix("es")
    else:
        singular = collection.removesuffix("s")
    return singular.replace("-", "_")


def _path(template: str) -> tuple[str, list[tuple[str, str]]]:
    """The OpenAPI path for an HTTP rule template, and (parameter, request field) pairs.

    Parameters are named by :func:`_parameter`. ``{name=events/*}`` becomes
    ``events/{event}``: a client fills in the id segment only, because a slash inside a path
    parameter would be percent-encoded and never match.
    """
    parameters: list[tuple[str, str]] = []
    names: dict[str, int] = {}

    def parameter(collection: str, field_path: str) -> str:
        name = _parameter(collection, field_path)
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}_{names[name]}"
        parameters.append((name, field_path))
        return "{" + name + "}"

    def replace(match: re.Match[str]) -> str:
        field_path, pattern = match.group(1), match.group(2)
        before = template[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        if not pattern or pattern == "*":
            return parameter(before, field_path)
        out: list[str] = []
        for segment in pattern.split("/"):
            out.append(
                parameter(out[-1] if out else before, field_path) if segment == "*" else segment
            )
        return "/".join(out)

    return _VARIABLE.sub(replace, template), parameters


def _access(policy: Policy | None, *, exempt: bool) -> tuple[str, str]:
    """The ``x-permission`` value of an operation and the sentence its description ends with.

    A method the service lets anyone call still needs a bearer token at the edge unless its
    path is exempt there (ChangePassword takes the change-only token of a Login).
    """
    if exempt:
        return "public", "Needs no token."
    if policy is None or policy.public or policy.permission is None:
        return "authenticated", "Needs a bearer token."
    return policy.permission, f"Needs the `{policy.permission}` permission."


def _errors(method: Method, policy: Policy | None, own: tuple[str, ...]) -> Schema:
    """The error response of an operation, with the ErrorInfo reasons it can carry.

    ``x-error-reasons`` lists them all; the description names the operation's own, beyond
    those of the runtime (tokens, permissions, storage) that every call shares.
    """
    found = reasons.of(method, policy, own)
    errors = _OAUTH_ERROR_RESPONSE if method.grpc_path in OAUTH_METHODS else _ERROR_RESPONSE
    description = errors["description"]
    if found.own:
        description += " Beside the runtime's, its ErrorInfo reason may be " + ", ".join(
            f"`{reason}`" for reason in found.own
        )
        description += "."
    return {**errors, "description": description, "x-error-reasons": list(found.all)}


def _example(operation: Schema, example: Schema) -> None:
    """Put a documented example (``gateway/examples.py``) on the operation it was sent to."""
    given = example.get("parameters", {})
    for parameter in operation.get("parameters", []):
        if parameter["name"] in given:
            parameter["example"] = given[parameter["name"]]
    if "body" in example:
        for media in operation["requestBody"]["content"].values():
            media["example"] = example["body"]
    operation["responses"]["200"]["content"]["application/json"]["example"] = example["response"]


def _operation(
    types: _Types,
    method: Method,
    binding: HttpBinding,
    policy: Policy | None,
    own_reasons: tuple[str, ...],
) -> tuple[str, Schema]:
    path, path_parameters = _path(binding.template)
    bound = {field_path for _, field_path in path_parameters}
    # x-field: the request field a path parameter fills, which errors name (``name``).
    parameters: list[Schema] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "x-field": field_path,
        }
        for name, field_path in path_parameters
    ]
    operation: Schema = {
        "operationId": f"{method.service}.{method.name}".replace(".", "_")
        + ("" if binding is method.bindings[0] else f"_{binding.verb}"),
        "tags": [method.service],
        "x-grpc-method": method.grpc_path.lstrip("/"),
        "summary": method.comment.split("\n")[0] if method.comment else method.name,
    }
    permission, sentence = _access(policy, exempt=binding.template in EXEMPT_REST_PATHS)
    operation["description"] = f"{method.comment}\n\n{sentence}" if method.comment else sentence
    operation["x-permission"] = permission
    if binding is not method.bindings[0]:
        # An additional binding is an older path kept for the clients that use it.
        primary, _ = _path(method.bindings[0].template)
        operation["deprecated"] = True
        operation["description"] += (
            f"\n\nDeprecated: use `{method.bindings[0].verb.upper()} {primary}`."
        )
    if method.grpc_path in OAUTH_METHODS:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _FORMS[method.grpc_path]}},
        }
    elif binding.body == "*":
        top_level_bound = frozenset(b for b in bound if "." not in b)
        body_schema = types.message_schema(method.input_type, without=top_level_bound)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body_schema}},
        }
    else:
        skip = set(bound)
        if binding.body:
            skip.add(binding.body)
            body_field = next(
                f for f in types.messages[method.input_type].field if f.name == binding.body
            )
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": types.field_schema(body_field)}},
            }
        parameters += types.query_parameters(method.input_type, skip)
    if parameters:
        operation["parameters"] = parameters
    if method.server_streaming:
        numbered = method.grpc_path in BROWSER_STREAMS
        success = {
            "description": "Server-sent events, "
            + ("an `id:` and a `data:` line" if numbered else "one `data:` line")
            + " per message.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    else:
        success = {
            "description": "OK",
            "content": {"application/json": {"schema": types.ref(method.output_type)}},
        }
    operation["responses"] = {"200": success, "default": _errors(method, policy, own_reasons)}
    if binding.template in EXEMPT_REST_PATHS:
        operation["security"] = []
    elif method.grpc_path in BROWSER_STREAMS:
        operation["security"] = [{"bearer": []}, {"ticket": []}]
    return path, operation


def build(descriptor_set: descriptor_pb2.FileDescriptorSet, services: list[Service]) -> Schema:
    """The OpenAPI document of every HTTP binding of ``services``."""
    types = _Types()
    for file in descriptor_set.file:
        types.add_file(file)
    types.schemas["google.rpc.Status"] = _STATUS_SCHEMA
    policies, own_reasons = reasons.tables()
    documented = examples.documented(examples.load())
    paths: dict[str, Schema] = {
        HEALTH_PATH: {
            "get": {
                "operationId": "gateway_Health",
                "tags": ["gateway"],
                "summary": "200 while every service reports SERVING, else 503.",
                "security": [],
                "x-permission": "public",
                "responses": {
                    "200": {"description": "Every service is serving."},
                    "default": _ERROR_RESPONSE,
                },
            }
        }
    }
    for service in services:
        for method in service.methods:
            for binding in method.bindings:
                path, operation = _operation(
                    types,
                    method,
                    binding,
                    policies.get(method.grpc_path),
                    own_reasons.get(method.grpc_path, ()),
                )
                example = documented.get(method.grpc_path.lstrip("/"))
                if example is not None and binding is method.bindings[0]:
                    _example(operation, example)
                paths.setdefault(path, {})[binding.verb] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Ontology metadata mesh",
            "version": "v1",
            "description": "REST surface of the mesh, transcoded onto gRPC by the gateway.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(types.schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "ticket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "A short-lived ticket from `POST /api/v2/events:ticket`, "
                    "for clients that cannot send headers (a browser's EventSource).",
                },
            },
        },
        "security": [{"bearer": []}],
    }


def render(descriptor_set: descriptor_pb2.FileDescriptorSet, services: list[Service]) -> str:
    return json.dumps(build(descriptor_set, services), indent=2) + "\n"

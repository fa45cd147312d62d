"""The mesh's API as the descriptor set describes it: services, methods and their HTTP rules.

The Envoy configuration, the OpenAPI document and the reflection server are all derived from
``gateway/descriptor.pb``, so a new RPC or HTTP binding reaches every one of them by running the
generate command, with nothing listed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

DESCRIPTOR_PATH = Path(__file__).resolve().parent / "descriptor.pb"
READ_VERBS = (
    "Get",
    "List",
    "Query",
    "Diff",
    "Validate",
    "Introspect",
    "Watch",
    "Subscribe",
    "Verify",
)
"""The first words of RPCs that change nothing; every other RPC is mutating."""
BACKENDS = ("users", "oms", "audit")
"""Each backend serves the proto packages ``<backend>.v1``; the name is also its cluster's."""


@dataclass(frozen=True)
class HttpBinding:
    """One REST route of a method: verb, path template and which request field is the body."""

    verb: str
    template: str
    body: str


@dataclass(frozen=True)
class Method:
    """An RPC with what the gateway needs to route and document it."""

    service: str
    name: str
    input_type: str
    output_type: str
    client_streaming: bool
    server_streaming: bool
    bindings: tuple[HttpBinding, ...]
    comment: str
    declared_idempotent: bool = False
    """The proto says ``option idempotency_level = IDEMPOTENT`` (or ``NO_SIDE_EFFECTS``)."""

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def streaming(self) -> bool:
        return self.client_streaming or self.server_streaming

    @property
    def mutating(self) -> bool:
        """Whether it may change state: its name's first word is not one of :data:`READ_VERBS`.

        The first word is the name up to its second capital (``ValidateToken``: ``Validate``),
        so ``Listen`` would not pass for ``List``. Each mutating RPC must emit an event.
        """
        first = re.match(r"[A-Z][a-z]*", self.name)
        return first is None or first.group() not in READ_VERBS

    @property
    def idempotent(self) -> bool:
        """Whether a second delivery of one call does what the first did, and no more.

        Reads are; so is a write whose proto declares it, such as the Audit Service's ingest,
        deduplicated on each event's (source, id). The gateway retries these on another
        replica when one fails under them.
        """
        return not self.mutating or self.declared_idempotent


@dataclass(frozen=True)
class Service:
    """A gRPC service and the backend (cluster) that serves it."""

    name: str
    backend: str
    methods: tuple[Method, ...]


def load(path: Path = DESCRIPTOR_PATH) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def _bindings(rule: http_pb2.HttpRule) -> Iterator[HttpBinding]:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        yield HttpBinding(rule.custom.kind.lower(), rule.custom.path, rule.body)
    elif pattern is not None:
        yield HttpBinding(pattern, getattr(rule, pattern), rule.body)
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Leading comments by source location path (the proto's doc comments)."""
    return {
        tuple(location.path): location.leading_comments.strip()
        for location in file.source_code_info.location
        if location.leading_comments
    }


def services(descriptor_set: descriptor_pb2.FileDescriptorSet) -> list[Service]:
    """Every service of the mesh's own packages, in descriptor order."""
    found: list[Service] = []
    for file in descriptor_set.file:
        backend = file.package.split(".")[0]
        if backend not in BACKENDS:
            continue
        docs = comments(file)
        for s_index, service in enumerate(file.service):
            full_name = f"{file.package}.{service.name}"
            methods = tuple(
                Method(
                    service=full_name,
                    name=method.name,
                    input_type=method.input_type.lstrip("."),
                    output_type=method.output_type.lstrip("."),
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                    bindings=tuple(_bindings(method.options.Extensions[annotations_pb2.http])),
                    comment=docs.get((6, s_index, 2, m_index), ""),
                    declared_idempotent=method.options.idempotency_level
                    in (
                        descriptor_pb2.MethodOptions.IDEMPOTENT,
                        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
                    ),
                )
                for m_index, method in enumerate(service.method)
            )
            found.append(Service(name=full_name, backend=backend, methods=methods))
    return found

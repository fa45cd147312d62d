"""Request ids and W3C trace context: what every log line, error and event of a call carries.

Each call the interceptor serves gets a :class:`CallContext`: the request id Envoy assigned
(``x-request-id``; one is made for a call that came without), and the ``traceparent`` the call
continues. While the call runs it is current (a context variable, so it follows the call into
the blocking pool), and the log lines, the error details (``google.rpc.RequestInfo``), the
outbox events and the calls to other services read it from there.

Exporting spans is off unless configured by the standard OpenTelemetry variables
(:func:`configure`): ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``), or an
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, with
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc``, the default, or ``http/protobuf``), the sampler
variables and ``OTEL_SERVICE_NAME``. Off, a call costs a scan of its metadata and a context
variable, and its ``traceparent`` is passed on unchanged; on, each call is a server span,
and the outbox relay's deliveries and the Audit Service's appends are spans of the trace of
the call that caused the event. Nothing here knows about gRPC.
"""

from __future__ import annotations

import contextvars
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = [
    "CallContext",
    "ServerSpan",
    "SpanKind",
    "begin",
    "configure",
    "current",
    "current_traceparent",
    "enabled",
    "exporter_name",
    "log_fields",
    "otlp_protocol",
    "outgoing_metadata",
    "record",
    "use_tracer",
    "valid_traceparent",
]
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common.config import ConfigError

TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?", re.ASCII)
"""Version, trace id, parent id, flags; versions after ``00`` may append ``-`` and more."""
MAX_REQUEST_ID = 128
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None


def valid_traceparent(value: str) -> bool:
    """W3C Trace Context: version ``ff`` is invalid, ``00`` has nothing after the flags."""
    found = TRACEPARENT.fullmatch(value)
    if found is None:
        return False
    version, trace_id, parent_id, rest = found.groups()
    return (
        version != "ff"
        and not (version == "00" and rest is not None)
        and trace_id != "0" * 32
        and parent_id != "0" * 16
    )


@dataclass(frozen=True, slots=True)
class CallContext:
    """The request id and trace position of the call being served."""

    request_id: str
    traceparent: str = ""
    """The W3C ``traceparent`` naming the call's own span (or, with tracing off, the caller's)."""
    tracestate: str = ""

    @property
    def trace_id(self) -> str:
        return self.traceparent[3:35]

    @property
    def span_id(self) -> str:
        return self.traceparent[36:52]


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "mesh_call", default=None
)


def current() -> CallContext | None:
    return _current.get()


def current_traceparent() -> str:
    """The ``traceparent`` of the call being served, empty outside one (first start, relays)."""
    call = _current.get()
    return call.traceparent if call is not None else ""


def log_fields() -> dict[str, str]:
    """``request_id``, ``trace_id`` and ``span_id`` of the call being served, for log lines."""
    call = _current.get()
    if call is None:
        return {}
    if not call.traceparent:
        return {"request_id": call.request_id}
    return {"request_id": call.request_id, "trace_id": call.trace_id, "span_id": call.span_id}


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata that carries the current call's request id and trace on to another service."""
    call = _current.get()
    if call is None:
        return ()
    found = [("x-request-id", call.request_id)]
    if call.traceparent:
        found.append(("traceparent", call.traceparent))
        if call.tracestate:
            found.append(("tracestate", call.tracestate))
    return tuple(found)


class ServerSpan:
    """The span of one served call; ends with its status code."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def finish(self, code: str, *, server_fault: bool) -> None:
        self._span.set_attribute("rpc.grpc.status_code", code)
        if server_fault:
            self._span.set_status(Status(StatusCode.ERROR, code))
        self._span.end()


def begin(method: str, metadata: Iterable[tuple[str, Any]] | None) -> ServerSpan | None:
    """Make a served call's context current, from its metadata; its span when tracing is on."""
    request_id = traceparent = tracestate = ""
    for key, value in metadata or ():
        if key == "x-request-id":
            request_id = value
        elif key == "traceparent":
            traceparent = value
        elif key == "tracestate":
            tracestate = value
    if (
        not (isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID)
        or not request_id.isprintable()
    ):
        request_id = str(uuid.uuid4())
    if not (isinstance(traceparent, str) and valid_traceparent(traceparent)):
        traceparent = tracestate = ""
    if not isinstance(tracestate, str):
        tracestate = ""
    if _tracer is None:
        _current.set(CallContext(request_id, traceparent, tracestate))
        return None
    service, _, name = method.strip("/").partition("/")
    span = _tracer.start_span(
        method.strip("/"),
        context=_parent(traceparent, tracestate),
        kind=SpanKind.SERVER,
        attributes={
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "mesh.request_id": request_id,
        },
    )
    _current.set(CallContext(request_id, _traceparent_of(span), tracestate))
    return ServerSpan(span)


def record(
    name: str,
    *,
    parent: str,
    start_ns: int,
    end_ns: int,
    kind: SpanKind,
    attributes: Mapping[str, str | int],
    failed: str = "",
) -> None:
    """Record a finished span under ``parent`` (a ``traceparent``); nothing with tracing off.

    For work done outside the call that caused it, such as delivering its event.
    """
    if _tracer is None or not parent:
        return
    span = _tracer.start_span(
        name,
        context=_parent(parent, ""),
        kind=kind,
        attributes=dict(attributes),
        start_time=start_ns,
    )
    if failed:
        span.set_status(Status(StatusCode.ERROR, failed))
    span.end(end_time=end_ns)


def event_attributes(*, event_id: str, source: str, type: str) -> dict[str, str | int]:
    """The attributes naming the CloudEvent a span of :func:`record` works on.

    OpenTelemetry's CloudEvents conventions, the same on the relay's delivery span and on the
    Audit Service's append span, so that one query finds every span of one event.
    """
    return {
        "cloudevents.event_id": event_id,
        "cloudevents.event_source": source,
        "cloudevents.event_type": type,
    }


def enabled() -> bool:
    return _tracer is not None


def _parent(traceparent: str, tracestate: str) -> Any:
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier)


def _traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def exporter_name(env: Mapping[str, str]) -> str:
    """Which exporter the ``OTEL_*`` variables ask for: ``otlp``, ``console`` or ``none``."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "none"
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        return named
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint else "none"


def otlp_protocol(env: Mapping[str, str]) -> str:
    """``grpc`` or ``http/protobuf``, as the ``OTEL_EXPORTER_OTLP_*PROTOCOL`` variables say."""
    return (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    )


def configure(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Export spans as the ``OTEL_*`` variables say, as ``mesh-<service>``; whether it does.

    Raises ConfigError for an exporter or protocol the mesh does not know.
    """
    global _tracer
    env = os.environ if env is None else env
    name = exporter_name(env)
    if name == "none":
        _tracer = None
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    exporter: SpanExporter
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    elif name == "otlp":
        protocol = otlp_protocol(env)
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        elif protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        else:
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}: use grpc or http/protobuf"
            )
        exporter = OTLPSpanExporter()
    else:
        raise ConfigError(f"OTEL_TRACES_EXPORTER {name!r}: use otlp, console or none")
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME", f"mesh-{service}")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = provider.get_tracer("mesh")
    return True


def use_tracer(tracer: trace.Tracer | None) -> None:
    """Trace with ``tracer`` (tests with an in-memory exporter), or not at all with None."""
    global _tracer
    _tracer = tracer
